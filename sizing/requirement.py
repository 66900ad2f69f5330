"""What one partition must hold for a workload, and what to suggest when nothing can hold it.

This is the question the scheduler extender asks for every pod; results are memoised because the
inputs are few and hashable.
"""

from __future__ import annotations

from sizing.catalogue import Catalogue, ModelArch
from sizing.errors import SizingError
from sizing.estimator import DEFAULT_CONTEXT_CAP, MemoryEstimate, cached_estimate, format_gib
from sizing.geometry import Geometry
from sizing.precision import Precision, parse_precision

TP_SIZES = (1, 2, 4, 8)  # partition counts a pod may request for one model (AIM gpu_count 1..8)


def requirement(catalogue: Catalogue, model: str | ModelArch, precision: Precision | str, *,
                partitions: int = 1, max_model_len: int | None = None, concurrency: int = 1,
                kv_cache_dtype: str = "auto") -> MemoryEstimate:
    arch = model if isinstance(model, ModelArch) else catalogue.get_model(model)
    return cached_estimate(arch, parse_precision(precision), partitions, max_model_len, concurrency,
                           kv_cache_dtype.strip().lower())


def suggest_fixes(catalogue: Catalogue, geometry: Geometry, model: str | ModelArch,
                  precision: Precision | str, *, partitions: int = 1,
                  max_model_len: int | None = None) -> tuple[str, ...]:
    """Short suggestions that would make the workload fit some partition of a known product.

    Looks at lower precisions at the same partition count, then more partitions at the same
    precision; each suggestion names the smallest partition that would hold it.
    """
    arch = model if isinstance(model, ModelArch) else catalogue.get_model(model)
    prec = parse_precision(precision)
    sizes = sorted({m.memory_bytes for m in geometry.partition_modes()})
    out: list[str] = []

    def smallest_holding_at(p: Precision, tp: int, context: int | None) -> int | None:
        try:
            need = requirement(catalogue, arch, p, partitions=tp, max_model_len=context)
        except SizingError:
            return None
        return next((s for s in sizes if need.fits(s)), None)

    def smallest_holding(p: Precision, tp: int) -> int | None:
        return smallest_holding_at(p, tp, max_model_len)

    lower_precisions = (Precision.FP8, Precision.INT8, Precision.INT4)
    for lower in lower_precisions:
        if lower.bits >= prec.bits:
            continue
        size = smallest_holding(lower, partitions)
        if size is not None:
            out.append(f"precision {lower.value} fits a {format_gib(size)} partition")
            break
    for tp in TP_SIZES:
        if tp <= partitions:
            continue
        size = smallest_holding(prec, tp)
        if size is not None:
            out.append(f"request {tp} partitions (tensor parallel {tp}) of at least {format_gib(size)}")
            break
    if max_model_len is not None and max_model_len > DEFAULT_CONTEXT_CAP:
        shorter = smallest_holding_at(prec, partitions, DEFAULT_CONTEXT_CAP)
        if shorter is not None:
            out.append(f"max-model-len {DEFAULT_CONTEXT_CAP} fits a {format_gib(shorter)} partition")
    return tuple(out)
