"""Why an opted-in pod is still Pending, as one Event: the partition size it needs and the fix. Pure.

In native mode (docs/extender.md) kube-scheduler places pods without the extender, so its
FailedScheduling event only says "didn't match Pod's node affinity/selector". This module words
what the extender's /filter would have said about the whole cluster, with the same reasons module
(``decision.reasons``: ``cluster_too_small``, ``cluster_too_few``, the smallest known partition that
holds it), from the pod's ``Requirement`` (the extender's own sizing) and the partition sizes the
nodes advertise. Only the size and count are explained here: a pod kept waiting by busy partitions
gets kube-scheduler's own "Insufficient amd.com/gpu-partition"; a pod that cannot be sized is denied
by the webhook and named by the partition controller (NoRepartitionHelps: "cannot be sized").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from decision import reasons
from decision.pod_demand import read_pod_demand
from decision.reasons import KnownMode, ReasonCode
from decision.requirement import Requirement, Sizer
from sizing.contract import ANNOTATION_MODEL, ANNOTATION_PROFILE

# kube-scheduler's condition on a pod it tried and could not place (status.conditions).
POD_SCHEDULED: Final = "PodScheduled"


class PartitionOffer(Protocol):
    """What one node offers (``webhook.inventory.Offer`` is one)."""

    @property
    def memory_bytes(self) -> int: ...

    @property
    def count(self) -> int | None: ...


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


def explain(requirement: Requirement, offers: Sequence[PartitionOffer], modes: Iterable[KnownMode],
            ) -> PendingNote | None:
    """The note for a pod with this requirement in a cluster whose nodes offer ``offers``; None when
    the size and count are not why it waits (or it is not sized, or cannot be: see the module doc)."""
    if requirement.rejection is not None or requirement.required_bytes is None:
        return None
    required = requirement.required_bytes
    partitions = max(requirement.partitions, 1)
    subject = requirement.subject or "the workload"
    holding = [o for o in offers if o.memory_bytes >= required]
    if not holding:
        largest = max((o.memory_bytes for o in offers), default=None)
        holder = reasons.smallest_mode_holding(required, modes)
        rejection = reasons.cluster_too_small(subject, partitions, required, largest, holder)
    elif all(o.count is not None and o.count < partitions for o in holding):
        most = max(o.count or 0 for o in holding)
        rejection = reasons.cluster_too_few(subject, partitions, required, most)
    else:
        return None
    return PendingNote(event_reason(rejection.code), rejection.message)


def explain_pod(pod: Mapping[str, Any], sizer: Sizer, offers: Sequence[PartitionOffer]) -> PendingNote | None:
    """``explain`` for a waiting pod (``is_waiting``), sized as the extender sizes it."""
    if not is_waiting(pod):
        return None
    return explain(sizer.requirement(read_pod_demand(pod)), offers, sizer.geometry.partition_modes())
