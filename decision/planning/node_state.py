"""One node being planned: its GPUs' partitions, which of them are taken, and the node as the
extender reads it. The one node state of the planner, the advisor's replay and the partition
controller's simulation.

What a node offers (the device plugin's labels for its partitionings, and the allocatable, parsed as
the extender parses them) depends only on its GPUs' geometries, which placing never changes: it is
computed once per distinct set of GPUs (``partitioning``, memoised) and shared by every node and
every plan with those GPUs. The used-partition count is kept as partitions are taken, so a decision
reads a node in constant time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from decision.node_offer import decision_fields
from decision.planning.geometry import PartitionGeometry
from decision.planning.inputs import PlanNode
from decision.requirement import Requirement
from decision.verdict import Capacity
from sizing.contract import LABEL_MEMORY_MIB, RESOURCE_NAME, PartitionShape, node_labels

# Distinct GPU sets remembered by ``partitioning``: a cluster has a handful of node shapes; the
# advisor's bound allows a few hundred (272 kinds with gpus.json's products, 1-16 GPUs each).
PARTITIONING_CACHE_SIZE: Final = 1024


@dataclass(frozen=True, slots=True)
class Assignment:
    """A workload holding one partition."""

    workload: str
    subject: str
    model_bytes: int | None  # None for an unsized workload


# What holds the partitions a node starts with taken (bound pods, partitions its GPUs lack).
HELD: Final = Assignment("bound", "bound", None)


@dataclass
class GpuState:
    index: int
    geometry: PartitionGeometry
    slots: list[Assignment | None] = field(default_factory=list)

    @property
    def free(self) -> int:
        return sum(1 for slot in self.slots if slot is None)

    @property
    def used(self) -> int:
        return len(self.slots) - self.free


@dataclass(frozen=True, slots=True)
class Partitioning:
    """What a node with these GPUs offers, as the extender reads it (shared by alike nodes)."""

    labels: Mapping[str, str]  # the device plugin's partition labels (sizing.contract.node_labels)
    allocatable: int  # amd.com/gpu-partition, parsed
    partition_bytes: int | None  # the smallest partition, parsed from its label
    defect: str | None  # an unreadable label or count (never, for geometries from gpus.json)


@lru_cache(maxsize=PARTITIONING_CACHE_SIZE)
def partitioning(gpus: tuple[PartitionGeometry, ...]) -> Partitioning:
    """The labels the device plugin would publish for these GPUs and their allocatable, read back
    with the extender's own parser (``decision.node_offer.decision_fields``)."""
    shapes = [PartitionShape(g.product, g.compute_mode, g.memory_mode, g.compute_units, g.memory_bytes)
              for g in gpus for _ in range(g.partitions)]
    labels = {label: value for label, value in node_labels(shapes).items() if value is not None}
    count = str(len(shapes)) if gpus else None
    allocatable, partition_bytes, defect = decision_fields(labels.get(LABEL_MEMORY_MIB), count)
    return Partitioning(labels, allocatable, partition_bytes, defect)


class NodeState:
    """A node's partitions while a plan is made; ``take`` gives partitions to a workload as the
    device plugin would: all on one GPU when one can hold them, smallest partitions that hold the
    model first, on the GPU with the fewest free partitions (keeps whole GPUs free)."""

    __slots__ = ("_labels", "_partitioning", "gpus", "name", "used")

    def __init__(self, name: str, gpus: Sequence[PartitionGeometry], *, labels: Mapping[str, str] | None = None,
                 held: int = 0) -> None:
        """``labels``: the node's labels besides the partition labels (what nodeSelectors match);
        ``held``: partitions taken before planning (bound pods, partitions the GPUs lack), GPU by GPU."""
        self.name = name
        self.gpus = [GpuState(i, g, [None] * g.partitions) for i, g in enumerate(gpus)]
        self._partitioning = partitioning(tuple(gpus))
        self._labels = {**labels, **self._partitioning.labels} if labels else self._partitioning.labels
        self.used = 0
        self._hold(held)

    @classmethod
    def from_plan(cls, node: PlanNode) -> NodeState:
        return cls(node.name, node.gpus)

    @property
    def capacity(self) -> int:
        return sum(len(gpu.slots) for gpu in self.gpus)

    def labels(self) -> Mapping[str, str]:
        """The node's labels: the ones given and the device plugin's for these partitions (``sizing.contract``)."""
        return self._labels

    def allocatable(self) -> dict[str, str]:
        return {RESOURCE_NAME: str(self.capacity)} if self.gpus else {}

    def current_capacity(self) -> Capacity:
        """What a verdict reads of this node: its offer and the partitions already taken."""
        offer = self._partitioning
        return (offer.allocatable, offer.partition_bytes, self.used, offer.defect)

    def _hold(self, partitions: int) -> None:
        """Mark ``partitions`` partitions taken, GPU by GPU (which ones does not matter to the
        extender, which judges a node by its counts)."""
        left = partitions
        for gpu in self.gpus:
            for slot in range(len(gpu.slots)):
                if left <= 0:
                    return
                if gpu.slots[slot] is None:
                    gpu.slots[slot] = HELD
                    self.used += 1
                    left -= 1

    def take(self, workload: str, requirement: Requirement) -> list[tuple[int, int]]:
        """Give ``requirement.partitions`` partitions to the workload; returns (gpu, slot) pairs."""
        needed = requirement.partitions
        fitting = [
            gpu for gpu in self.gpus
            if requirement.required_bytes is None or gpu.geometry.memory_bytes >= requirement.required_bytes
        ]
        taken: list[tuple[int, int]] = []
        assignment = Assignment(workload, requirement.subject, requirement.model_bytes)
        while len(taken) < needed:
            remaining = needed - len(taken)
            candidates = [gpu for gpu in fitting if gpu.free]
            if not candidates:
                raise AssertionError(f"{self.name} passed the filter but has no free partition for {workload}")
            # One GPU for all the partitions if any can hold them (tensor parallel stays on one GPU),
            # the smallest fitting partitions, then the GPU with the fewest free ones.
            whole = [gpu for gpu in candidates if gpu.free >= remaining]
            gpu = min(whole or candidates, key=lambda g: (g.geometry.memory_bytes, g.free, g.index))
            for _ in range(min(remaining, gpu.free)):
                slot = gpu.slots.index(None)
                gpu.slots[slot] = assignment
                taken.append((gpu.index, slot))
        self.used += len(taken)
        return taken
