"""One node being planned: its GPUs' partitions, which of them are taken, and the node as the
extender reads it. The one node state of the planner, the advisor's replay and the partition
controller's simulation.

What a node offers (the device plugin's labels for its partitionings, and the allocatable, parsed as
the extender parses them) depends only on its GPUs' geometries, which placing never changes: it is
computed once per distinct set of GPUs (``partitioning.partitioning_of``) and shared by every node
and every plan with those GPUs. The used-partition count is kept as partitions are taken, so a
decision reads a node in constant time, and a GPU's partitions are laid out only when the node is
first given a pod: a node no pod lands on costs a name and two references.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from decision.planning.geometry import PartitionGeometry
from decision.planning.inputs import PlanNode
from decision.planning.partitioning import Partitioning, partitioning_of
from decision.requirement import Requirement
from decision.verdict import Capacity
from sizing.contract import RESOURCE_NAME


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


class NodeState:
    """A node's partitions while a plan is made; ``take`` gives partitions to a workload as the
    device plugin would: all on one GPU when one can hold them, smallest partitions that hold the
    model first, on the GPU with the fewest free partitions (keeps whole GPUs free)."""

    __slots__ = ("_geometries", "_gpus", "_labels", "_partitioning", "name", "used")

    def __init__(self, name: str, gpus: Sequence[PartitionGeometry], *, labels: Mapping[str, str] | None = None,
                 held: int = 0, partitioning: Partitioning | None = None) -> None:
        """``labels``: the node's labels besides the partition labels (what nodeSelectors match);
        ``held``: partitions taken before planning (bound pods, partitions the GPUs lack), GPU by GPU;
        ``partitioning``: ``partitioning_of(gpus)`` when the caller has it."""
        self.name = name
        self._geometries = tuple(gpus)
        self._gpus: list[GpuState] | None = None
        self._partitioning = partitioning or partitioning_of(self._geometries)
        self._labels = {**labels, **self._partitioning.labels} if labels else self._partitioning.labels
        self.used = 0
        if held:
            self._hold(held)

    def __repr__(self) -> str:
        return f"NodeState({self.name!r}, {self.gpu_count} GPUs, {self.used}/{self.capacity} partitions used)"

    @classmethod
    def from_plan(cls, node: PlanNode) -> NodeState:
        return cls(node.name, node.gpus, partitioning=node.partitioning)

    @property
    def gpus(self) -> list[GpuState]:
        """The GPUs and their partitions, laid out on first use."""
        if self._gpus is None:
            self._gpus = [GpuState(i, g, [None] * g.partitions) for i, g in enumerate(self._geometries)]
        return self._gpus

    @property
    def gpu_count(self) -> int:
        return len(self._geometries)

    @property
    def gpus_used(self) -> int:
        """GPUs with a partition taken."""
        return sum(1 for gpu in self.gpus if gpu.used) if self.used else 0

    @property
    def capacity(self) -> int:
        return self._partitioning.partitions

    def labels(self) -> Mapping[str, str]:
        """The node's labels: the ones given and the device plugin's for these partitions (``sizing.contract``)."""
        return self._labels

    def allocatable(self) -> dict[str, str]:
        return {RESOURCE_NAME: str(self.capacity)} if self._geometries else {}

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
