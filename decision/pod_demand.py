"""Stage 1 of a decision: what a pod asks for, and what the pods already bound to a node use.

Pure functions over the pod JSON (a dict, as kube-scheduler sends it). Every value goes through
``sizing.bounded``: annotations are short text, the partition count is a small non-negative
integer, ``max-model-len`` is ASCII digits within bounds, and ``memory`` is a bounded quantity.
A value that fails becomes ``PodDemand.problem`` (naming the annotation or request), which the
requirement stage turns into a rejection of every node; nothing here raises. KServe copies
InferenceService annotations to the predictor pod, so the same keys work on an InferenceService.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sizing.bounded import (
    MAX_CONTEXT_TOKENS,
    MAX_PARTITION_COUNT,
    BoundedValueError,
    parse_count,
    parse_int,
    parse_memory_bytes,
)
from sizing.contract import (
    ANNOTATION_MAX_MODEL_LEN,
    ANNOTATION_MEMORY,
    ANNOTATION_MODEL,
    ANNOTATION_PRECISION,
    ANNOTATION_PROFILE,
    RESOURCE_NAME,
)

# Longest model, precision or profile annotation read: a Hugging Face repo id ("org/name") has at
# most 96 characters for the name plus the organisation; 256 leaves room and bounds the work.
MAX_ANNOTATION_TEXT: Final = 256
# Containers (app + init) read per pod: the API server accepts far fewer in practice; reading
# more than this is work a hostile pod could make us do for nothing.
MAX_CONTAINERS: Final = 256
_FINISHED_PHASES: Final = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True, slots=True)
class PodDemand:
    """What one pod asks for, read and bounded; hashable so its requirement can be memoised."""

    partitions: int  # amd.com/gpu-partition the pod requests = tensor-parallel size
    model: str | None = None
    precision: str | None = None
    max_model_len: int | None = None
    profile: str | None = None
    memory_bytes: int | None = None  # aim.amd.com/memory per partition, overrides the estimate
    memory_text: str | None = None  # the annotation as written, for messages
    problem: str | None = None  # first unreadable annotation or request, named; None when all read

    @property
    def is_sized(self) -> bool:
        """False for a pod with none of the AIM annotations: only its partition count matters."""
        return any((self.model, self.precision, self.max_model_len, self.profile, self.memory_bytes, self.problem))


@dataclass(frozen=True, slots=True)
class BoundPodUsage:
    """The partitions one bound, unfinished pod holds on its node, and its AIM annotations when it
    has any (None: unannotated or unreadable; sized only at metrics scrape time)."""

    node: str
    partitions: int
    demand: PodDemand | None = None


def annotation_text(annotations: Mapping[str, Any], key: str, *, field: str = "pod annotation") -> str | None:
    """An annotation as trimmed text; None when absent or blank. BoundedValueError (naming
    ``field key``) when it is not a string or is too long to be a model, precision, profile id,
    context length or memory size. The one reader of the ``aim.amd.com/`` annotations: the
    extender, the webhook and the partitioner read them through it."""
    raw = annotations.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise BoundedValueError(f"{field} {key}", raw, f"must be a string, not {type(raw).__name__}")
    if len(raw) > MAX_ANNOTATION_TEXT:
        raise BoundedValueError(f"{field} {key}", raw, f"is longer than {MAX_ANNOTATION_TEXT} characters")
    return raw.strip() or None


def _container_partitions(container: Any, where: str) -> int:
    if not isinstance(container, Mapping):
        return 0
    resources = container.get("resources")
    if not isinstance(resources, Mapping):
        return 0
    for kind in ("requests", "limits"):  # extended resources: requests default to limits
        values = resources.get(kind)
        if isinstance(values, Mapping) and RESOURCE_NAME in values:
            return parse_count(f"{where}.resources.{kind}[{RESOURCE_NAME}]", values[RESOURCE_NAME])
    return 0


def requested_partitions(spec: Any) -> int:
    """Partitions a pod needs: sum over containers, or the largest init container if bigger.

    Same rule as the scheduler's effective request (computePodResourceRequest): init containers
    run one at a time before the app containers. BoundedValueError naming the container field.
    """
    if not isinstance(spec, Mapping):
        return 0
    totals = []
    for field in ("containers", "initContainers"):
        containers = spec.get(field)
        if not isinstance(containers, list):
            totals.append([0])
            continue
        if len(containers) > MAX_CONTAINERS:
            raise BoundedValueError(f"spec.{field}", containers, f"has more than {MAX_CONTAINERS} containers")
        totals.append([_container_partitions(c, f"spec.{field}[{i}]") for i, c in enumerate(containers)])
    total = sum(totals[0])
    if total > MAX_PARTITION_COUNT:
        raise BoundedValueError(f"spec.containers[*].resources[{RESOURCE_NAME}]", total, "sum is too large")
    return max(total, *totals[1], 0)


def read_pod_demand(pod: Any) -> PodDemand:
    """Read the AIM annotations and partition count of a v1.Pod JSON object; never raises."""
    pod = pod if isinstance(pod, Mapping) else {}
    metadata = pod.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    annotations = annotations if isinstance(annotations, Mapping) else {}
    try:
        partitions = requested_partitions(pod.get("spec"))
    except BoundedValueError as error:
        return PodDemand(0, problem=f"invalid pod request {error}")
    try:
        model = annotation_text(annotations, ANNOTATION_MODEL)
        precision = annotation_text(annotations, ANNOTATION_PRECISION)
        profile = annotation_text(annotations, ANNOTATION_PROFILE)
        raw_length = annotations.get(ANNOTATION_MAX_MODEL_LEN)
        max_model_len = None if raw_length is None else parse_int(
            f"pod annotation {ANNOTATION_MAX_MODEL_LEN}", raw_length, minimum=1, maximum=MAX_CONTEXT_TOKENS
        )
        raw_memory = annotations.get(ANNOTATION_MEMORY)
        memory_bytes = None if raw_memory is None else parse_memory_bytes(f"pod annotation {ANNOTATION_MEMORY}",
                                                                          raw_memory)
    except BoundedValueError as error:
        return PodDemand(partitions, problem=f"invalid {error}")
    return PodDemand(
        partitions, model=model, precision=precision, max_model_len=max_model_len, profile=profile,
        memory_bytes=memory_bytes, memory_text=None if raw_memory is None else str(raw_memory).strip(),
    )


def demand_pod(name: str, namespace: str, partitions: int, *, model: str | None = None,
               precision: str | None = None, max_model_len: int | None = None, profile: str | None = None,
               memory: str | None = None) -> dict[str, Any]:
    """A v1.Pod JSON object that asks for this, as KServe would create it: the AIM annotations given
    (the ones ``read_pod_demand`` reads) and the partition request. The planner's workloads are pods
    of this shape, read back with ``read_pod_demand`` like any pod."""
    annotations = {
        annotation: str(value)
        for annotation, value in (
            (ANNOTATION_MODEL, model), (ANNOTATION_PRECISION, precision), (ANNOTATION_MAX_MODEL_LEN, max_model_len),
            (ANNOTATION_PROFILE, profile), (ANNOTATION_MEMORY, memory),
        )
        if value is not None
    }
    request = {RESOURCE_NAME: str(partitions)} if partitions else {}
    return {
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {"containers": [{"name": "vllm", "resources": {"requests": request, "limits": request}}]},
    }


def pod_id(pod: Any) -> str | None:
    """The pod's uid (else ``namespace/name``): what the node cache files its usage under."""
    metadata = pod.get("metadata") if isinstance(pod, Mapping) else None
    if not isinstance(metadata, Mapping):
        return None
    uid = metadata.get("uid")
    if isinstance(uid, str) and uid:
        return uid
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if not isinstance(name, str) or not name:
        return None
    return f"{namespace if isinstance(namespace, str) and namespace else 'default'}/{name}"


