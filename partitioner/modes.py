"""Which partition modes the advisor may choose for a node: one compute/memory mode for all its GPUs.

A candidate is a combination listed for the product in ``sizing/data/gpus.json`` whose status is
trusted enough (validated by AMD, or allowed by the driver; "unverified" only on request), that
AMD's Device Config Manager accepts (compute SPX, DPX, QPX or CPX; NPS4 only with CPX, NPS2 only
with DPX: ROCm/device-config-manager docs/configuration/configmap.md, constants.go
``ValidComputePartitions``). One memory mode per compute mode: the node's current one when it is a
candidate (no change), else AMD's validated one, else NPS1. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import sizing
from decision import planning
from partitioner.errors import AdvisorInputError

# Compute partitions DCM can apply (device-config-manager constants.go ValidComputePartitions);
# TPX (MI300A) exists in the driver but DCM cannot set it.
DCM_COMPUTE_MODES = ("SPX", "DPX", "QPX", "CPX")
# Memory modes allowed only with one compute mode (DCM configmap checks; MI300X overview).
MEMORY_MODE_ONLY_WITH = {"NPS4": "CPX", "NPS2": "DPX"}


class Trust(str, Enum):
    """The least-tested combination status (gpus.json ``status``) the advisor may choose."""

    VALIDATED = "validated"  # AMD's validated matrix only
    DRIVER = "driver"  # also what the amdgpu driver accepts (the default)
    UNVERIFIED = "unverified"  # also combinations nobody has confirmed on hardware

    def allows(self, status: str) -> bool:
        order = [Trust.VALIDATED.value, Trust.DRIVER.value, Trust.UNVERIFIED.value]
        return status in order and order.index(status) <= order.index(self.value)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Mode:
    """A compute and memory partition mode, e.g. CPX/NPS4."""

    compute_mode: str
    memory_mode: str

    def __str__(self) -> str:
        return f"{self.compute_mode}/{self.memory_mode}"


@dataclass(frozen=True, slots=True)
class ModeOption:
    """A mode of one product with what it gives: partitions per GPU and bytes per partition."""

    mode: Mode
    geometry: planning.PartitionGeometry
    status: str

    @property
    def partitions(self) -> int:
        return self.geometry.partitions

    @property
    def partition_bytes(self) -> int:
        return self.geometry.memory_bytes


def product_name(product: str) -> str:
    """The canonical product name; AdvisorInputError naming the known ones."""
    try:
        return sizing.GEOMETRY.product(product).name
    except sizing.SizingError:
        known = ", ".join(p.name for p in sizing.GEOMETRY.products)
        raise AdvisorInputError(f"unknown GPU product {product!r} (known: {known})") from None


def _option(product: str, compute_mode: str, memory_mode: str, status: str) -> ModeOption:
    geometry = planning.partition_geometry(product, compute_mode, memory_mode)
    return ModeOption(Mode(geometry.compute_mode, geometry.memory_mode), geometry, status)


def existing_option(product: str, mode: Mode) -> ModeOption:
    """A mode the product has (any status: a node may already run it); AdvisorInputError otherwise."""
    name = product_name(product)
    found = sizing.GEOMETRY.product(name).mode(mode.compute_mode, mode.memory_mode)
    if found is None:
        valid = ", ".join(f"{m.compute_mode}/{m.memory_mode}" for m in sizing.GEOMETRY.product(name).modes)
        raise AdvisorInputError(f"{name} has no partition mode {mode} (valid: {valid})")
    return _option(name, found.compute_mode, found.memory_mode, found.status)


def is_candidate(option: ModeOption, trust: Trust) -> bool:
    """Whether the advisor may choose this mode: trusted status and applicable through DCM."""
    mode = option.mode
    only_with = MEMORY_MODE_ONLY_WITH.get(mode.memory_mode)
    return (trust.allows(option.status) and mode.compute_mode in DCM_COMPUTE_MODES
            and (only_with is None or only_with == mode.compute_mode))


def candidate_options(product: str, current: Mode | None, trust: Trust) -> tuple[ModeOption, ...]:
    """One option per compute mode the advisor may choose for the product, largest partitions first."""
    name = product_name(product)
    gpu = sizing.GEOMETRY.product(name)
    by_compute: dict[str, list[ModeOption]] = {}
    for mode in gpu.modes:
        option = _option(name, mode.compute_mode, mode.memory_mode, mode.status)
        if is_candidate(option, trust):
            by_compute.setdefault(mode.compute_mode, []).append(option)
    chosen = []
    for options in by_compute.values():
        keep = [o for o in options if current is not None and o.mode == current]
        ranked = sorted(options, key=lambda o: (o.status != Trust.VALIDATED.value, o.mode.memory_mode != "NPS1"))
        chosen.append((keep or ranked)[0])
    if not chosen:
        raise AdvisorInputError(f"{name} has no partition mode with status {trust} or better that DCM can apply")
    return tuple(sorted(chosen, key=lambda o: (-o.partition_bytes, o.mode.compute_mode)))
