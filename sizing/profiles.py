"""The AIM profiles: every catalogue model at fp16, int8 and int4, placed on every GPU product.

A profile says what the model needs, and per product the smallest partition mode that holds it,
how many ``amd.com/gpu-partition`` to request, and the vLLM engine arguments. ``aim_profiles``
exports the same facts in AMD's AIM runtime profile format (amd-enterprise-ai/aim-build
schemas/general_profile_schema.json and model_profile_schema.json) so a
file can be mounted into an AIM container under ``profiles/custom/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sizing.catalogue import Catalogue, ModelArch
from sizing.contract import RESOURCE_NAME
from sizing.errors import SizingError
from sizing.estimator import GIB, MemoryEstimate, engine_args, estimate, max_context
from sizing.geometry import Geometry, GpuProduct, PartitionMode
from sizing.precision import PROFILE_PRECISIONS, Precision
from sizing.requirement import TP_SIZES
from sizing.schema import schema_errors

PROFILE_SCHEMA_ID = "aim-gpu-sharing/profile/v1"
PARTITION_RESOURCE = RESOURCE_NAME  # the extended resource the device plugin advertises (sizing.contract)

# AIM runtime environment for MI300-class GPUs, as AMD's own MI300X profiles ship it
# (amd-enterprise-ai/aim-build profile vllm-mi300x-fp16-tp1-latency.yaml, env_vars).
AIM_ENV = {"VLLM_ROCM_USE_AITER": "1", "HSA_NO_SCRATCH_RECLAIM": "1"}


def profile_id(model_id: str, precision: Precision) -> str:
    return f"{model_id.replace('/', '--').lower()}--{precision.value}"


@dataclass(frozen=True)
class Placement:
    """Where a profile goes on one product: the smallest fitting mode, or why none fits."""

    product: str
    gfx_arch: str
    mode: PartitionMode | None
    partition_count: int
    need: MemoryEstimate | None  # per-partition need at that partition count
    max_context: int
    engine_args: Mapping[str, str | int | float] | None
    reason: str | None

    @property
    def fits(self) -> bool:
        return self.mode is not None

    def to_dict(self) -> dict[str, Any]:
        if self.mode is None or self.need is None:
            return {"product": self.product, "fits": False, "reason": self.reason}
        return {
            "product": self.product, "fits": True,
            "compute_mode": self.mode.compute_mode, "memory_mode": self.mode.memory_mode,
            "mode_status": self.mode.status, "partitions_per_gpu": self.mode.partitions,
            "partition_bytes": self.mode.memory_bytes, "partition_count": self.partition_count,
            "resources": {PARTITION_RESOURCE: str(self.partition_count)},
            "per_partition_total_bytes": self.need.total_bytes,
            "max_context": self.max_context, "engine_args": dict(self.engine_args or {}),
        }


@dataclass(frozen=True)
class Profile:
    id: str
    model: ModelArch
    precision: Precision
    need: MemoryEstimate  # one partition (tensor parallel 1) at the default context
    placements: tuple[Placement, ...]

    @property
    def model_id(self) -> str:
        return self.model.id

    def to_dict(self) -> dict[str, Any]:
        n = self.need
        return {
            "schema": PROFILE_SCHEMA_ID,
            "id": self.id,
            "model_id": self.model.id,
            "precision": self.precision.value,
            "sizing": {
                "max_model_len": n.max_model_len, "concurrency": n.concurrency,
                "kv_cache_dtype": n.kv_cache_dtype, "max_num_batched_tokens": n.max_num_batched_tokens,
                "gpu_memory_utilization": n.gpu_memory_utilization, "tensor_parallel": n.tensor_parallel,
            },
            "memory": {
                "weights_bytes": n.weights_bytes, "kv_bytes_per_token": n.kv_bytes_per_token,
                "kv_cache_bytes": n.kv_cache_bytes, "activation_bytes": n.activation_bytes,
                "overhead_bytes": n.overhead_bytes, "total_bytes": n.total_bytes,
                "required_partition_bytes": n.required_partition_bytes,
            },
            "products": [p.to_dict() for p in self.placements],
        }

    def aim_profiles(self) -> tuple[tuple[str, dict[str, Any]], ...]:
        """(relative file path, AIM profile document) for every product this profile fits."""
        org, _, name = self.model.id.partition("/")
        out = []
        for p in self.placements:
            if p.mode is None:
                continue
            stem = (f"vllm-{p.product.lower()}-{self.precision.value}-tp{p.partition_count}-latency-"
                    f"{p.mode.compute_mode.lower()}-{p.mode.memory_mode.lower()}")
            doc = {
                "aim_id": self.model.id,
                "model_id": self.model.id,
                "metadata": {
                    "engine": "vllm", "gpu": p.product, "precision": self.precision.value,
                    "gpu_count": p.partition_count, "metric": "latency",
                    # a partition profile must never be auto-selected by a full-GPU pod (same PCI id)
                    "manual_selection_only": True, "type": "unoptimized",
                },
                "engine_args": dict(p.engine_args or {}),
                "env_vars": {"GPU_ARCHS": p.gfx_arch, **AIM_ENV},
            }
            out.append((f"{org}/{name}/{stem}.yaml", doc))
        return tuple(out)


_STATUS_RANK = {"validated": 0, "driver": 1, "unverified": 2}


def _placement(model: ModelArch, precision: Precision, product: GpuProduct) -> Placement:
    """Smallest total partition memory (count x size) that holds the model; then fewer partitions,
    then an AMD-validated mode."""
    candidates = []
    for tp in TP_SIZES:
        try:
            need = estimate(model, precision, tensor_parallel=tp)
        except SizingError:
            continue  # this tensor-parallel size is invalid for the model's head counts
        candidates += [((tp * m.memory_bytes, tp, _STATUS_RANK[m.status]), m, need)
                       for m in product.modes if need.fits(m.memory_bytes)]
    if not candidates:
        single = estimate(model, precision)
        largest = max(product.modes, key=lambda m: m.memory_bytes)
        return Placement(product.name, product.gfx_arch, None, 0, None, 0, None,
                         f"needs {single.total_bytes / GIB:.1f} GiB on one partition; even "
                         f"{max(TP_SIZES)} x {largest.memory_bytes / GIB:.0f} GiB ({largest.compute_mode}) "
                         "do not hold it")
    _, mode, need = min(candidates, key=lambda c: c[0])
    tp = need.tensor_parallel
    ctx = max_context(model, precision, mode.memory_bytes, tensor_parallel=tp)
    return Placement(product.name, product.gfx_arch, mode, tp, need, ctx, engine_args(need, mode.memory_bytes), None)


def build_profile(model: ModelArch, precision: Precision, geometry: Geometry) -> Profile:
    return Profile(profile_id(model.id, precision), model, precision, estimate(model, precision),
                   tuple(_placement(model, precision, p) for p in geometry.products))


def generate_profiles(catalogue: Catalogue, geometry: Geometry) -> tuple[Profile, ...]:
    """Every catalogue model x fp16/int8/int4, in catalogue order then precision order."""
    return tuple(build_profile(catalogue[m], p, geometry) for m in catalogue for p in PROFILE_PRECISIONS)


_SCHEMA_FILES = {"profile": "profile.schema.json", "aim-profile": "aim-profile.schema.json"}


def validate_document(document: Any, schema_name: str) -> list[str]:
    """Schema errors (``schema_name`` is "profile" or "aim-profile") as readable lines; empty when valid."""
    return schema_errors(document, _SCHEMA_FILES[schema_name])
