"""What a node offers, read from the labels and allocatable our device plugin publishes.

``parse_node_facts`` is pure and total: it never raises. A value that cannot be read becomes
``None`` (or 0 for the allocatable count) and the problem is named in ``NodeFacts.defects`` so the
filter can say which label is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kubernetes.utils.quantity import parse_quantity

RESOURCE_NAME = "amd.com/gpu-partition"  # extended resource advertised by deviceplugin/

LABEL_MEMORY_MIB = "amd.com/gpu-partition.memory-mib"  # MiB of the node's smallest partition
LABEL_COUNT = "amd.com/gpu-partition.count"
LABEL_COMPUTE_MODE = "amd.com/gpu-partition.compute-mode"
LABEL_MEMORY_MODE = "amd.com/gpu-partition.memory-mode"
LABEL_CU_COUNT = "amd.com/gpu-partition.cu-count"
LABEL_PRODUCT = "amd.com/gpu-partition.product"
LABEL_HOMOGENEOUS = "amd.com/gpu-partition.homogeneous"

MIB = 1 << 20

# Distinct (memory-mib label, allocatable) raw pairs remembered by ``node_key_fields``: a fleet
# has a handful of node shapes, so this holds every one of them with a wide margin.
KEY_FIELDS_CACHE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """The GPU-partition facts of one node, as the extender needs them."""

    name: str
    allocatable: int  # amd.com/gpu-partition in status.allocatable; 0 when absent or unreadable
    partition_bytes: int | None  # memory of the node's smallest partition; None when unknown
    partition_count: int | None = None
    compute_mode: str | None = None
    memory_mode: str | None = None
    cu_count: int | None = None
    product: str | None = None
    homogeneous: bool | None = None
    defects: tuple[str, ...] = ()  # one line per unreadable label / allocatable value

    @property
    def has_partitions(self) -> bool:
        return self.allocatable > 0


def _positive_int(labels: Mapping[str, Any], key: str, defects: list[str]) -> int | None:
    raw = labels.get(key)
    if raw is None:
        return None
    try:
        value = int(str(raw).strip())
    except ValueError:
        defects.append(f"label {key}={raw!r} is not an integer")
        return None
    if value <= 0:
        defects.append(f"label {key}={raw!r} is not positive")
        return None
    return value


def text_value(values: Mapping[str, Any], key: str) -> str | None:
    """A label or annotation as trimmed text; None when absent or blank."""
    raw = values.get(key)
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


def _flag(labels: Mapping[str, Any], key: str, defects: list[str]) -> bool | None:
    raw = labels.get(key)
    if raw is None:
        return None
    text = str(raw).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    defects.append(f"label {key}={raw!r} is not true/false")
    return None


def parse_allocatable_count(raw: Any) -> tuple[int, str | None]:
    """Read an ``amd.com/gpu-partition`` quantity: ``(count, defect)``; garbage counts as 0."""
    if raw is None:
        return 0, None
    text = str(raw).strip()
    if text.isdigit():  # the only form kubelet writes for device-plugin resources
        return int(text), None
    try:
        value = parse_quantity(text)
    except ValueError:
        return 0, f"allocatable {RESOURCE_NAME}={raw!r} is not a quantity"
    if value < 0 or value != int(value):
        return 0, f"allocatable {RESOURCE_NAME}={raw!r} is not a whole non-negative count"
    return int(value), None


def parse_node_facts(
    name: str, labels: Mapping[str, Any] | None, allocatable: Mapping[str, Any] | None
) -> NodeFacts:
    """Turn a node's labels and allocatable into ``NodeFacts``; never raises."""
    labels = labels if isinstance(labels, Mapping) else {}
    allocatable = allocatable if isinstance(allocatable, Mapping) else {}
    defects: list[str] = []
    count, defect = parse_allocatable_count(allocatable.get(RESOURCE_NAME))
    if defect:
        defects.append(defect)
    memory_mib = _positive_int(labels, LABEL_MEMORY_MIB, defects)
    return NodeFacts(
        name=name,
        allocatable=count,
        partition_bytes=memory_mib * MIB if memory_mib is not None else None,
        partition_count=_positive_int(labels, LABEL_COUNT, defects),
        compute_mode=text_value(labels, LABEL_COMPUTE_MODE),
        memory_mode=text_value(labels, LABEL_MEMORY_MODE),
        cu_count=_positive_int(labels, LABEL_CU_COUNT, defects),
        product=text_value(labels, LABEL_PRODUCT),
        homogeneous=_flag(labels, LABEL_HOMOGENEOUS, defects),
        defects=tuple(defects),
    )


def facts_from_node_object(node: Any) -> NodeFacts | None:
    """Read only name, labels and allocatable from a v1.Node JSON object; None if it has no name."""
    if not isinstance(node, Mapping):
        return None
    metadata = node.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        return None
    status = node.get("status")
    allocatable = status.get("allocatable") if isinstance(status, Mapping) else None
    return parse_node_facts(name, metadata.get("labels"), allocatable)


def _key_fields(raw_memory_mib: Any, raw_allocatable: Any) -> tuple[int, int | None]:
    """(allocatable, partition bytes) exactly as ``parse_node_facts`` reads them, without the rest."""
    count, _ = parse_allocatable_count(raw_allocatable)
    memory_mib = _positive_int({LABEL_MEMORY_MIB: raw_memory_mib}, LABEL_MEMORY_MIB, [])
    return count, memory_mib * MIB if memory_mib is not None else None


# Label and quantity strings repeat across nodes and requests, so their parse is memoised (pure).
_cached_key_fields = lru_cache(maxsize=KEY_FIELDS_CACHE_SIZE, typed=True)(_key_fields)  # typed: 1 and True differ
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def node_key_fields(node: Any) -> tuple[str, int, int | None] | None:
    """(name, allocatable, partition bytes) of a v1.Node JSON object, the only facts a decision
    needs; None if it has no name. For request bodies with hundreds of full Node objects: it
    skips building ``NodeFacts`` (the other labels, defects) per node and parses each distinct
    label value once, which makes it several times cheaper than ``facts_from_node_object``."""
    if not isinstance(node, dict):
        return None
    metadata = node.get("metadata")
    if not isinstance(metadata, dict):
        return None
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        return None
    labels = metadata.get("labels")
    status = node.get("status")
    allocatable = status.get("allocatable") if isinstance(status, dict) else None
    raw_memory = labels.get(LABEL_MEMORY_MIB) if isinstance(labels, dict) else None
    raw_count = allocatable.get(RESOURCE_NAME) if isinstance(allocatable, dict) else None
    if type(raw_memory) in _JSON_SCALARS and type(raw_count) in _JSON_SCALARS:  # hashable: memoise
        return name, *_cached_key_fields(raw_memory, raw_count)
    return name, *_key_fields(raw_memory, raw_count)
