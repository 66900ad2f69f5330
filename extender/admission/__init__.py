"""Mutating admission webhook: annotate the model, get the right partitions, engine arguments and placement.

A Pod or a KServe ``InferenceService`` that carries ``aim.amd.com/model`` (or ``aim.amd.com/profile``)
is sized with ``sizing`` against the partition sizes that exist in the cluster (node labels), and a
JSONPatch sets what the user left out: the ``amd.com/gpu-partition`` count, the vLLM arguments,
node affinity on the partition size, KServe's GPU annotation and runtime. See docs/webhook.md.

Modules, one job each (each imports only the ones below it):

    serving       the webhook inside ``aim-extender serve``: flags, config, a sibling uvicorn server
    server        the HTTPS shell: ``POST /mutate``, metrics, the reloadable certificate
    node_watch    list + watch of the nodes' partition labels into the inventory
    certs         ``aim-extender certs``: self-signed CA + serving certificate, the caBundle
    review        AdmissionReview in, AdmissionReview out (bytes; never raises)
    mutation      one object -> JSONPatch ops + warnings, or a denial
    choice        the sizing decision: partition count, need, engine arguments, wording
    workload      where to read and write in a Pod or an InferenceService
    models        model id -> ModelArch (catalogue, models directory)
    engine_flags  the vLLM flags a container already has
    patching      JSON Pointer and the JSONPatch builder
    inventory     the partition sizes that exist (from node labels)
"""
