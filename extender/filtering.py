"""The filter verdict for one node: pure, and the same code for the service and the planner."""

from __future__ import annotations

from extender import reasons
from extender.reasons import Rejection
from extender.requirements import Requirement

_NO_PARTITIONS = reasons.no_partitions()
_SIZE_UNKNOWN = reasons.partition_size_unknown()


def node_verdict(requirement: Requirement, allocatable: int, partition_bytes: int | None, used: int) -> Rejection | None:
    """None when a node can take the pod, else why not.

    A node passes when its (smallest) partition holds what one partition must hold and it has at
    least the requested number of partitions allocatable and free (free = allocatable minus the
    partitions of pods already bound to it, when that is known). The inputs are the node's
    ``NodeKey``: everything about a node the decision depends on.
    """
    wanted = requirement.partitions
    if wanted == 0 and not requirement.is_sized:
        return None  # not a GPU-partition pod: none of our business
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
