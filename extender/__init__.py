"""kube-scheduler extender for AMD Instinct GPU partitions, and the placement planner.

The extender answers kube-scheduler's ``filter`` and ``prioritize`` calls for pods that request
``amd.com/gpu-partition``: it sizes the pod's model (``sizing``) and keeps only nodes whose
partitions can hold it, then scores the survivors best-fit. ``aim-extender plan`` runs the same
verdict and score functions over a described cluster, offline.

The stages of kube-scheduler's decision (pod demand, requirement, node offer, verdict, reasons, the
loop over many nodes) are the pure ``decision`` package, shared with the webhook, the planner and
the partitioner. The admission webhook is its own package, ``webhook``, which ``aim-extender serve``
starts beside the extender (only ``cli`` imports it). Modules here, one job each (each imports only
the ones above it):

    wire          kube-scheduler extender wire types, request reading, reply writing
    metrics       Prometheus collectors, one registry per app
    cache         node offers + partitions used, and whether the watch is live (thread-safe)
    backoff       the one retry backoff (0.5 s doubling to 3 s, jitter)
    watch         list + ``kubernetes.watch.Watch`` of nodes and pods into the cache
    service       one filter / prioritize call, bytes in, bytes out
    app           FastAPI application (thin HTTP shell)
    config, cli   ExtenderConfig; ``aim-extender serve|plan``
    models_source a models directory (mounted ConfigMap) -> the sizer's catalogue, re-read on change
    scheduler_config  the KubeSchedulerConfiguration documents that register the extender
    yaml_file     a YAML input file read with its size, depth and aliases bounded
    plan_files    the planner's cluster and workload files and the built-in demo (the planner
                  itself is ``decision.planning``)
    terminal      whether stdout shows Unicode (the plan and advice tables)

Errors::

    ExtenderError
    └── ConfigError        bad flag / env value (cli exits 2)

An invalid cluster or workload file is ``decision.planning.PlanInputError`` (cli exits 2).
"""

from extender.errors import ConfigError, ExtenderError

__all__ = ["ConfigError", "ExtenderError"]
