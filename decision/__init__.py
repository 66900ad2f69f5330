"""The decision core: what a pod asks for, what a node offers, and whether one holds the other.

Shared by the extender (kube-scheduler's filter and prioritize), the webhook (sizing at admission),
the planner and the partitioner (the demand its layouts must serve). Pure: it imports only
``sizing`` (import-linter enforces it), does no I/O and no logging; the shells around it read the
API server, files and HTTP bodies and hand it plain values.
"""
