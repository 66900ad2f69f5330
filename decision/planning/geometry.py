"""GPU partitionings and precisions the planner's input files may name, checked against ``sizing``."""

from __future__ import annotations

from dataclasses import dataclass

import sizing


@dataclass(frozen=True, slots=True)
class PartitionGeometry:
    """One GPU's partitioning, from ``sizing.GEOMETRY``."""

    product: str
    compute_mode: str
    memory_mode: str
    partitions: int
    memory_bytes: int  # per partition
    compute_units: int  # per partition
    label: str


def partition_geometry(product: str, compute_mode: str, memory_mode: str | None) -> PartitionGeometry:
    """The partitioning of one GPU; ValueError naming the valid choices when it does not exist."""
    try:
        gpu = sizing.GEOMETRY.product(product)
    except (sizing.SizingError, KeyError) as error:
        names = ", ".join(p.name for p in sizing.GEOMETRY.products)
        raise ValueError(f"unknown GPU product {product!r} (known: {names})") from error
    mode = gpu.mode(compute_mode.upper(), memory_mode.upper() if memory_mode else None)
    if mode is None:
        valid = ", ".join(f"{m.compute_mode}/{m.memory_mode}" for m in gpu.modes)
        wanted = f"{compute_mode}/{memory_mode}" if memory_mode else compute_mode
        raise ValueError(f"{gpu.name} has no partition mode {wanted} (valid: {valid})")
    return PartitionGeometry(
        product=gpu.name,
        compute_mode=mode.compute_mode,
        memory_mode=mode.memory_mode,
        partitions=mode.partitions,
        memory_bytes=mode.memory_bytes,
        compute_units=mode.compute_units,
        label=mode.label,
    )


def known_precision(text: str) -> str:
    """Canonical precision name; ValueError with the valid choices otherwise."""
    try:
        return str(sizing.parse_precision(text))
    except sizing.SizingError as error:
        raise ValueError(str(error)) from error
