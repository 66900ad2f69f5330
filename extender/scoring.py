"""Node scores 0..10 for prioritize: best-fit packs, spread is its mirror image (for comparison).

best-fit orders nodes first by the memory a partition leaves unused after the model (least
wins), then by how many partitions stay free on the node (fewest wins), so small models fill
small partitions and busy nodes, and big partitions and empty GPUs stay available for big
models. spread prefers the opposite, like kube-scheduler's default LeastAllocated scoring.

The order is strict, not a weighted blend: kube-scheduler adds our score to other plugins' and
keeps the node with the highest total, so the best node must get the highest score whatever
the spread of sizes in the cluster. Scores go down in steps by rank among the candidates of one
call: each partition size further from the best costs SIZE_STEP points, and within a size the
nodes that are not the best packed lose PACKING_STEP point.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import Enum

from extender.requirements import Requirement

# kube-scheduler's MaxExtenderPriority (k8s.io/kube-scheduler/extender/v1 types.go); min is 0.
MAX_SCORE = 10
# Points between neighbouring partition sizes; 2 leaves room for the packing point below it,
# so five distinct sizes (MI300X SPX/DPX/QPX/CPX plus one more product) get distinct scores.
SIZE_STEP = 2
# Point a node loses within its size class when another node of that size is better packed.
PACKING_STEP = 1


class Policy(str, Enum):
    BEST_FIT = "best-fit"
    SPREAD = "spread"

    def __str__(self) -> str:
        return self.value


# Everything a decision needs to know about a node: (allocatable, partition bytes, partitions used).
NodeKey = tuple[int, int | None, int]


def _ranks(values: Sequence[int], *, prefer_low: bool) -> dict[int, int]:
    """Dense rank of each distinct value, 0 for the preferred end."""
    order = sorted(set(values), reverse=not prefer_low)
    return {value: rank for rank, value in enumerate(order)}


def score_keys(requirement: Requirement, keys: Iterable[NodeKey], policy: Policy) -> dict[NodeKey, int]:
    """Score each distinct key of feasible nodes. Nodes with equal keys get equal scores, so scoring
    the distinct keys of a 5,000-node request is the same as scoring every node, and far cheaper."""
    distinct = set(keys)
    if not distinct:
        return {}
    prefer_low = policy is Policy.BEST_FIT
    model_bytes = requirement.model_bytes
    if model_bytes is None:  # unsized pod: packing decides alone
        free_rank = _ranks([a - u for a, _, u in distinct], prefer_low=prefer_low)
        return {key: max(0, MAX_SCORE - free_rank[key[0] - key[2]]) for key in distinct}
    size_rank = _ranks([(p or 0) - model_bytes for _, p, _ in distinct], prefer_low=prefer_low)
    best_free: dict[int, int] = {}
    for allocatable, partition_bytes, used in distinct:
        rank, free = size_rank[(partition_bytes or 0) - model_bytes], allocatable - used
        current = best_free.get(rank)
        if current is None or (free < current if prefer_low else free > current):
            best_free[rank] = free
    scores = {}
    for key in distinct:
        allocatable, partition_bytes, used = key
        rank = size_rank[(partition_bytes or 0) - model_bytes]
        penalty = SIZE_STEP * rank + (0 if allocatable - used == best_free[rank] else PACKING_STEP)
        scores[key] = max(0, MAX_SCORE - penalty)
    return scores
