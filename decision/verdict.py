"""Stage 3 of a decision: the verdict for one node - filter, score and the scoring policy. Pure.

A verdict depends only on the node's ``Capacity``: its allocatable partitions, the size of its
smallest partition, the partitions bound pods use on it, and the defect that makes it unreadable.
The service and the planner both decide with these functions.

Scores (prioritize). kube-scheduler's extender scores are int64 in 0..MaxExtenderPriority = 10
(k8s.io/kube-scheduler/extender/v1; the scheduler multiplies them by the extender's weight and by
MaxNodeScore/MaxExtenderPriority and does not clamp them, so we stay in range). 0 is reserved for a
node that does not fit; fitting nodes score 1..10. best-fit prefers the smallest partition that
holds the model (least idle memory), then the node with the fewest partitions left free; spread
prefers the opposite, like kube-scheduler's default LeastAllocated. Ten levels cannot give each of
the 14 partition sizes that exist (21.3 to 288 GiB) a level of its own, so the levels go where the
candidates of one call differ:

1. with at most ten distinct partition sizes among them (a cluster usually has a few node shapes),
   each size gets a level of its own, best 10, next lower, ...; the levels left over separate
   nodes of one size by how full they are, best sizes first (the top scores are the ones that
   decide), and the remaining fullness ranks of a size share its last level;
2. with more sizes than that, the level is a log-scale bucket of the partition size over
   21.3-288 GiB: ten buckets of a factor ~1.3 each, monotone in size, so a larger partition never
   scores above a smaller one under best-fit, and only sizes closer than that factor share a level.

The order of the candidates is never inverted and a fitting node never scores 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Final

from decision import reasons
from decision.reasons import Rejection
from decision.requirement import Requirement

# kube-scheduler's MaxExtenderPriority (k8s.io/kube-scheduler/extender/v1 types.go); min is 0.
MAX_SCORE: Final = 10
# Lowest score of a node that fits: 0 means "does not fit".
MIN_FIT_SCORE: Final = 1
# The range of partition sizes a cluster can hold (sizing/data/gpus.json): MI300X CPX/NPS4 at
# 21.3 GiB (one-third of 64 GiB per XCD pair) up to MI355X SPX at 288 GiB.
SMALLEST_PARTITION_BYTES: Final = 64 * 2**30 // 3
LARGEST_PARTITION_BYTES: Final = 288 * 2**30

# (allocatable partitions, bytes of the smallest partition or None, partitions used, defect or None)
Capacity = tuple[int, int | None, int, str | None]

_NO_PARTITIONS = reasons.no_partitions()
_SIZE_UNKNOWN = reasons.partition_size_unknown()


class Policy(str, Enum):
    BEST_FIT = "best-fit"
    SPREAD = "spread"

    def __str__(self) -> str:
        return self.value


def filter_verdict(requirement: Requirement, capacity: Capacity) -> Rejection | None:
    """None when a node can take the pod, else why not.

    A node passes when its (smallest) partition holds what one partition must hold and it has at
    least the requested number of partitions allocatable and free (free = allocatable minus the
    partitions of pods already bound to it, when that is known).
    """
    allocatable, partition_bytes, used, defect = capacity
    wanted = requirement.partitions
    if wanted == 0 and not requirement.is_sized:
        return None  # not a GPU-partition pod: none of our business
    if defect is not None:
        return reasons.unreadable_node(defect)
    if allocatable <= 0:
        return _NO_PARTITIONS
    required = requirement.required_bytes
    if required is not None:
        if partition_bytes is None:
            return _SIZE_UNKNOWN
        if partition_bytes < required:
            return reasons.partition_too_small(partition_bytes, required)
    if wanted > allocatable:
        return reasons.too_few_partitions(allocatable, wanted)
    free = allocatable - used
    if wanted > free:
        return reasons.not_enough_free(free, wanted)
    return None


def size_bucket(partition_bytes: int) -> int:
    """0 for the smallest partition size that exists .. MAX_SCORE - MIN_FIT_SCORE for the largest,
    on a log scale; integer arithmetic only (bit lengths of 16th powers, ~1/16 bit resolution)."""
    levels = MAX_SCORE - MIN_FIT_SCORE
    clamped = min(max(partition_bytes, SMALLEST_PARTITION_BYTES), LARGEST_PARTITION_BYTES)
    # log2 in sixteenths of a bit: exact enough for sizes a factor 1.3 apart, no floats.
    position = (clamped**16).bit_length() - (SMALLEST_PARTITION_BYTES**16).bit_length()
    span = (LARGEST_PARTITION_BYTES**16).bit_length() - (SMALLEST_PARTITION_BYTES**16).bit_length()
    return position * levels // span


def score_capacities(requirement: Requirement, capacities: Iterable[Capacity], policy: Policy) -> dict[Capacity, int]:
    """Score each distinct capacity of the feasible nodes of one call (1..10; see the module doc).
    Nodes with equal capacities get equal scores, so scoring the distinct capacities of a
    5,000-node request is the same as scoring every node, and far cheaper."""
    distinct = set(capacities)
    if not distinct:
        return {}
    prefer_low = policy is Policy.BEST_FIT

    sized = requirement.model_bytes is not None

    def size(capacity: Capacity) -> int:  # an unsized pod: packing decides alone
        return (capacity[1] or 0) if sized else 0

    def free(capacity: Capacity) -> int:
        return capacity[0] - capacity[2]

    # Distinct (size, free) pairs, best first, grouped by size.
    pairs = sorted({(size(c), free(c)) for c in distinct}, reverse=not prefer_low)
    groups: list[list[tuple[int, int]]] = []
    for pair in pairs:
        if groups and groups[-1][0][0] == pair[0]:
            groups[-1].append(pair)
        else:
            groups.append([pair])
    levels = MAX_SCORE - MIN_FIT_SCORE + 1
    if len(groups) > levels:  # more sizes than levels: log-scale buckets of the size
        if prefer_low:
            return {c: MAX_SCORE - size_bucket(size(c)) for c in distinct}
        return {c: MIN_FIT_SCORE + size_bucket(size(c)) for c in distinct}
    # One level per size; the levels left over separate the fullness of nodes, best sizes first.
    spare = levels - len(groups)
    level, score_of = MAX_SCORE, {}
    for group in groups:
        extra = min(len(group) - 1, spare)
        spare -= extra
        for rank, pair in enumerate(group):
            score_of[pair] = level - min(rank, extra)
        level -= extra + 1
    return {c: score_of[(size(c), free(c))] for c in distinct}
