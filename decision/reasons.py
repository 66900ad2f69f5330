"""Why a node is rejected: a small set of categories, each with a readable message.

kube-scheduler groups identical reason strings into the pod's event ("0/12 nodes are available:
8 gpu partition too small for model (24 GiB < 31 GiB), 4 node has no gpu partitions."), so
messages carry no node names; per-node detail goes to the logs. ``code`` is the metric label.

``unresolvable`` follows the scheduler's meaning of UnschedulableAndUnresolvable: evicting pods
from that node would not help (a too-small partition stays too small), so preemption skips it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from decision.text import gib_ceil, gib_floor
from sizing.contract import LABEL_MEMORY_MIB


class ReasonCode(str, Enum):
    """Metric label values; each maps to one message shape."""

    INVALID_ANNOTATION = "invalid_annotation"
    UNKNOWN_MODEL = "unknown_model"
    NEVER_FITS = "never_fits"
    NO_PARTITIONS = "no_partitions"
    PARTITION_SIZE_UNKNOWN = "partition_size_unknown"
    PARTITION_TOO_SMALL = "partition_too_small"
    TOO_FEW_PARTITIONS = "too_few_partitions"
    NOT_ENOUGH_FREE = "not_enough_free"
    UNREADABLE_NODE = "unreadable_node"
    NOT_IN_CACHE = "node_not_in_cache"
    NO_NODE_CACHE = "no_node_cache"


@dataclass(frozen=True, slots=True)
class Rejection:
    code: ReasonCode
    message: str
    unresolvable: bool


def no_partitions() -> Rejection:
    return Rejection(ReasonCode.NO_PARTITIONS, "node has no gpu partitions", unresolvable=True)


def partition_size_unknown() -> Rejection:
    return Rejection(
        ReasonCode.PARTITION_SIZE_UNKNOWN,
        f"gpu partition size unknown (label {LABEL_MEMORY_MIB} missing)",
        unresolvable=True,
    )


def unreadable_node(defect: str) -> Rejection:
    """A node whose allocatable or memory label cannot be read; ``defect`` names it and its value."""
    return Rejection(ReasonCode.UNREADABLE_NODE, defect, unresolvable=True)


def partition_too_small(partition_bytes: int, required_bytes: int) -> Rejection:
    return Rejection(
        ReasonCode.PARTITION_TOO_SMALL,
        f"gpu partition too small for model ({gib_floor(partition_bytes)} < {gib_ceil(required_bytes)})",
        unresolvable=True,
    )


def too_few_partitions(allocatable: int, requested: int) -> Rejection:
    return Rejection(
        ReasonCode.TOO_FEW_PARTITIONS,
        f"node has fewer gpu partitions than requested ({allocatable} < {requested})",
        unresolvable=True,
    )


def not_enough_free(free: int, requested: int) -> Rejection:
    return Rejection(
        ReasonCode.NOT_ENOUGH_FREE,
        f"not enough free gpu partitions ({max(free, 0)} free < {requested} requested)",
        unresolvable=False,
    )


def not_in_cache() -> Rejection:
    return Rejection(
        ReasonCode.NOT_IN_CACHE, "node not yet in extender node cache", unresolvable=False
    )


def no_node_cache() -> Rejection:
    return Rejection(
        ReasonCode.NO_NODE_CACHE,
        "extender runs without a node cache (--node-cache off) but was sent NodeNames;"
        " register it with nodeCacheCapable: false or start it with --node-cache watch",
        unresolvable=False,
    )


class KnownMode(Protocol):
    """A partition mode of a known GPU (``sizing.PartitionMode`` is one)."""

    @property
    def product(self) -> str: ...

    @property
    def compute_mode(self) -> str: ...

    @property
    def memory_bytes(self) -> int: ...


def smallest_mode_holding(required_bytes: int, modes: Iterable[KnownMode]) -> str | None:
    """The smallest partition of a known GPU that holds ``required_bytes``, for a fix: "MI300X DPX
    (96 GiB)"; among equal sizes the first product and mode of gpus.json. None when none does."""
    holding = [(m.memory_bytes, i, m) for i, m in enumerate(modes) if m.memory_bytes >= required_bytes]
    if not holding:
        return None
    size, _, mode = min(holding)
    return f"{mode.product} {mode.compute_mode} ({gib_floor(size)})"


def _partitions_text(partitions: int) -> str:
    return "a partition" if partitions == 1 else f"{partitions} partitions on one node, each"


def cluster_too_small(subject: str, partitions: int, required_bytes: int, largest_bytes: int | None,
                      holder: str | None, *, scope: str = "in this cluster") -> Rejection:
    """No node of the cluster (or of ``scope``, the nodes the pod may run on) has partitions that hold
    the pod (what every node's ``partition_too_small`` adds up to), with the fix: the smallest known
    partition that would."""
    where = (f"no node {scope} advertises gpu partitions" if largest_bytes is None
             else f"the largest {scope} is {gib_floor(largest_bytes)}")
    fix = (f"the smallest that holds it is {holder}: repartition a node, or lower max-model-len or precision"
           if holder is not None else "no known GPU partition holds it: lower max-model-len or precision,"
                                      " or request more partitions")
    return Rejection(ReasonCode.PARTITION_TOO_SMALL,
                     f"{subject} needs {_partitions_text(partitions)} with >= {gib_ceil(required_bytes)};"
                     f" {where}; {fix}", unresolvable=True)


def cluster_too_few(subject: str, partitions: int, required_bytes: int, most: int) -> Rejection:
    """Nodes have partitions that hold the pod, but none has as many as it requests."""
    return Rejection(ReasonCode.TOO_FEW_PARTITIONS,
                     f"{subject} needs {partitions} partitions with >= {gib_ceil(required_bytes)} on one node;"
                     f" the nodes whose partitions hold it have at most {most}; repartition a node into"
                     f" at least {partitions} such partitions", unresolvable=True)


def summarize(messages: Iterable[str], total_nodes: int) -> str:
    """The pod event kube-scheduler would write: reasons counted and sorted like FitError."""
    counts = Counter(messages)
    parts = [f"{n} {reason}" for reason, n in sorted(counts.items())]
    return f"0/{total_nodes} nodes are available: {', '.join(parts)}."
