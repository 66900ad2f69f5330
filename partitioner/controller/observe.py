"""What the controller sees of nodes and pods: the API objects (JSON dicts, as the watch delivers
them) read into small frozen views. Every value goes through ``sizing.bounded`` or
``sizing.contract``; nothing here raises, a value that cannot be read becomes a ``problem`` naming
it. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pydantic

from decision import planning
from decision.eligibility import (
    NodeFacts,
    PlacementRules,
    Taint,
    read_placement,
    read_strings,
    read_taints,
)
from decision.pod_demand import read_pod_demand, requested_partitions
from decision.text import pydantic_problem
from partitioner.controller import keys
from partitioner.controller.clock import parse_time
from partitioner.errors import AdvisorInputError
from partitioner.modes import Mode, existing_option
from sizing.bounded import BoundedValueError, parse_count
from sizing.contract import LABEL_GPU_COUNT, RESOURCE_NAME, NodeLabels, read_node_labels

# Labels and annotations read per object: far above what real nodes carry (a few dozen), low
# enough that a hostile object cannot make a tick slow.
MAX_ENTRIES: Final = 512
# Longest label/annotation value kept: label values are at most 63 characters; our annotations
# are short except the condition (a message), which is bounded here.
MAX_VALUE_LENGTH: Final = 2048
# Longest name (DNS-1123 subdomain, apimachinery IsDNS1123Subdomain).
MAX_NAME: Final = 253
# Longest scheduling message searched for the extender's reason (kube-scheduler writes one line
# per distinct reason; 64 KiB is hundreds of them).
MAX_MESSAGE: Final = 1 << 16
# Whether a partition layout is what a pending pod waits for is a computed fact, not read from
# messages: ``plan.layout_demand`` sizes the pod with the decision core (decision.requirement) and
# compares it with every node's partitions. What the view records is only that kube-scheduler left
# the pod unschedulable (the PodScheduled condition's reason, a field) and, where the message is
# the only source, why:
UNSCHEDULABLE: Final = "Unschedulable"
# kube-scheduler's own NodeResourcesFit reason (``Insufficient <resource>``) rejects a node with
# too few FREE partitions before the extender is asked. ``plan`` counts free partitions itself
# (allocatable minus the bound pods' requests), but kube-scheduler also counts the pods it has
# assumed and not yet bound, which no object states, so this message is kept as a source too. It
# is layout demand (more, smaller partitions) only where the node's partitions are big enough for
# the pod: ``plan`` checks that.
INSUFFICIENT: Final = f"Insufficient {RESOURCE_NAME}"
# Partitions one planner workload may ask for (decision.planning's WorkloadSpec bound: 8 GPUs x CPX).
MAX_WORKLOAD_PARTITIONS: Final = 64
_FINISHED: Final = frozenset({"Succeeded", "Failed"})


def _mapping(raw: object) -> Mapping[str, Any]:
    return raw if isinstance(raw, Mapping) else {}


def _strings(raw: object) -> dict[str, str]:
    """A string-to-string map (labels, annotations, nodeSelector), bounded; other entries dropped."""
    return read_strings(raw, max_value=MAX_VALUE_LENGTH)


def _uid(raw: object) -> str:
    return raw if isinstance(raw, str) and len(raw) <= 64 else ""


def _name(raw: object) -> str | None:
    return raw if isinstance(raw, str) and 0 < len(raw) <= MAX_NAME else None


DCM_TAINT: Final = Taint(keys.DCM_TAINT_KEY, keys.DCM_TAINT_VALUE, keys.DCM_TAINT_EFFECT)


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node as the controller reads it."""

    name: str
    uid: str
    resource_version: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    unschedulable: bool
    taints: tuple[Taint, ...]
    taints_raw: tuple[Mapping[str, Any], ...]  # as the API has them, to keep others' fields on a patch
    allocatable: int | None  # amd.com/gpu-partition in status.allocatable; None when absent or unreadable
    partition_labels: NodeLabels
    product: str | None = None
    mode: Mode | None = None  # the current mode when the node is homogeneous and readable
    gpus: int | None = None  # GPUs: the gpu-count label, else the fewest that hold the partitions (see _gpus)
    partitions_per_gpu: int | None = None
    problem: str | None = None  # why product/mode/gpus could not be read (then they are None)

    @property
    def opted_in(self) -> bool:
        return self.labels.get(keys.OPT_IN_LABEL) == keys.OPT_IN_VALUE

    @property
    def dcm_profile(self) -> str | None:
        return self.labels.get(keys.DCM_PROFILE_LABEL)

    @property
    def dcm_state(self) -> str | None:
        return self.labels.get(keys.DCM_STATE_LABEL)

    @property
    def facts(self) -> NodeFacts:
        """What decides whether a pod may run here (labels, taints, cordon)."""
        return NodeFacts(self.name, self.labels, self.taints, self.unschedulable)

    @property
    def has_dcm_taint(self) -> bool:
        return any(t.key == keys.DCM_TAINT_KEY and t.effect == keys.DCM_TAINT_EFFECT for t in self.taints)

    @property
    def in_flight(self) -> bool:
        return keys.STATE in self.annotations

    @property
    def missing_partitions(self) -> int:
        """Partitions its GPUs lack in the current mode (63 of 64 CPX: 1), or unhealthy ones."""
        if self.gpus is None or self.partitions_per_gpu is None or self.partition_labels.count is None:
            return 0
        return max(0, self.gpus * self.partitions_per_gpu - self.partition_labels.count)

    def advertises(self, mode: Mode, partitions: int) -> bool:
        """Whether the device plugin publishes ``mode`` on the GPUs that give ``partitions`` in it
        (labels and allocatable agree, one shape): judged by GPUs, not by the partition count,
        which can lack a partition per GPU (63 of 64 CPX partitions on the real capture)."""
        return (self.mode == mode and self.gpus is not None and self.partitions_per_gpu is not None
                and self.gpus * self.partitions_per_gpu == partitions)


