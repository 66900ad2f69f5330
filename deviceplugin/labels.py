"""Node labels describing the partitions (pure): what the scheduler extender filters on.

Keys (read by extender/, keep exactly):
    amd.com/gpu-partition.memory-mib     MiB of the smallest partition (integer, for nodeAffinity Gt)
    amd.com/gpu-partition.count          partitions advertised
    amd.com/gpu-partition.compute-mode   SPX|DPX|TPX|QPX|CPX, "none" (unpartitionable), "mixed", "unknown"
    amd.com/gpu-partition.memory-mode    NPS1|NPS2|NPS4|..., "none", "mixed", "unknown"
    amd.com/gpu-partition.cu-count       compute units of the smallest partition
    amd.com/gpu-partition.product        e.g. MI300X, "mixed", "unknown"
    amd.com/gpu-partition.homogeneous    "true" when every partition has the same shape
A value of None means "remove this key" (null in a JSON merge patch).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from deviceplugin.inventory import Partition

LABEL_PREFIX = "amd.com/gpu-partition."
MEMORY_MIB = LABEL_PREFIX + "memory-mib"
COUNT = LABEL_PREFIX + "count"
COMPUTE_MODE = LABEL_PREFIX + "compute-mode"
MEMORY_MODE = LABEL_PREFIX + "memory-mode"
CU_COUNT = LABEL_PREFIX + "cu-count"
PRODUCT = LABEL_PREFIX + "product"
HOMOGENEOUS = LABEL_PREFIX + "homogeneous"
LABEL_KEYS = (MEMORY_MIB, COUNT, COMPUTE_MODE, MEMORY_MODE, CU_COUNT, PRODUCT, HOMOGENEOUS)

MIXED = "mixed"
UNKNOWN = "unknown"
NONE = "none"

# Kubernetes label value: at most 63 characters, [A-Za-z0-9] at both ends, [-_.A-Za-z0-9]
# inside (apimachinery pkg/util/validation IsValidLabelValue).
MAX_LABEL_VALUE_LENGTH = 63
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_INVALID_CHARS_RE = re.compile(r"[^-A-Za-z0-9_.]+")


def is_valid_label_value(value: str) -> bool:
    return len(value) <= MAX_LABEL_VALUE_LENGTH and bool(_LABEL_VALUE_RE.match(value))


def sanitize_label_value(value: str) -> str:
    """Make ``value`` a valid label value: bad characters -> '-', trimmed, ends alphanumeric."""
    cleaned = _INVALID_CHARS_RE.sub("-", value)[:MAX_LABEL_VALUE_LENGTH]
    cleaned = cleaned.strip("-_.")
    return cleaned or UNKNOWN


def _single(values: Iterable[str]) -> str:
    distinct = set(values)
    if not distinct:
        return UNKNOWN
    return sanitize_label_value(distinct.pop()) if len(distinct) == 1 else MIXED


def _mode(partition: Partition, mode: str | None) -> str:
    if mode is not None:
        return mode
    return UNKNOWN if partition.partitionable else NONE


def compute_labels(partitions: Iterable[Partition]) -> dict[str, str | None]:
    """Desired value of every key in LABEL_KEYS for these partitions (None = remove the key)."""
    parts = list(partitions)
    if not parts:
        return {key: None for key in LABEL_KEYS} | {COUNT: "0"}
    sizes = [p.memory_bytes for p in parts if p.memory_bytes is not None]
    shapes = {p.shape for p in parts}
    return {
        MEMORY_MIB: str(min(sizes) // 2**20) if sizes else None,
        COUNT: str(len(parts)),
        COMPUTE_MODE: _single(_mode(p, p.compute_mode) for p in parts),
        MEMORY_MODE: _single(_mode(p, p.memory_mode) for p in parts),
        CU_COUNT: str(min(p.compute_units for p in parts)),
        PRODUCT: _single(p.product for p in parts),
        HOMOGENEOUS: "true" if len(shapes) == 1 else "false",
    }


def build_label_patch(
    desired: Mapping[str, str | None], current: Mapping[str, str] | None = None
) -> dict[str, object]:
    """JSON merge patch body that sets our keys and removes stale keys under our prefix only.

    ``current`` (the node's labels, when they could be read) lets keys that an older version
    of this plugin set, and that are no longer in LABEL_KEYS, be removed as well.
    """
    labels: dict[str, str | None] = dict(desired)
    for key in current or {}:
        if key.startswith(LABEL_PREFIX) and key not in labels:
            labels[key] = None
    return {"metadata": {"labels": dict(sorted(labels.items()))}}
