"""sizing: how much memory an LLM needs on an MI300-class GPU partition, and which partition fits.

A library without logging and without I/O beyond reading its own packaged data files (models.json
and gpus.json, validated against their schemas when this package is imported), shared by the device
plugin, the scheduler extender and the partitioner; ``sizing.cli`` is the command shell around it.
See docs/sizing-api.md for the API and sizing.contract for the contract between the packages.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

from sizing.catalogue import MLA, Catalogue, ModelArch, MoE, _packaged_catalogue, load_catalogue, model_from_hf_config
from sizing.errors import DataFileError, SizingError, UnknownModelError
from sizing.estimator import (
    DEFAULT_CONTEXT_CAP,
    DEFAULT_MAX_NUM_BATCHED_TOKENS,
    GIB,
    GPU_MEMORY_UTILIZATION,
    FitResult,
    MemoryEstimate,
    default_context,
    engine_args,
    estimate,
    fit_table as _fit_table,
    max_context,
    usable_bytes,
)
from sizing.geometry import Geometry, GpuProduct, PartitionMode, _packaged_geometry, load_geometry
from sizing.precision import PROFILE_PRECISIONS, Precision, parse_precision
from sizing.profiles import Placement, Profile, generate_profiles as _generate_profiles
from sizing.requirement import TP_SIZES, requirement as _requirement

# Loaded and validated once at import; a broken data file fails here with the entry and field.
CATALOGUE: Catalogue = _packaged_catalogue()
GEOMETRY: Geometry = _packaged_geometry()


def fit_table(model: ModelArch, precision: Precision | str, **kw: object) -> tuple[FitResult, ...]:
    """One row per partition mode of every known product."""
    return _fit_table(model, precision, GEOMETRY, **kw)  # type: ignore[arg-type]


def partition_requirement(model: str | ModelArch, precision: Precision | str, *, partitions: int = 1,
                          max_model_len: int | None = None, concurrency: int = 1,
                          kv_cache_dtype: str = "auto") -> MemoryEstimate:
    """What each of ``partitions`` partitions must hold (memoised)."""
    return _requirement(CATALOGUE, model, precision, partitions=partitions, max_model_len=max_model_len,
                        concurrency=concurrency, kv_cache_dtype=kv_cache_dtype)


def largest_partition_bytes() -> int:
    return GEOMETRY.largest_partition_bytes()


def generate_profiles() -> tuple[Profile, ...]:
    return _generate_profiles(CATALOGUE, GEOMETRY)


@cache
def profiles_by_id() -> Mapping[str, Profile]:
    """The profiles by id, generated on first use (a few hundred milliseconds) and kept."""
    return MappingProxyType({p.id: p for p in generate_profiles()})


def get_profile(profile_id: str) -> Profile:
    """The profile with this id; SizingError naming the closest ids when unknown."""
    import difflib

    key = profile_id.strip().lower()
    profiles = profiles_by_id()
    if key in profiles:
        return profiles[key]
    close = difflib.get_close_matches(key, list(profiles), n=3, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else ""
    raise SizingError(f"unknown AIM profile {profile_id!r}{hint}")


__all__ = [
    "CATALOGUE", "DEFAULT_CONTEXT_CAP", "DEFAULT_MAX_NUM_BATCHED_TOKENS", "GEOMETRY", "GIB",
    "GPU_MEMORY_UTILIZATION", "MLA", "PROFILE_PRECISIONS", "TP_SIZES", "Catalogue", "DataFileError",
    "FitResult", "Geometry", "GpuProduct", "MemoryEstimate", "MoE", "ModelArch", "PartitionMode", "Placement",
    "Precision", "Profile", "SizingError", "UnknownModelError", "default_context", "engine_args", "estimate",
    "fit_table", "generate_profiles", "get_profile", "largest_partition_bytes", "load_catalogue",
    "load_geometry", "max_context", "model_from_hf_config", "parse_precision", "partition_requirement",
    "profiles_by_id", "usable_bytes",
]
