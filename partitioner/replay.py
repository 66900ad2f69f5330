"""The proof: place the workloads on a layout with the planner's own ``place_one`` (the extender's
filter, best-fit score and the device plugin's partition taking), online, in the workloads' order.

``planning.place_all`` rebuilds every node's labels before every decision (about 6 s for 100 nodes
x 8 GPUs and 500 workloads). A node's offer (its labels and allocatable, parsed) depends only on its GPUs'
partitioning, which placing never changes, so this replay reads it once per node and keeps the count of used
partitions as partitions are taken; every decision is still ``planning.place_one``'s. A test checks
that the replay and ``planning.place_all`` agree placement for placement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from extender import planning


class _ReplayNode(planning.NodeState):
    """A planner node whose offer is read once and whose used-partition count is kept."""

    def __init__(self, name: str, gpus: list[planning.GpuState]) -> None:
        super().__init__(name, gpus)
        self._offer: Any = None
        self._used = sum(gpu.used for gpu in gpus)

    @property
    def used(self) -> int:
        return self._used

    def offer(self) -> Any:  # the planner's NodeOffer (not exported)
        if self._offer is None:
            self._offer = super().offer()
        return self._offer

    def take(self, workload: str, requirement: Any) -> list[tuple[int, int]]:
        taken = super().take(workload, requirement)
        self._used += len(taken)
        return taken


def replay(cluster: planning.Cluster, workloads: Sequence[planning.Workload]) -> planning.PlanResult:
    """The best-fit plan for ``cluster``, equal to ``planning.place_all(cluster, workloads, policy=BEST_FIT)``."""
    policy = planning.Policy.BEST_FIT
    nodes: list[planning.NodeState] = []
    for node in cluster.nodes:
        state = planning.NodeState.from_plan(node)
        nodes.append(_ReplayNode(state.name, state.gpus))
    result = planning.PlanResult(policy, cluster, nodes)
    for workload in workloads:
        decision = planning.place_one(nodes, workload, policy=policy)
        if isinstance(decision, planning.Placement):
            result.placements.append(decision)
        else:
            result.unplaced.append(decision)
    return result
