"""The contract between the packages: resource name, node label keys, pod annotation keys, and the
one function that turns a node's partitions into its labels (and the one that reads them back).

The device plugin writes node labels with ``node_labels``; the extender, the planner and the
partitioner read them with ``read_node_labels``. Both live here so writer and reader cannot drift
(tests/contract ties them together). Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from sizing.bounded import BoundedValueError, parse_int, shown

# -- the extended resource ---------------------------------------------------------------------
RESOURCE_NAME: Final = "amd.com/gpu-partition"  # one device per compute partition

# -- node labels (written by deviceplugin, read by extender / planner / partitioner) -----------
LABEL_PREFIX: Final = RESOURCE_NAME + "."
LABEL_MEMORY_MIB: Final = LABEL_PREFIX + "memory-mib"  # MiB of the smallest healthy partition (nodeAffinity Gt)
LABEL_COUNT: Final = LABEL_PREFIX + "count"  # healthy partitions that exist now
LABEL_COMPUTE_MODE: Final = LABEL_PREFIX + "compute-mode"  # SPX|DPX|TPX|QPX|CPX, none, mixed, unknown
LABEL_MEMORY_MODE: Final = LABEL_PREFIX + "memory-mode"  # NPS1|NPS2|NPS4, none, mixed, unknown
LABEL_CU_COUNT: Final = LABEL_PREFIX + "cu-count"  # compute units of the smallest partition
LABEL_PRODUCT: Final = LABEL_PREFIX + "product"  # MI300X, ..., mixed, unknown
LABEL_HOMOGENEOUS: Final = LABEL_PREFIX + "homogeneous"  # "true" when every partition has one shape
LABEL_GPU_COUNT: Final = LABEL_PREFIX + "gpu-count"  # physical GPUs the partitions belong to (discovery)
LABEL_KEYS: Final = (
    LABEL_MEMORY_MIB, LABEL_COUNT, LABEL_COMPUTE_MODE, LABEL_MEMORY_MODE,
    LABEL_CU_COUNT, LABEL_PRODUCT, LABEL_HOMOGENEOUS, LABEL_GPU_COUNT,
)
MIXED: Final = "mixed"
UNKNOWN: Final = "unknown"
NONE: Final = "none"  # a GPU that cannot be partitioned (e.g. MI210)

# -- pod annotations (read by extender and webhook) --------------------------------------------
ANNOTATION_PREFIX: Final = "aim.amd.com/"
ANNOTATION_MODEL: Final = ANNOTATION_PREFIX + "model"  # catalogue or models-directory id
ANNOTATION_PRECISION: Final = ANNOTATION_PREFIX + "precision"  # fp16, bf16, fp8, int8, int4
ANNOTATION_MAX_MODEL_LEN: Final = ANNOTATION_PREFIX + "max-model-len"  # context vLLM is started with
ANNOTATION_PROFILE: Final = ANNOTATION_PREFIX + "profile"  # an AIM profile id instead of model + precision
ANNOTATION_MEMORY: Final = ANNOTATION_PREFIX + "memory"  # quantity per partition; overrides the estimate

MIB: Final = 1 << 20

# -- Dynamic Resource Allocation (resource.k8s.io/v1; docs/dra.md) ---------------------------
# deviceplugin.dra publishes one ResourceSlice device per partition under this driver name; the
# DeviceClass of manifests/dra has the same name; the webhook's ResourceClaimTemplates select on the
# attributes and capacity below (CEL: device.capacity[DRA_DRIVER].memory, device.attributes[DRA_DRIVER].product).
DRA_DRIVER: Final = "gpu-partition.amd.com"  # a DNS subdomain of at most 63 characters (DriverNameMaxLength)
DRA_DEVICE_CLASS: Final = DRA_DRIVER
DRA_CAPACITY_MEMORY: Final = "memory"  # Quantity: the partition's memory in bytes (KFD mem_banks)
DRA_ATTRIBUTE_PRODUCT: Final = "product"  # MI300X, MI308X, ... (string)
DRA_ATTRIBUTE_COMPUTE_MODE: Final = "computeMode"  # SPX|DPX|TPX|QPX|CPX (string; absent when unknown)
DRA_ATTRIBUTE_MEMORY_MODE: Final = "memoryMode"  # NPS1|NPS2|NPS4 (string; absent when unknown)
DRA_ATTRIBUTE_COMPUTE_UNITS: Final = "computeUnits"  # CUs of the partition (int)
DRA_ATTRIBUTE_GPU: Final = "pciAddress"  # parent GPU's PCI address (string), partitions of one GPU share it
DRA_ATTRIBUTE_PARTITION: Final = "partitionIndex"  # index of the partition on its GPU (int)

# Largest values a label may carry: 1 PiB in MiB, and the bounded partition counts.
MAX_MEMORY_MIB: Final = 1 << 30
MAX_LABEL_COUNT: Final = 1024
MAX_CU_COUNT: Final = 1 << 16  # an MI300X SPX partition has 304 CUs; 65,536 is far above any product
# GPUs on one node: MI300-class platforms carry 8 (one OAM baseboard); 64 is far above any server
# and keeps a hostile label from meaning thousands of GPUs to the partition controller.
MAX_GPU_COUNT: Final = 64

# Kubernetes label value: at most 63 characters, alphanumeric at both ends, [-_.A-Za-z0-9] inside
# (apimachinery pkg/util/validation IsValidLabelValue).
MAX_LABEL_VALUE_LENGTH: Final = 63
_LABEL_VALUE_RE: Final = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", re.ASCII)
_INVALID_CHARS_RE: Final = re.compile(r"[^-A-Za-z0-9_.]+", re.ASCII)


def is_valid_label_value(value: str) -> bool:
    return len(value) <= MAX_LABEL_VALUE_LENGTH and bool(_LABEL_VALUE_RE.fullmatch(value))


def sanitize_label_value(value: str) -> str:
    """Make ``value`` a valid label value: bad characters become '-', trimmed, ends alphanumeric."""
    cleaned = _INVALID_CHARS_RE.sub("-", value)[:MAX_LABEL_VALUE_LENGTH].strip("-_.")
    return cleaned or UNKNOWN


@dataclass(frozen=True, slots=True)
class PartitionShape:
    """What a workload sees of one healthy partition; what the labels summarise."""

    product: str
    compute_mode: str | None  # None: the mode file was unreadable
    memory_mode: str | None
    compute_units: int
    memory_bytes: int | None  # None: unknown
    partitionable: bool = True

    @property
    def kind(self) -> tuple[str, str | None, str | None, int, int | None]:
        """Shape for homogeneity, with memory in whole GiB: KFD gives the last partition of a GPU
        slightly less (MI308X capture: 48 GiB - 16 MiB) without it being another kind."""
        # nearest GiB in integers: a float division overflows on an absurd size read from sysfs
        gib = None if self.memory_bytes is None else (self.memory_bytes + (1 << 29)) >> 30
        return (self.product, self.compute_mode, self.memory_mode, self.compute_units, gib)


def _single(values: Iterable[str]) -> str:
    distinct = set(values)
    if not distinct:
        return UNKNOWN
    return sanitize_label_value(distinct.pop()) if len(distinct) == 1 else MIXED


def _mode(shape: PartitionShape, mode: str | None) -> str:
    if mode is not None:
        return mode
    return UNKNOWN if shape.partitionable else NONE


def node_labels(shapes: Iterable[PartitionShape], gpus: int | None = None) -> dict[str, str | None]:
    """The value of every key in LABEL_KEYS for the healthy partitions that exist now
    (None = remove the key). Callers pass only partitions that exist and are healthy, and
    ``gpus``: the physical GPUs discovery found on the node, healthy or not (None: unknown). The
    partition controller reads the GPU count from it rather than from the partition count, which
    can lack a partition (63 of 64 MI300X CPX partitions, tests/fixtures/sysfs/README.md).

    Every value written is one ``read_node_labels`` accepts: a memory size, CU count or GPU count
    outside the bounds the reader takes (at least 1 MiB / 1 CU / 1 GPU, at most MAX_MEMORY_MIB /
    MAX_CU_COUNT / MAX_GPU_COUNT) counts as unknown, and a label with no known value is removed
    rather than written wrong.
    """
    parts = list(shapes)
    if not parts:
        return {key: None for key in LABEL_KEYS} | {LABEL_COUNT: "0"}
    sizes = [p.memory_bytes // MIB for p in parts
             if p.memory_bytes is not None and 1 <= p.memory_bytes // MIB <= MAX_MEMORY_MIB]
    cus = [p.compute_units for p in parts if 1 <= p.compute_units <= MAX_CU_COUNT]
    return {
        LABEL_MEMORY_MIB: str(min(sizes)) if sizes else None,
        LABEL_COUNT: str(len(parts)),
        LABEL_COMPUTE_MODE: _single(_mode(p, p.compute_mode) for p in parts),
        LABEL_MEMORY_MODE: _single(_mode(p, p.memory_mode) for p in parts),
        LABEL_CU_COUNT: str(min(cus)) if cus else None,
        LABEL_PRODUCT: _single(p.product for p in parts),
        LABEL_HOMOGENEOUS: "true" if len({p.kind for p in parts}) == 1 else "false",
        LABEL_GPU_COUNT: str(gpus) if gpus is not None and 1 <= gpus <= MAX_GPU_COUNT else None,
    }


@dataclass(frozen=True, slots=True)
class NodeLabels:
    """The partition labels of one node as read back; a field is None when absent or unreadable,
    and ``defects`` names each unreadable label with its value."""

    memory_bytes: int | None = None
    count: int | None = None
    compute_mode: str | None = None
    memory_mode: str | None = None
    cu_count: int | None = None
    product: str | None = None
    homogeneous: bool | None = None
    gpu_count: int | None = None
    defects: tuple[str, ...] = ()


def read_memory_mib_label(raw: object) -> int:
    """The ``memory-mib`` label in bytes; raises BoundedValueError naming the label."""
    return parse_int("label " + LABEL_MEMORY_MIB, raw, minimum=1, maximum=MAX_MEMORY_MIB) * MIB


def _text(labels: Mapping[str, object], key: str, defects: list[str]) -> str | None:
    raw = labels.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str) or not is_valid_label_value(raw.strip()):
        defects.append(f"label {key}={shown(raw)}: is not a valid label value")
        return None
    return raw.strip() or None


def read_node_labels(labels: object) -> NodeLabels:
    """Read our labels from a node's ``metadata.labels``; total: never raises."""
    if not isinstance(labels, Mapping):
        return NodeLabels()
    defects: list[str] = []

    def number(key: str, maximum: int) -> int | None:
        raw = labels.get(key)
        if raw is None:
            return None
        try:
            return parse_int("label " + key, raw, minimum=1 if key != LABEL_COUNT else 0, maximum=maximum)
        except BoundedValueError as error:
            defects.append(str(error))
            return None

    memory_mib = number(LABEL_MEMORY_MIB, MAX_MEMORY_MIB)
    homogeneous_raw = labels.get(LABEL_HOMOGENEOUS)
    homogeneous: bool | None = None
    if homogeneous_raw is not None:
        if homogeneous_raw in ("true", "false"):
            homogeneous = homogeneous_raw == "true"
        else:
            defects.append(f"label {LABEL_HOMOGENEOUS}={shown(homogeneous_raw)}: is not true or false")
    return NodeLabels(
        memory_bytes=None if memory_mib is None else memory_mib * MIB,
        count=number(LABEL_COUNT, MAX_LABEL_COUNT),
        compute_mode=_text(labels, LABEL_COMPUTE_MODE, defects),
        memory_mode=_text(labels, LABEL_MEMORY_MODE, defects),
        cu_count=number(LABEL_CU_COUNT, MAX_CU_COUNT),
        product=_text(labels, LABEL_PRODUCT, defects),
        homogeneous=homogeneous,
        gpu_count=number(LABEL_GPU_COUNT, MAX_GPU_COUNT),
        defects=tuple(defects),
    )
