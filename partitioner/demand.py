"""What one workload asks of a partition, as the planner itself decides it.

The planner keeps the requirement it computes inside ``place_one`` to itself, so the advisor asks
it directly: for every partitioning a node could be given, would ``planning.place_one`` put this
workload on an empty node of that partitioning? The answers are monotone in partition size, and
the smallest size that holds the workload is all the layout search needs. Workloads with the same
spec (replicas) are asked once. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from decision import planning, text
from partitioner.modes import ModeOption

GIB = text.GIB
gib = text.gib_floor  # a size for messages: "24 GiB", "42.6 GiB" (rounded down to a tenth)


@dataclass(frozen=True, slots=True)
class Demand:
    """One workload as the layout search sees it."""

    index: int  # position in the workload order
    name: str
    subject: str
    partitions: int  # partitions it takes on one node
    required_bytes: int  # the smallest candidate partition size that holds it; 0 = any
    problem: str | None  # why no candidate partitioning can hold it (the planner's reason), else None

    @property
    def uses_gpus(self) -> bool:
        return self.problem is None and self.partitions > 0


def _fits(workload: planning.Workload, option: ModeOption, gpus: int) -> planning.Placement | planning.Unplaced:
    node = planning.NodeState.from_plan(planning.PlanNode("probe", (option.geometry,) * gpus))
    return planning.place_one([node], workload, policy=planning.Policy.BEST_FIT)


def spec_key(spec: planning.WorkloadSpec) -> str:
    """What a workload asks of a partition, names and replicas aside: workloads with one key are probed once."""
    return spec.model_dump_json(exclude={"name", "replicas"})


def demands_of(workloads: Sequence[planning.Workload], options: Iterable[ModeOption], max_gpus: int) -> list[Demand]:
    """The demand of each workload against the given partitionings (nodes of up to ``max_gpus`` GPUs)."""
    by_size = sorted({o.partition_bytes: o for o in options}.values(), key=lambda o: o.partition_bytes)
    known: dict[str, tuple[str, int, str | None]] = {}
    out = []
    for index, workload in enumerate(workloads):
        key = spec_key(workload.spec)
        if key not in known:
            partitions = workload.spec.partitions
            required: int | None = None
            last: planning.Placement | planning.Unplaced | None = None
            for option in by_size:
                gpus = min(max_gpus, max(1, -(-partitions // option.partitions)))
                last = _fits(workload, option, gpus)
                if isinstance(last, planning.Placement):
                    required = 0 if partitions == 0 else option.partition_bytes
                    break
            subject = last.subject if last is not None else "unsized"
            if required is None:
                reason = last.reason if isinstance(last, planning.Unplaced) else "no partitioning to try"
                known[key] = (subject, 0, reason.removeprefix("0/1 nodes are available: 1 "))
            else:
                known[key] = (subject, required, None)
        subject, required_bytes, problem = known[key]
        out.append(Demand(index, workload.name, subject, workload.spec.partitions, required_bytes, problem))
    return out
