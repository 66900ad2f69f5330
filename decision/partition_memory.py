"""Partition memory in use vs idle inside the partitions bound pods hold, per node (for /metrics).

Pure: from the node cache's bound pods and partition sizes, and the sizer's requirement function
(memoised per demand, so a scrape costs one dict look-up per bound pod). A pod's partitions are
*sized* when its annotations give the bytes each partition must hold (``Requirement.required_bytes``)
and its node's partition size is known; used = needed x partitions, idle = (partition size -
needed) x partitions, never negative. Partitions of an unannotated or unsizable pod, or on a node
whose partition size is unknown, are counted as unsized.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from decision.pod_demand import BoundPodUsage, PodDemand
from decision.requirement import Requirement


@dataclass(frozen=True, slots=True)
class NodePartitionMemory:
    """Bytes in use and idle inside a node's bound, sized partitions; partitions not sized."""

    used_bytes: int = 0
    idle_bytes: int = 0
    unsized_partitions: int = 0


def partition_memory(
    usages: Iterable[BoundPodUsage],
    partition_bytes: Mapping[str, int | None],
    requirement: Callable[[PodDemand], Requirement],
) -> dict[str, NodePartitionMemory]:
    """Per node holding bound partitions: used and idle bytes of its sized pods, and unsized partitions."""
    totals: dict[str, list[int]] = {}
    for usage in usages:
        row = totals.setdefault(usage.node, [0, 0, 0])
        size = partition_bytes.get(usage.node)
        needed = requirement(usage.demand).required_bytes if usage.demand is not None else None
        if needed is None or size is None:
            row[2] += usage.partitions
            continue
        row[0] += needed * usage.partitions
        row[1] += max(size - needed, 0) * usage.partitions
    return {node: NodePartitionMemory(*row) for node, row in totals.items()}
