"""Mutating admission webhook: annotate the model, get the partitions, engine arguments and placement.

A Pod or a KServe ``InferenceService`` that carries ``aim.amd.com/model`` (or ``aim.amd.com/profile``)
is sized with ``sizing`` against the partition sizes that exist in the cluster (node labels), and a
JSONPatch sets what the user left out: the ``amd.com/gpu-partition`` count, the vLLM arguments,
node affinity on the partition size, KServe's GPU annotation and runtime. See docs/webhook.md.

Layers (top of the extender): ``server`` (HTTPS shell) -> ``review`` (AdmissionReview wire) ->
``mutation`` (one object -> patch + warnings) -> ``workload`` (where things live in a Pod or an
InferenceService), ``choice`` (sizing decision), ``patching`` (JSON Pointer / JSONPatch) ->
``inventory`` (partition sizes from node labels). ``certs`` is the certificate command.
"""
