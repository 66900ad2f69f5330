"""DRA mode: a ResourceClaimTemplate (resource.k8s.io/v1) annotated with the model gets the device
request that picks the smallest partition that holds it. Pure.

The user writes the template with the AIM annotations (``aim.amd.com/model`` or ``/profile``,
``/precision``, ``/max-model-len``, ``/memory``: the same reader as Pods) and no requests; pods
reference it in ``spec.resourceClaims``. At CREATE (a template's spec is immutable) the webhook
sizes the model exactly as for a Pod (``choice.decide``) and writes one request, ``gpu``, whose
``firstAvailable`` list (KEP-4816, beta and on by default in 1.34) holds one subrequest per band of
partition sizes, smallest first: "at least the need and below the next known size" for each size
``choice.size_bounds`` gives (the bands the native mode ranks nodes with), then "at least the
need" for any larger or unknown size. kube-scheduler's allocator takes the first subrequest it can
satisfy on a node, so the pod gets a partition from the smallest band that has free devices.
Each subrequest asks for ``count`` = the partition count (vLLM's tensor-parallel size) devices of
the DeviceClass ``gpu-partition.amd.com`` (manifests/dra).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from decision.fits import Offer, Target
from decision.text import gib
from sizing.contract import ANNOTATION_MODEL, ANNOTATION_PROFILE, DRA_CAPACITY_MEMORY, DRA_DEVICE_CLASS, DRA_DRIVER
from webhook.choice import Choice, decide, size_bounds
from webhook.mutation import ANNOTATION_RECORD, Mutation, Options, _read_record, _Record, read_inputs
from webhook.patching import Draft, UnpatchableError, lookup
from webhook.workload import Kind, NotMutableError, RefusedError, Workload

API_GROUP: Final = "resource.k8s.io"
API_VERSION: Final = "v1"
KIND: Final = "ResourceClaimTemplate"
REQUEST_NAME: Final = "gpu"  # the claim's one request; allocation results name "gpu/<subrequest>"
# FirstAvailableDeviceRequestMaxSize (k8s.io/api resource/v1 types.go): 7 bands + "any larger size".
MAX_SUBREQUESTS: Final = 8
ANY_SIZE: Final = "any-size"
REQUESTS_PATH: Final = ("spec", "spec", "devices", "requests")
# read_inputs reads a container (the user's partition count and vLLM flags); a template has none.
_NO_CONTAINER: Final = ("spec", "spec", "aim-no-container")

MIB = 1 << 20


def _memory_at_least(need_bytes: int) -> str:
    return f'm.memory.compareTo(quantity("{need_bytes}")) >= 0'


def selector(need_bytes: int, below_mib: int | None) -> str:
    """The CEL expression of one band: the device's memory capacity (``sizing.contract``) holds
    ``need_bytes`` and, with ``below_mib``, is smaller than that many MiB. A device without the
    capacity is not matched (an unguarded lookup would abort the allocation)."""
    test = _memory_at_least(need_bytes)
    if below_mib is not None:
        test += f' && m.memory.compareTo(quantity("{below_mib}Mi")) < 0'
    return (f'cel.bind(m, device.capacity["{DRA_DRIVER}"], "{DRA_CAPACITY_MEMORY}" in m && {test})')


def subrequest_name(below_mib: int | None) -> str:
    return ANY_SIZE if below_mib is None else f"below-{below_mib}mi"


def device_request(choice: Choice, offers: Sequence[Offer]) -> dict[str, Any]:
    """The ``gpu`` DeviceRequest: bands of sizes that hold ``choice.required_bytes``, smallest first."""
    bounds: list[int | None] = [*size_bounds(choice.required_mib, offers)[:MAX_SUBREQUESTS - 1], None]
    return {"name": REQUEST_NAME, "firstAvailable": [
        {"name": subrequest_name(bound), "deviceClassName": DRA_DEVICE_CLASS, "allocationMode": "ExactCount",
         "count": choice.partitions, "selectors": [{"cel": {"expression": selector(choice.required_bytes, bound)}}]}
        for bound in bounds]}


def is_claim_template(kind: object) -> bool:
    """True for the AdmissionReview ``request.kind`` of a resource.k8s.io/v1 ResourceClaimTemplate."""
    return (isinstance(kind, Mapping) and kind.get("group") == API_GROUP and kind.get("version") == API_VERSION
            and kind.get("kind") == KIND)


def _carries_model(annotations: Mapping[str, object]) -> bool:
    return ANNOTATION_MODEL in annotations or ANNOTATION_PROFILE in annotations


def mutate_claim_template(operation: str, obj: dict[str, Any], offers: Sequence[Offer],
                          options: Options) -> Mutation:
    """The answer for one ResourceClaimTemplate: untouched unless it is created with the model
    annotation; a user's own requests are kept (a warning says the model was not applied)."""
    annotations = lookup(obj, ("metadata", "annotations"))
    if operation != "CREATE" or not isinstance(annotations, Mapping) or not _carries_model(annotations):
        return Mutation(True)
    record = _Record(_read_record(annotations))
    workload = Workload(Kind.RESOURCE_CLAIM_TEMPLATE, dict(annotations), _NO_CONTAINER, ("spec", "spec"),
                        runs_vllm=False, model_spec=False)
    try:
        inputs = read_inputs(workload, obj, options, record)
    except RefusedError as denied:
        return Mutation(False, message=str(denied))
    except NotMutableError as why:  # pragma: no cover - the model annotation was checked above
        return Mutation(True, warnings=(f"not mutated by the aim-gpu-sharing webhook: {why}",))
    spec = lookup(obj, ("spec", "spec"))
    if spec is not None and not isinstance(spec, Mapping):
        return Mutation(False, message="spec.spec must be an object (a ResourceClaimSpec)")
    existing = lookup(obj, REQUESTS_PATH)
    if existing:
        return Mutation(True, warnings=("spec.spec.devices.requests is set: the aim-gpu-sharing webhook keeps it"
                                        f" and does not size {inputs.model.id} (leave it out to have it written)",))
    outcome = decide(Target(inputs.model, inputs.precision, inputs.max_model_len, None, inputs.memory_bytes), offers)
    if outcome.choice is None:
        return Mutation(False, message=outcome.denial)
    choice = outcome.choice
    draft = Draft(obj)
    try:
        draft.put(REQUESTS_PATH, [device_request(choice, offers)])
    except UnpatchableError as error:  # e.g. spec.spec.devices is a string: the API server would refuse it too
        return Mutation(False, message=str(error))
    noun = "partition" if choice.partitions == 1 else "partitions"
    summary = (f"{inputs.model.id} {inputs.precision.value} ctx {choice.need.max_model_len}: {choice.partitions}"
               f" {noun} of at least {gib(choice.required_bytes, round_up=True)} (DRA, smallest band first)")
    record.now["requests"] = f"{choice.partitions}x>={choice.required_bytes}"
    document = json.dumps({"sized": summary, "set": dict(sorted(record.now.items()))}, separators=(",", ":"),
                          sort_keys=True)
    draft.put(("metadata", "annotations", ANNOTATION_RECORD), document)
    return Mutation(True, tuple(draft.patch()), (*inputs.warnings, *outcome.warnings))
