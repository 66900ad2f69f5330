"""What a pod asks for: its AIM annotations and its ``amd.com/gpu-partition`` count.

Pure functions over the pod JSON (a dict, as kube-scheduler sends it). Nothing is interpreted
here beyond reading strings and the partition count; ``requirements`` turns the result into
bytes. KServe copies InferenceService annotations to the predictor pod, so the same keys work on
an InferenceService.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from extender.nodefacts import RESOURCE_NAME, parse_allocatable_count, text_value

ANNOTATION_MODEL = "aim.amd.com/model"  # catalogue id (Hugging Face repo id)
ANNOTATION_PRECISION = "aim.amd.com/precision"  # fp16, bf16, fp8, int8, int4
ANNOTATION_MAX_MODEL_LEN = "aim.amd.com/max-model-len"  # context length vLLM is started with
ANNOTATION_PROFILE = "aim.amd.com/profile"  # one of the AIM profile ids, instead of model+precision
ANNOTATION_MEMORY = "aim.amd.com/memory"  # Kubernetes quantity per partition; overrides the estimate


@dataclass(frozen=True, slots=True)
class SizingRequest:
    """The raw sizing inputs of one pod; hashable so sizing can be memoised on it."""

    partitions: int  # amd.com/gpu-partition the pod requests = tensor-parallel size
    model: str | None = None
    precision: str | None = None
    max_model_len: str | None = None
    profile: str | None = None
    memory: str | None = None

    @property
    def is_sized(self) -> bool:
        """False for a pod with none of the AIM annotations: only its partition count matters."""
        return any((self.model, self.precision, self.max_model_len, self.profile, self.memory))


def _container_partitions(container: Any) -> int:
    if not isinstance(container, Mapping):
        return 0
    resources = container.get("resources")
    if not isinstance(resources, Mapping):
        return 0
    for kind in ("requests", "limits"):  # extended resources: requests default to limits
        values = resources.get(kind)
        if isinstance(values, Mapping) and RESOURCE_NAME in values:
            count, _ = parse_allocatable_count(values[RESOURCE_NAME])
            return count
    return 0


def requested_partitions(spec: Any) -> int:
    """Partitions a pod needs: sum over containers, or the largest init container if bigger.

    Same rule as the scheduler's effective request (computePodResourceRequest): init containers run
    one at a time before the app containers.
    """
    if not isinstance(spec, Mapping):
        return 0
    containers = spec.get("containers")
    total = sum(_container_partitions(c) for c in containers) if isinstance(containers, list) else 0
    init = spec.get("initContainers")
    largest_init = max((_container_partitions(c) for c in init), default=0) if isinstance(init, list) else 0
    return max(total, largest_init)


def read_sizing_request(pod: Any) -> SizingRequest:
    """Read the AIM annotations and partition count of a v1.Pod JSON object; never raises."""
    pod = pod if isinstance(pod, Mapping) else {}
    metadata = pod.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    annotations = annotations if isinstance(annotations, Mapping) else {}
    return SizingRequest(
        partitions=requested_partitions(pod.get("spec")),
        model=text_value(annotations, ANNOTATION_MODEL),
        precision=text_value(annotations, ANNOTATION_PRECISION),
        max_model_len=text_value(annotations, ANNOTATION_MAX_MODEL_LEN),
        profile=text_value(annotations, ANNOTATION_PROFILE),
        memory=text_value(annotations, ANNOTATION_MEMORY),
    )


def pod_reference(pod: Any) -> str:
    """``namespace/name`` for logs."""
    metadata = pod.get("metadata") if isinstance(pod, Mapping) else None
    if not isinstance(metadata, Mapping):
        return "<unnamed pod>"
    return f"{metadata.get('namespace') or 'default'}/{metadata.get('name') or '<unnamed>'}"
