"""What discovery found: partitions, the physical GPUs they belong to, and what was derived.

Plain frozen dataclasses so an inventory can be compared (``old == new``) to detect
repartitioning, and rendered to JSON without knowing where it came from.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from typing import Any

from sizing.contract import PartitionShape

# Where a value came from, so an operator can tell measured facts from derived ones.
SOURCE_SYSFS = "sysfs"  # read from the GPU's PCI device attributes
SOURCE_KFD = "kfd"  # read from the KFD topology (mem_banks, io_links)
SOURCE_GEOMETRY = "geometry"  # derived from the product geometry in `sizing`
SOURCE_DERIVED = "derived"  # derived from the partition count of the GPU
SOURCE_NONE = "unknown"  # not known


def partition_id(gpu: str, index: int) -> str:
    """Stable kubelet device ID: parent PCI address + partition index, e.g. ``0000:05:00.0-p3``.

    The kubelet checkpoints allocated IDs, so the ID must survive plugin restarts and reboots:
    it uses neither enumeration order nor the render minor (which depends on probe order).
    """
    return f"{gpu}-p{index}"


@dataclasses.dataclass(frozen=True)
class Partition:
    """One compute partition (one KFD GPU node, one render node)."""

    id: str
    gpu: str  # parent PCI address, "dddd:bb:dd.0"
    index: int  # partition index on its GPU (the function bits of the KFD location_id)
    kfd_node: int  # KFD topology node number (may change across reboots; not an identity)
    render_minor: int
    card_minor: int | None
    memory_bytes: int | None
    memory_source: str
    compute_units: int
    numa_node: int | None
    numa_source: str
    hive_id: int | None
    compute_mode: str | None
    compute_mode_source: str
    memory_mode: str | None
    memory_mode_source: str
    product: str
    device_id: int
    partitionable: bool

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["device_id"] = f"0x{self.device_id:04x}"
        return data

    @property
    def shape(self) -> PartitionShape:
        """What a workload sees of this partition, in the contract's terms: what the node labels
        summarise and what homogeneity compares (``PartitionShape.kind``)."""
        return PartitionShape(
            product=self.product,
            compute_mode=self.compute_mode,
            memory_mode=self.memory_mode,
            compute_units=self.compute_units,
            memory_bytes=self.memory_bytes,
            partitionable=self.partitionable,
        )


@dataclasses.dataclass(frozen=True)
class Gpu:
    """One physical GPU (PCI device) and its partitions."""

    address: str
    product: str
    device_id: int
    compute_mode: str | None
    memory_mode: str | None
    available_compute_modes: tuple[str, ...] | None
    available_memory_modes: tuple[str, ...] | None
    numa_node: int | None
    hive_id: int | None
    partition_ids: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Inventory:
    """Result of one discovery run.

    ``problems`` are files that were missing or garbled and what was skipped because of them
    (logged as warnings); ``notes`` say which values were derived rather than read (info).
    """

    partitions: tuple[Partition, ...] = ()
    gpus: tuple[Gpu, ...] = ()
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @functools.cached_property
    def by_id(self) -> Mapping[str, Partition]:
        """Partitions by ID (computed once; the inventory is immutable)."""
        return {p.id: p for p in self.partitions}

    @property
    def is_homogeneous(self) -> bool:
        return len({p.shape.kind for p in self.partitions}) <= 1

    def same_devices(self, other: Inventory) -> bool:
        """True when both inventories advertise the same partitions with the same facts."""
        return self.partitions == other.partitions

    def with_partitions(self, partitions: Iterable[Partition]) -> Inventory:
        return dataclasses.replace(self, partitions=tuple(sorted(partitions, key=_sort_key)))


def _sort_key(partition: Partition) -> tuple[str, int]:
    return (partition.gpu, partition.index)
