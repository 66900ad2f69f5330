"""Where the webhook reads and writes in a Pod or a KServe InferenceService.

A ``Workload`` names the paths (annotations, the serving container, the pod spec) and carries the
AIM annotations read from the object; it never changes the object. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from sizing.contract import RESOURCE_NAME
from webhook.engine_flags import runs_vllm
from webhook.patching import Path, dotted, lookup

KSERVE_GROUP = "serving.kserve.io"
KSERVE_CONTAINER = "kserve-container"  # the name KServe gives the serving container
KSERVE_ISVC_LABEL = "serving.kserve.io/inferenceservice"  # KServe labels the predictor pods with it

# Longest lists the webhook walks. The API server stores objects of at most 1.5 MiB, which still
# holds 500,000 empty containers; each bound is far above any real workload and keeps a review
# under a millisecond whatever the object holds (one million containers took 3 s before).
MAX_CONTAINERS: Final = 256  # a serving pod runs vLLM plus a few sidecars
MAX_TOKENS: Final = 1024  # command or args of the serving container; a vLLM command line has a few dozen
MAX_SELECTOR_TERMS: Final = 256  # nodeSelectorTerms (ORed); real pods have one or two
MAX_MATCH_EXPRESSIONS: Final = 256  # matchExpressions of one term; real terms have a handful


class Kind(str, Enum):
    POD = "Pod"
    INFERENCE_SERVICE = "InferenceService"
    RESOURCE_CLAIM_TEMPLATE = "ResourceClaimTemplate"  # resource.k8s.io/v1, DRA mode (webhook/dra.py)


class NotMutableError(ValueError):
    """The object has no place the webhook can mutate; the message says why (a warning)."""


class RefusedError(ValueError):
    """The object is refused as it is; the message names the field (a denial)."""


def _bounded(root: Mapping[str, Any], path: Path, limit: int) -> None:
    """RefusedError naming ``path`` when the list there holds more than ``limit`` items."""
    found = lookup(root, path)
    if isinstance(found, list) and len(found) > limit:
        raise RefusedError(f"{dotted(path)} has {len(found)} items, more than the {limit} the aim-gpu-sharing"
                           " webhook reads")


@dataclass(frozen=True, slots=True)
class Workload:
    kind: Kind
    annotations: Mapping[str, object]  # AIM inputs, merged as KServe merges them for the pod
    container_path: Path  # the serving container (Pod container or predictor model/container)
    pod_spec_path: Path  # where affinity and schedulerName live
    runs_vllm: bool  # whether vLLM arguments belong in that container
    model_spec: bool  # InferenceService with spec.predictor.model: runtime/modelFormat apply

    def container(self, root: Mapping[str, Any]) -> Mapping[str, Any]:
        found = lookup(root, self.container_path)
        return found if isinstance(found, Mapping) else {}

    def tokens(self, root: Mapping[str, Any], field: str) -> list[object]:
        found = self.container(root).get(field)
        return found if isinstance(found, list) else []


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _requests_partitions(container: object) -> bool:
    resources = _mapping(_mapping(container).get("resources"))
    return any(RESOURCE_NAME in _mapping(resources.get(kind)) for kind in ("requests", "limits"))


def _pick_container(containers: list[object]) -> int:
    """The serving container of a Pod: KServe's, else one that runs vLLM, else the only one,
    else the first that requests partitions, else the first."""
    items = [_mapping(c) for c in containers]
    for index, c in enumerate(items):
        if c.get("name") == KSERVE_CONTAINER:
            return index
    for index, c in enumerate(items):
        if runs_vllm(c.get("image"), _list(c.get("command")), _list(c.get("args"))):
            return index
    for index, c in enumerate(items):
        if _requests_partitions(c):
            return index
    return 0


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def read_workload(kind: Kind, obj: Mapping[str, Any]) -> Workload:
    """The workload of a decoded Pod or InferenceService; NotMutableError when it has no container."""
    metadata = _mapping(obj.get("metadata"))
    annotations = dict(_mapping(metadata.get("annotations")))
    spec = _mapping(obj.get("spec"))
    if kind is Kind.POD:
        containers = _list(spec.get("containers"))
        if not containers:
            raise NotMutableError("spec.containers is empty or not a list")
        _bounded(obj, ("spec", "containers"), MAX_CONTAINERS)
        index = _pick_container(containers)
        container = _mapping(containers[index])
        vllm = runs_vllm(container.get("image"), _list(container.get("command")), _list(container.get("args")))
        return _checked(obj, Workload(kind, annotations, ("spec", "containers", index), ("spec",), vllm,
                                      model_spec=False))
    predictor = spec.get("predictor")
    if not isinstance(predictor, Mapping):
        raise NotMutableError("spec.predictor is missing or not an object")
    # KServe copies predictor annotations onto the pod after the InferenceService's, so they win.
    annotations.update(_mapping(predictor.get("annotations")))
    if isinstance(predictor.get("model"), Mapping):
        path: Path = ("spec", "predictor", "model")
        return _checked(obj, Workload(kind, annotations, path, ("spec", "predictor"), True, model_spec=True))
    containers = _list(predictor.get("containers"))
    if containers and isinstance(containers[0], Mapping):
        return _checked(obj, Workload(kind, annotations, ("spec", "predictor", "containers", 0), ("spec", "predictor"),
                                      True, model_spec=False))
    raise NotMutableError("spec.predictor has neither model nor containers (framework predictors such as"
                     " spec.predictor.huggingface are not mutated; use spec.predictor.model)")


def _checked(obj: Mapping[str, Any], workload: Workload) -> Workload:
    """``workload`` once the lists the webhook walks in it are within bounds; RefusedError otherwise."""
    for field in ("command", "args"):
        _bounded(obj, (*workload.container_path, field), MAX_TOKENS)
    terms_path = (*workload.pod_spec_path, "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution",
                  "nodeSelectorTerms")
    _bounded(obj, terms_path, MAX_SELECTOR_TERMS)
    for index in range(len(_list(lookup(obj, terms_path)))):
        _bounded(obj, (*terms_path, index, "matchExpressions"), MAX_MATCH_EXPRESSIONS)
    return workload
