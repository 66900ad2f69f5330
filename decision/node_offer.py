"""Stage 2 of a decision: what a node offers, read from the labels and allocatable the device
plugin publishes (keys and label readers from ``sizing.contract``).

Two parsers side by side, both total (they never raise) and both on ``sizing.contract``:

* ``read_node_offer`` (full): every partition label, for the node cache and the planner;
* ``offer_fields`` (fast): only what a decision reads - name, allocatable count, partition size,
  and the first unreadable value - for request bodies with thousands of full Node objects. Label
  values repeat across nodes, so their parse is memoised.

Both compute the decision fields with the same function, so they cannot disagree. A value that
cannot be read makes the node's ``defect`` (a message naming the label or allocatable), and the
verdict rejects the node with it for every pod that asks for partitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from sizing.bounded import MAX_TEXT_LENGTH, BoundedValueError, parse_count
from sizing.contract import LABEL_MEMORY_MIB, RESOURCE_NAME, NodeLabels, read_memory_mib_label, read_node_labels

# Distinct (memory-mib label, allocatable) raw pairs remembered by ``offer_fields``: a fleet has a
# handful of node shapes, so this holds every one of them with a wide margin.
OFFER_FIELDS_CACHE_SIZE: Final = 1024
# Longest node name: a DNS-1123 subdomain (apimachinery IsDNS1123Subdomain).
MAX_NODE_NAME: Final = 253

# (allocatable partitions, bytes of the smallest partition or None, defect or None)
DecisionFields = tuple[int, int | None, str | None]


@dataclass(frozen=True, slots=True)
class NodeOffer:
    """The GPU-partition facts of one node, as the node cache and the planner keep them."""

    name: str
    allocatable: int  # amd.com/gpu-partition in status.allocatable; 0 when absent or unreadable
    partition_bytes: int | None  # memory of the node's smallest partition; None when unknown
    defect: str | None = None  # the unreadable allocatable or memory label, named; rejects the node
    labels: NodeLabels = field(default_factory=NodeLabels)  # every partition label, as sizing.contract reads them

    @property
    def decision_fields(self) -> DecisionFields:
        return self.allocatable, self.partition_bytes, self.defect


def decision_fields(raw_memory_mib: object, raw_allocatable: object) -> DecisionFields:
    """(allocatable, partition bytes, defect) from the raw label and allocatable values."""
    defect = None
    allocatable = 0
    if raw_allocatable is not None:
        try:
            allocatable = parse_count(f"node allocatable {RESOURCE_NAME}", raw_allocatable)
        except BoundedValueError as error:
            defect = f"invalid {error}"
    partition_bytes = None
    if raw_memory_mib is not None:
        try:
            partition_bytes = read_memory_mib_label(raw_memory_mib)
        except BoundedValueError as error:
            defect = defect or f"invalid node {error}"
    return allocatable, partition_bytes, defect


_cached_decision_fields = lru_cache(maxsize=OFFER_FIELDS_CACHE_SIZE, typed=True)(decision_fields)  # 1 and True differ
# Raw values used as cache keys as they are: a str only up to MAX_TEXT_LENGTH (longer is refused by
# the parsers on its length alone; as a key, a hostile multi-MB label value would stay in memory for
# good); orjson decodes no int wider than 64 bits.
_HASHABLE_SCALARS: Final = frozenset({int, float, bool, type(None)})


def _parts(node: object) -> tuple[str, Mapping[str, Any] | None, object, object] | None:
    """(name, labels, raw memory-mib label, raw allocatable count) of a v1.Node JSON object;
    None if it has no usable name."""
    if not isinstance(node, dict):
        return None
    metadata = node.get("metadata")
    if not isinstance(metadata, dict):
        return None
    name = metadata.get("name")
    if not isinstance(name, str) or not name or len(name) > MAX_NODE_NAME:
        return None
    labels = metadata.get("labels")
    labels = labels if isinstance(labels, dict) else None
    status = node.get("status")
    allocatable = status.get("allocatable") if isinstance(status, dict) else None
    raw_memory = labels.get(LABEL_MEMORY_MIB) if labels is not None else None
    raw_count = allocatable.get(RESOURCE_NAME) if isinstance(allocatable, dict) else None
    return name, labels, raw_memory, raw_count


def offer_fields(node: object) -> tuple[str, int, int | None, str | None] | None:
    """(name, allocatable, partition bytes, defect) of a v1.Node JSON object; None if it has no
    name. Several times cheaper than ``read_node_offer`` for hundreds of full Node objects."""
    parts = _parts(node)
    if parts is None:
        return None
    name, _, raw_memory, raw_count = parts
    # Cached only when both are short (see _HASHABLE_SCALARS); inline: this runs for thousands of nodes.
    short = MAX_TEXT_LENGTH
    if ((len(raw_memory) <= short if type(raw_memory) is str else type(raw_memory) in _HASHABLE_SCALARS)
            and (len(raw_count) <= short if type(raw_count) is str else type(raw_count) in _HASHABLE_SCALARS)):
        return name, *_cached_decision_fields(raw_memory, raw_count)
    return name, *decision_fields(raw_memory, raw_count)


def read_node_offer(node: object) -> NodeOffer | None:
    """Read name, partition labels and allocatable of a v1.Node JSON object; None if it has no name."""
    parts = _parts(node)
    if parts is None:
        return None
    name, labels, raw_memory, raw_count = parts
    count, partition_bytes, defect = decision_fields(raw_memory, raw_count)
    return NodeOffer(name, count, partition_bytes, defect, read_node_labels(labels or {}))
