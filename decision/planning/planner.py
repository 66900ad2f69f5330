"""Place workloads one by one with the service's own filter and prioritize decisions.

Each node is a ``NodeState``: GPUs with partitions, read as the labels and allocatable our device
plugin would publish (``sizing.contract.node_labels``, the device plugin's own function) parsed with
the extender's node-reading code, so the verdict and score code path is the one the extender runs.
After the node is chosen, partitions are taken like the device plugin would (``NodeState.take``).
Ties between equally scored nodes go to the first node in the cluster file (kube-scheduler
picks one at random), so a plan is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from decision import reasons
from decision.nodes import filter_nodes, prioritize_nodes
from decision.planning.inputs import Cluster, Workload
from decision.planning.node_state import NodeState
from decision.pod_demand import read_pod_demand
from decision.requirement import Sizer
from decision.verdict import Policy


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
            for node in self.nodes if node.used for gpu in node.gpus for slot in gpu.slots
            if slot is not None and slot.model_bytes is not None
        )

    @property
    def placed_bytes(self) -> int:
        """Memory the placed sized workloads use, summed over their partitions."""
        return sum(
            slot.model_bytes
            for node in self.nodes if node.used for gpu in node.gpus for slot in gpu.slots
            if slot is not None and slot.model_bytes is not None
        )

    @property
    def gpu_count(self) -> int:
        return sum(node.gpu_count for node in self.nodes)

    @property
    def free_gpus(self) -> int:
        return sum(node.gpu_count - node.gpus_used for node in self.nodes)

    @property
    def free_partitions(self) -> int:
        return sum(node.capacity - node.used for node in self.nodes)


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


def place_all(cluster: Cluster, workloads: Sequence[Workload], *, policy: Policy,
              sizer: Sizer | None = None) -> PlanResult:
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