def _layout(labels: NodeLabels, allocatable: int | None) -> tuple[str | None, Mode | None, int | None, int | None,
                                                                  str | None]:
    """(product, mode, gpus, partitions per GPU, problem) from the device plugin's labels."""
    if labels.defects:
        return None, None, None, None, labels.defects[0]
    if not labels.product or not labels.compute_mode or not labels.memory_mode or labels.count is None:
        return None, None, None, None, "no readable amd.com/gpu-partition.* labels (product, modes, count)"
    if labels.homogeneous is not True:
        return labels.product, None, None, None, "its partitions are not all of one shape (homogeneous is not true)"
    mode = Mode(labels.compute_mode, labels.memory_mode)
    try:
        option = existing_option(labels.product, mode)
    except AdvisorInputError as error:
        return labels.product, None, None, None, str(error)
    per_gpu = option.partitions
    gpus, problem = _gpus(labels.count, labels.gpu_count, per_gpu, option.mode)
    if problem is None and allocatable != labels.count:
        problem = f"allocatable {RESOURCE_NAME}={allocatable} differs from the count label {labels.count}"
    return option.geometry.product, option.mode, None if problem else gpus, per_gpu, problem


def _gpus(count: int, gpu_count: int | None, per_gpu: int, mode: Mode) -> tuple[int | None, str | None]:
    """(GPUs, problem) of a node with ``count`` partitions of ``per_gpu`` per GPU.

    The device plugin's ``gpu-count`` label says it; the partitions must fit on those GPUs (fewer
    is fine: a GPU may lack one, or some may be unhealthy). Without the label (an older plugin):
    the fewest GPUs that hold the partitions when each GPU lacks at most one, the known quirk
    (63 of 64 MI300X CPX partitions, tests/fixtures/sysfs/README.md): 63 CPX partitions are 8 GPUs,
    6 are none. (Ambiguous counts take the fewest GPUs: 63 could also be 9 GPUs lacking one each.)"""
    if count == 0:
        return None, "it advertises no partitions"
    if gpu_count is not None:
        if count > gpu_count * per_gpu:
            return None, (f"{count} partitions do not fit on {gpu_count} GPUs (label {LABEL_GPU_COUNT}) in {mode}"
                          f" ({per_gpu} per GPU)")
        return gpu_count, None
    gpus = -(-count // per_gpu)
    if count < gpus * (per_gpu - 1):
        return None, (f"{count} partitions is not a whole number of GPUs in {mode} ({per_gpu} per GPU, at most one"
                      f" missing per GPU) and the label {LABEL_GPU_COUNT} is absent")
    return gpus, None


def read_node(obj: object) -> NodeView | None:
    """A node from its JSON; None when it has no readable name."""
    node = _mapping(obj)
    metadata, spec, status = _mapping(node.get("metadata")), _mapping(node.get("spec")), _mapping(node.get("status"))
    name = _name(metadata.get("name"))
    if name is None:
        return None
    labels = _strings(metadata.get("labels"))
    annotations = {k: v for k, v in _strings(metadata.get("annotations")).items() if k.startswith("aim.amd.com/")}
    raw_allocatable = _mapping(status.get("allocatable")).get(RESOURCE_NAME)
    allocatable: int | None = None
    allocatable_problem = None
    if raw_allocatable is not None:
        try:
            allocatable = parse_count(f"node allocatable {RESOURCE_NAME}", raw_allocatable)
        except BoundedValueError as error:
            allocatable_problem = str(error)
    partition_labels = read_node_labels(labels)
    product, mode, gpus, per_gpu, problem = _layout(partition_labels, allocatable)
    version = metadata.get("resourceVersion")
    taints, taints_raw = read_taints(spec.get("taints"))
    return NodeView(
        name=name, uid=_uid(metadata.get("uid")),
        resource_version=version if isinstance(version, str) and len(version) <= 64 else "",
        labels=labels, annotations=annotations, unschedulable=spec.get("unschedulable") is True,
        taints=taints, taints_raw=taints_raw, allocatable=allocatable, partition_labels=partition_labels,
        product=product, mode=mode, gpus=gpus, partitions_per_gpu=per_gpu,
        problem=allocatable_problem or problem,
    )


@dataclass(frozen=True, slots=True)
class PodView:
    """One pod as the controller reads it."""

    namespace: str
    name: str
    uid: str
    node: str | None  # spec.nodeName
    partitions: int  # amd.com/gpu-partition requested
    finished: bool  # phase Succeeded or Failed
    deleting: bool  # metadata.deletionTimestamp set
    created: float | None  # metadata.creationTimestamp
    placement: PlacementRules = field(default_factory=PlacementRules)  # nodeSelector, node affinity, tolerations
    layout_blocked: str | None = None  # UNSCHEDULABLE or INSUFFICIENT while kube-scheduler cannot place it
    workload: planning.Workload | None = None  # the pod as the planner's workload
    problem: str | None = None  # why it has no workload

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def holds_gpus(self) -> bool:
        """Bound, unfinished and asking for partitions: it holds GPU partitions on its node."""
        return self.node is not None and not self.finished and self.partitions > 0

    @property
    def pending_for_layout(self) -> bool:
        """Unschedulable and sized: a candidate; ``plan.layout_demand`` decides with the nodes
        whether a layout is what it waits for."""
        return (self.node is None and not self.finished and not self.deleting and self.layout_blocked is not None
                and self.workload is not None)

    @property
    def wants_more_partitions(self) -> bool:
        """Pending on kube-scheduler's ``Insufficient`` alone: layout demand only where some node's
        partitions are big enough for it (``plan`` decides)."""
        return self.layout_blocked == INSUFFICIENT


def _layout_blocked(status: Mapping[str, Any]) -> str | None:
    """UNSCHEDULABLE when kube-scheduler could not place the pod (PodScheduled False, reason
    Unschedulable: extender, node affinity, resources alike), INSUFFICIENT when its message says a
    node had too few free partitions (see INSUFFICIENT); None
    while it is not unschedulable."""
    conditions = status.get("conditions")
    for condition in (conditions if isinstance(conditions, list) else [])[:MAX_ENTRIES]:
        condition = _mapping(condition)
        if condition.get("type") != "PodScheduled" or condition.get("status") != "False":
            continue
        if condition.get("reason") != UNSCHEDULABLE:
            return None
        message = condition.get("message")
        text = message[:MAX_MESSAGE] if isinstance(message, str) else ""
        return INSUFFICIENT if INSUFFICIENT in text else UNSCHEDULABLE
    return None


def _workload(name: str, pod: Mapping[str, Any], partitions: int) -> tuple[planning.Workload | None, str | None]:
    demand = read_pod_demand(pod)
    if demand.problem is not None:
        return None, demand.problem
    try:
        spec = planning.WorkloadSpec.model_validate({
            "name": name, "model": demand.model, "precision": demand.precision, "max_model_len": demand.max_model_len,
            "profile": demand.profile, "memory": demand.memory_text, "partitions": partitions,
        })
    except pydantic.ValidationError as error:
        return None, f"cannot be planned: {pydantic_problem(error, empty_where='pod')}"[:300]
    return planning.Workload(name, spec), None


def read_pod(obj: object) -> PodView | None:
    """A pod from its JSON; None when it has no readable namespace and name."""
    pod = _mapping(obj)
    metadata, spec, status = _mapping(pod.get("metadata")), _mapping(pod.get("spec")), _mapping(pod.get("status"))
    namespace, name = _name(metadata.get("namespace")), _name(metadata.get("name"))
    if namespace is None or name is None:
        return None
    uid = metadata.get("uid")
    try:
        partitions = requested_partitions(spec)
        problem = None
    except BoundedValueError as error:
        partitions, problem = 0, f"invalid pod request {error}"
    created = None
    raw_created = metadata.get("creationTimestamp")
    if raw_created is not None:
        try:
            created = parse_time("metadata.creationTimestamp", raw_created)
        except BoundedValueError:
            created = None
    blocked = _layout_blocked(status)
    workload = None
    node = _name(spec.get("nodeName"))
    if problem is None and partitions > 0:
        workload, problem = _workload(name, pod, partitions)
        if workload is None and node is not None and partitions <= MAX_WORKLOAD_PARTITIONS:
            # bound already: whatever its annotations say, it holds its partitions
            workload = planning.Workload(name, planning.WorkloadSpec.model_validate(
                {"name": name, "partitions": partitions}))
    return PodView(
        namespace=namespace, name=name, uid=_uid(uid) or f"{namespace}/{name}",
        node=node, partitions=partitions, finished=status.get("phase") in _FINISHED,
        deleting=metadata.get("deletionTimestamp") is not None, created=created,
        placement=read_placement(pod), layout_blocked=blocked, workload=workload,
        problem=problem,
    )
