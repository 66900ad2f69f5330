"""Mutating admission webhook: annotate the model, get the right partitions, engine arguments and placement.

A Pod or a KServe ``InferenceService`` that carries ``aim.amd.com/model`` (or ``aim.amd.com/profile``)
is sized with ``sizing`` against the partition sizes that exist in the cluster (node labels), and a
JSONPatch sets what the user left out: the ``amd.com/gpu-partition`` count, the vLLM arguments,
node affinity on the partition size, KServe's GPU annotation and runtime. See docs/webhook.md.

Modules, one job each (each imports only the ones below it):

    serving       the webhook inside ``aim-extender serve``: its socket, a sibling uvicorn server
    certs_command ``aim-extender certs``: reads and writes the Secrets and the caBundle
    server        the HTTPS shell: ``POST /mutate``, metrics, the reloadable certificate
    node_watch    list + watch of the nodes' partition labels into the inventory
    certs         self-signed CA + serving certificate: what to create, keep or renew
    review        AdmissionReview in, AdmissionReview out (bytes; never raises)
    mutation      one object -> JSONPatch ops + warnings, or a denial
    choice        the sizing decision: partition count, need, engine arguments, wording
    workload      where to read and write in a Pod or an InferenceService
    models        model id -> ModelArch (catalogue, models directory)
    engine_flags  the vLLM flags a container already has
    patching      the draft the mutation edits, and its JSONPatch (jsonpatch.make_patch)
    inventory     the partition sizes that exist (from node labels)
    flags         flags and defaults (no heavy imports: the CLI parser is built from them)
"""
