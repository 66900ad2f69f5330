"""Why an opted-in pod is still Pending, as one Event: the partition size it needs and the fix. Pure.

In native mode (docs/extender.md) kube-scheduler places pods without the extender, so its
FailedScheduling event only says "didn't match Pod's node affinity/selector". This module words
what the extender's /filter would have said about the nodes the pod may run on, with the decision
core: the pod's ``Requirement`` (the extender's own sizing), the nodes its nodeSelector, required
node affinity and tolerations let it onto (``decision.eligibility``; the webhook's own
``memory-mib`` requirement left out, since the size is what the note explains), each judged by the
node verdict (``decision.verdict.filter_verdict``) as if none of its partitions were in use, and the
reasons module's ``cluster_too_small`` / ``cluster_too_few`` with the smallest known partition that
holds it. Only the size and count are explained here: a pod kept waiting by busy partitions gets
kube-scheduler's own "Insufficient amd.com/gpu-partition"; a pod that cannot be sized is denied by
the webhook and named by the partition controller (NoRepartitionHelps: "cannot be sized").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from decision import reasons
from decision.eligibility import NodeFacts, PlacementRules, read_node_facts, read_placement
from decision.node_offer import offer_fields
from decision.pod_demand import read_pod_demand
from decision.reasons import KnownMode, ReasonCode
from decision.requirement import Requirement, Sizer
from decision.verdict import Capacity, filter_verdict
from sizing.contract import ANNOTATION_MODEL, ANNOTATION_PROFILE, LABEL_MEMORY_MIB

# kube-scheduler's condition on a pod it tried and could not place (status.conditions).
POD_SCHEDULED: Final = "PodScheduled"


# Where a pod may run, without the size requirement the webhook writes (what the note explains).
PLACEMENT_IGNORES: Final = frozenset({LABEL_MEMORY_MIB})
# How the note names the nodes it judged: the whole cluster, or those the pod's rules let it onto.
CLUSTER: Final = "in this cluster"
ITS_NODES: Final = "on the nodes it may run on"


@dataclass(frozen=True, slots=True)
class PendingNode:
    """One node as the note judges it: where pods may run, and its partitions as if none were in use."""

    facts: NodeFacts
    capacity: Capacity


def read_pending_node(obj: object) -> PendingNode | None:
    """A v1.Node JSON object for ``explain_pod``; None without a usable name."""
    facts, fields = read_node_facts(obj), offer_fields(obj)
    if facts is None or fields is None:
        return None
    _, allocatable, partition_bytes, defect = fields
    return PendingNode(facts, (allocatable, partition_bytes, 0, defect))


@dataclass(frozen=True, slots=True)
class PendingNote:
    """One Event for one pod: ``reason`` (CamelCase, as Events have them) and ``message``."""

    reason: str
    message: str


def event_reason(code: ReasonCode) -> str:
    """``partition_too_small`` -> ``PartitionTooSmall``."""
    return "".join(word.capitalize() for word in code.value.split("_"))


def is_waiting(pod: Mapping[str, Any]) -> bool:
    """An opted-in pod (AIM model or profile annotation) without a node that kube-scheduler tried
    and could not place (PodScheduled False)."""
    metadata = pod.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    if not isinstance(annotations, Mapping):
        return False
    if ANNOTATION_MODEL not in annotations and ANNOTATION_PROFILE not in annotations:
        return False
    spec, status = pod.get("spec"), pod.get("status")
    if not isinstance(spec, Mapping) or spec.get("nodeName") or not isinstance(status, Mapping):
        return False
    if status.get("phase") != "Pending":
        return False
    conditions = status.get("conditions")
    if not isinstance(conditions, list):
        return False
    return any(isinstance(c, Mapping) and c.get("type") == POD_SCHEDULED and c.get("status") == "False"
               for c in conditions[:16])  # a pod has a handful of conditions


def explain(requirement: Requirement, capacities: Iterable[Capacity], modes: Iterable[KnownMode], *,
            scope: str = CLUSTER) -> PendingNote | None:
    """The note for a pod with this requirement whose nodes (those it may run on) have ``capacities``
    (used partitions are not looked at); None when the size and count are not why it waits (or it is
    not sized, or cannot be: see the module doc)."""
    if requirement.rejection is not None or requirement.required_bytes is None:
        return None
    required = requirement.required_bytes
    distinct = set(capacities)
    too_few: list[int] = []
    for capacity in distinct:
        verdict = filter_verdict(requirement, capacity)
        if verdict is None:
            return None  # it fits there: busy partitions are kube-scheduler's to name
        size = capacity[1]
        if verdict.code is ReasonCode.TOO_FEW_PARTITIONS:
            too_few.append(capacity[0])
        elif verdict.code is not ReasonCode.PARTITION_TOO_SMALL and size is not None and size >= required:
            return None  # partitions of the size, not (readably) advertised: not a size or count fact
    partitions = max(requirement.partitions, 1)
    subject = requirement.subject or "the workload"
    if too_few:
        rejection = reasons.cluster_too_few(subject, partitions, required, max(too_few))
    else:
        largest = max((c[1] for c in distinct if c[1] is not None), default=None)
        holder = reasons.smallest_mode_holding(required, modes)
        rejection = reasons.cluster_too_small(subject, partitions, required, largest, holder, scope=scope)
    return PendingNote(event_reason(rejection.code), rejection.message)


def placement(pod: Mapping[str, Any]) -> PlacementRules:
    """Where ``pod`` may run, for ``explain_pod`` (pods alike share one answer: it is hashable)."""
    return read_placement(pod, ignore_keys=PLACEMENT_IGNORES)


def its_nodes(rules: PlacementRules, nodes: Sequence[PendingNode]) -> tuple[list[Capacity], str]:
    """The capacities of the nodes ``rules`` let the pod onto, and how the note names them (the
    cluster when that is every node)."""
    capacities = [n.capacity for n in nodes if rules.admits(n.facts)]
    return capacities, CLUSTER if len(capacities) == len(nodes) else ITS_NODES


def explain_pod(pod: Mapping[str, Any], sizer: Sizer, nodes: Sequence[PendingNode],
                alike: dict[PlacementRules, tuple[list[Capacity], str]] | None = None) -> PendingNote | None:
    """``explain`` for a waiting pod (``is_waiting``), sized as the extender sizes it, against the
    nodes it may run on; ``alike`` keeps those nodes per placement across calls on the same ``nodes``
    (the pods of one workload share it)."""
    if not is_waiting(pod):
        return None
    rules = placement(pod)
    found = alike.get(rules) if alike is not None else None
    if found is None:
        found = its_nodes(rules, nodes)
        if alike is not None:
            alike[rules] = found
    capacities, scope = found
    return explain(sizer.requirement(read_pod_demand(pod)), capacities, sizer.geometry.partition_modes(), scope=scope)
