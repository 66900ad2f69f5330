"""Place workloads one by one with the service's own filter and prioritize decisions.

Each node is modelled as GPUs with partitions. Before every placement the planner turns a node
into the labels and allocatable our device plugin would publish (``sizing.contract.node_labels``,
the device plugin's own function) and parses them with the same node-reading code, so the
verdict and score code path is the one the extender runs. After the
node is chosen, partitions are taken like the device plugin would: all on one GPU when one can
hold them, smallest partitions that hold the model first, on the GPU with the fewest free
partitions (keeps whole GPUs free).
Ties between equally scored nodes go to the first node in the cluster file (kube-scheduler
picks one at random), so a plan is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from decision import reasons
from decision.node_offer import NodeOffer, read_node_offer
from decision.nodes import filter_nodes, prioritize_nodes
from decision.pod_demand import read_pod_demand
from decision.requirement import Requirement, Sizer
from decision.verdict import Capacity, Policy
from extender.planning.geometry import PartitionGeometry
from extender.planning.inputs import Cluster, PlanNode, Workload
from sizing.contract import RESOURCE_NAME, PartitionShape, node_labels


@dataclass(frozen=True)
class Assignment:
    """A workload holding one partition."""

    workload: str
    subject: str
    model_bytes: int | None  # None for an unsized workload


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


@dataclass
class NodeState:
    name: str
    gpus: list[GpuState]
    _offer: NodeOffer | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_plan(cls, node: PlanNode) -> NodeState:
        return cls(node.name, [GpuState(i, g, [None] * g.partitions) for i, g in enumerate(node.gpus)])

    @property
    def capacity(self) -> int:
        return sum(len(gpu.slots) for gpu in self.gpus)

    @property
    def used(self) -> int:
        return sum(gpu.used for gpu in self.gpus)

    def labels(self) -> dict[str, str]:
        """The labels the device plugin would publish for these partitions (``sizing.contract``)."""
        shapes = [
            PartitionShape(g.product, g.compute_mode, g.memory_mode, g.compute_units, g.memory_bytes)
            for g in (gpu.geometry for gpu in self.gpus) for _ in range(g.partitions)
        ]
        return {label: value for label, value in node_labels(shapes).items() if value is not None}

    def allocatable(self) -> dict[str, str]:
        return {RESOURCE_NAME: str(self.capacity)} if self.gpus else {}

    def offer(self) -> NodeOffer:
        """The node as the extender reads it: the device plugin's labels and allocatable, parsed.
        Computed once: a node's GPUs and their partitioning do not change while it is planned."""
        if self._offer is None:
            labels, allocatable = self.labels(), self.allocatable()
            offer = read_node_offer({"metadata": {"name": self.name, "labels": labels},
                                     "status": {"allocatable": allocatable}})
            if offer is None:  # a name from a validated cluster file is always there
                raise AssertionError(f"planner node {self.name!r} has no readable name")
            self._offer = offer
        return self._offer

    def current_capacity(self) -> Capacity:
        """What a verdict reads of this node: its offer and the partitions already taken."""
        offer = self.offer()
        return (offer.allocatable, offer.partition_bytes, self.used, offer.defect)

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
        return taken


@dataclass(frozen=True)
class Placement:
    workload: str
    subject: str
    node: str
    partitions: tuple[tuple[int, int], ...]  # (gpu, slot)
    score: int


@dataclass(frozen=True)
class Unplaced:
    workload: str
    subject: str
    reason: str


@dataclass
class PlanResult:
    policy: Policy
    cluster: Cluster
    nodes: list[NodeState]
    placements: list[Placement] = field(default_factory=list)
    unplaced: list[Unplaced] = field(default_factory=list)

    @property
    def workload_count(self) -> int:
        return len(self.placements) + len(self.unplaced)

    @property
    def idle_bytes(self) -> int:
        """Memory left unused inside partitions that hold a sized workload."""
        return sum(
            gpu.geometry.memory_bytes - slot.model_bytes
            for node in self.nodes for gpu in node.gpus for slot in gpu.slots
            if slot is not None and slot.model_bytes is not None
        )

    @property
    def placed_bytes(self) -> int:
        """Memory the placed sized workloads use, summed over their partitions."""
        return sum(
            slot.model_bytes
            for node in self.nodes for gpu in node.gpus for slot in gpu.slots
            if slot is not None and slot.model_bytes is not None
        )

    @property
    def gpu_count(self) -> int:
        return sum(len(node.gpus) for node in self.nodes)

    @property
    def free_gpus(self) -> int:
        return sum(1 for node in self.nodes for gpu in node.gpus if gpu.used == 0)

    @property
    def free_partitions(self) -> int:
        return sum(gpu.free for node in self.nodes for gpu in node.gpus)


def place_one(
    nodes: list[NodeState], workload: Workload, *, policy: Policy, sizer: Sizer | None = None
) -> Placement | Unplaced:
    """Filter, prioritize and bind one workload, exactly as the service would decide it
    (``sizer``: the catalogue to size with; default the packaged one)."""
    requirement = (sizer or Sizer()).requirement(read_pod_demand(workload.to_pod()))
    subject = requirement.subject or "unsized"
    names = [node.name for node in nodes]
    capacities = [node.current_capacity() for node in nodes]
    outcome = filter_nodes(requirement, names, capacities, unknown=reasons.not_in_cache())
    if not outcome.passed:
        messages = [*outcome.failed.values(), *outcome.unresolvable.values()]
        return Unplaced(workload.name, subject, reasons.summarize(messages, len(names)))
    survivors = set(outcome.passed)
    candidates = [(name, capacity) for name, capacity in zip(names, capacities, strict=True) if name in survivors]
    scores = prioritize_nodes(requirement, [capacity for _, capacity in candidates], policy=policy)
    best = max(range(len(candidates)), key=scores.__getitem__)  # first of equals: cluster file order
    best_name = candidates[best][0]
    node = next(n for n in nodes if n.name == best_name)
    taken = node.take(workload.name, requirement)
    return Placement(workload.name, subject, best_name, tuple(taken), scores[best])


def place_all(cluster: Cluster, workloads: list[Workload], *, policy: Policy, sizer: Sizer | None = None) -> PlanResult:
    """Place the workloads one by one, in order, on a fresh copy of the cluster."""
    sizer = sizer or Sizer()
    result = PlanResult(policy, cluster, [NodeState.from_plan(node) for node in cluster.nodes])
    for workload in workloads:
        decision = place_one(result.nodes, workload, policy=policy, sizer=sizer)
        if isinstance(decision, Placement):
            result.placements.append(decision)
        else:
            result.unplaced.append(decision)
    return result
