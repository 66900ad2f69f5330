"""Partition geometry of MI300-class GPUs, from ``data/gpus.json``.

``load_geometry`` validates a parsed document (schema ``data/gpus.schema.json``, then the kernel's
rules); only ``_packaged_geometry`` reads a file, the packaged gpus.json, once at import of ``sizing``.

Per-partition memory is total HBM / number of compute partitions in every valid combination
(kernel ``amdgpu_amdkfd_xcp_memory_size``); the memory mode (NPS) changes locality, not size.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sizing.errors import DataFileError, SizingError
from sizing.schema import check_document

COMPUTE_MODES = ("SPX", "DPX", "TPX", "QPX", "CPX")
MEMORY_MODES = ("NPS1", "NPS2", "NPS4")
STATUSES = ("validated", "driver", "unverified")
_FIXED_PARTITIONS = {"SPX": 1, "DPX": 2, "TPX": 3, "QPX": 4}  # CPX = one partition per XCD


@dataclass(frozen=True)
class PartitionMode:
    product: str
    compute_mode: str
    memory_mode: str
    partitions: int
    memory_bytes: int
    compute_units: int
    status: str

    @property
    def label(self) -> str:
        return f"{self.product} {self.compute_mode}/{self.memory_mode}"


@dataclass(frozen=True)
class GpuProduct:
    name: str
    pci_device_ids: tuple[int, ...]
    hbm_bytes: int
    xcds: int
    cus_per_xcd: int
    gfx_target_version: int
    modes: tuple[PartitionMode, ...]
    notes: str = ""
    gpus_per_node: int = 8  # most GPUs of this product in one node (gpus.json; 8 = the OAM baseboard)

    @property
    def total_cus(self) -> int:
        return self.xcds * self.cus_per_xcd

    @property
    def gfx_arch(self) -> str:
        """gfx target name (90402 -> gfx942), as ROCm builds name it in GPU_ARCHS."""
        v = self.gfx_target_version
        return f"gfx{v // 10000}{(v // 100) % 100}{v % 100:x}"

    def partitions_for(self, compute_mode: str) -> int:
        mode = compute_mode.upper()
        if mode == "CPX":
            return self.xcds
        if mode not in _FIXED_PARTITIONS:
            raise SizingError(f"unknown compute mode {compute_mode!r}: expected one of {', '.join(COMPUTE_MODES)}")
        return _FIXED_PARTITIONS[mode]

    def compute_mode_for_partitions(self, count: int) -> str | None:
        for mode in dict.fromkeys(m.compute_mode for m in self.modes):
            if self.partitions_for(mode) == count:
                return mode
        return None

    def mode(self, compute_mode: str, memory_mode: str | None = None) -> PartitionMode | None:
        for m in self.modes:
            if m.compute_mode == compute_mode.upper() and (memory_mode is None or m.memory_mode == memory_mode.upper()):
                return m
        return None


class Geometry:
    """All known products; lookups by name and PCI device id."""

    def __init__(self, products: tuple[GpuProduct, ...], data_version: str) -> None:
        self.products = products
        self.data_version = data_version
        self._by_name = {p.name.upper(): p for p in products}
        self._by_device = {d: p for p in products for d in p.pci_device_ids}

    def product(self, name: str) -> GpuProduct:
        found = self._by_name.get(name.strip().upper())
        if found is None:
            known = ", ".join(p.name for p in self.products)
            raise SizingError(f"unknown GPU product {name!r}: expected one of {known}")
        return found

    def product_by_device_id(self, device_id: int) -> GpuProduct | None:
        return self._by_device.get(device_id)

    def partition_modes(self) -> tuple[PartitionMode, ...]:
        return tuple(m for p in self.products for m in p.modes)

    def largest_partition_bytes(self) -> int:
        return max(m.memory_bytes for m in self.partition_modes())


def _product_name(document: Any, index: int) -> str:
    entry = document["products"][index]
    name = entry.get("name") if isinstance(entry, Mapping) else None
    return f"product {name!r}" if isinstance(name, str) else f"product {index}"


def _product_from_entry(entry: Mapping[str, Any], sources: Mapping[str, str]) -> GpuProduct:
    """Build one product from a schema-valid entry; checks what the schema cannot express."""
    where = f"gpus.json product {entry['name']!r}"
    for key in entry.get("sources", []):
        if key not in sources:
            raise DataFileError(f"{where}: field 'sources' names unknown source key {key!r}")
    shell = GpuProduct(entry["name"], tuple(int(d, 16) for d in entry["pci_device_ids"]), entry["hbm_bytes"],
                       entry["xcds"], entry["cus_per_xcd"], entry["gfx_target_version"], (),
                       entry.get("notes", ""))
    modes = []
    for combo in entry["combinations"]:
        compute, memory = combo["compute"], combo["memory"]
        partitions = shell.partitions_for(compute)
        nps = int(memory[3:])
        if nps > partitions:  # kernel rule: memory partitions <= compute partitions (SPX+NPS4 invalid)
            raise DataFileError(f"{where}: field 'combinations' has {compute}+{memory}, which is invalid "
                                "(more memory than compute partitions)")
        if shell.xcds % partitions:
            raise DataFileError(f"{where}: field 'combinations' has {compute}, which does not divide "
                                f"{shell.xcds} XCDs")
        modes.append(PartitionMode(shell.name, compute, memory, partitions, shell.hbm_bytes // partitions,
                                   shell.total_cus // partitions, combo["status"]))
    return GpuProduct(shell.name, shell.pci_device_ids, shell.hbm_bytes, shell.xcds, shell.cus_per_xcd,
                      shell.gfx_target_version, tuple(modes), shell.notes, entry["gpus_per_node"])


def load_geometry(document: object) -> Geometry:
    """Validate a parsed gpus.json document (schema ``data/gpus.schema.json``, then the kernel's
    rules) and build the geometry; DataFileError names the product and the field."""
    check_document(document, "gpus.schema.json", "gpus.json", "products", _product_name)
    assert isinstance(document, Mapping)  # the schema says it is an object
    sources = document["sources"]
    products = tuple(_product_from_entry(e, sources) for e in document["products"])
    return Geometry(products, document["data_version"])


def _packaged_geometry() -> Geometry:
    """The geometry in the installed package's data/gpus.json (reads that file)."""
    text = resources.files("sizing").joinpath("data/gpus.json").read_text(encoding="utf-8")
    return load_geometry(json.loads(text))