def bound_pod_usage(pod: Any) -> BoundPodUsage | None:
    """The partitions a bound, unfinished pod holds on its node; None if it holds none (or its
    request is unreadable: kube-scheduler and kubelet would not have placed such a pod)."""
    if not isinstance(pod, Mapping):
        return None
    spec = pod.get("spec")
    if not isinstance(spec, Mapping):
        return None
    node = spec.get("nodeName")
    if not isinstance(node, str) or not node:
        return None
    status = pod.get("status")
    if isinstance(status, Mapping) and status.get("phase") in _FINISHED_PHASES:
        return None
    try:
        partitions = requested_partitions(spec)
    except BoundedValueError:
        return None
    if partitions <= 0:
        return None
    demand = read_pod_demand(pod)
    return BoundPodUsage(node, partitions, demand if demand.is_sized and demand.problem is None else None)


def pod_reference(pod: Any) -> str:
    """``namespace/name`` for logs (bounded: never echoes a long or nested value)."""
    metadata = pod.get("metadata") if isinstance(pod, Mapping) else None
    if not isinstance(metadata, Mapping):
        return "<unnamed pod>"
    namespace, name = metadata.get("namespace"), metadata.get("name")
    namespace = namespace if isinstance(namespace, str) and namespace else "default"
    name = name if isinstance(name, str) and name else "<unnamed>"
    return f"{namespace[:63]}/{name[:253]}"  # the longest namespace and pod name Kubernetes allows
