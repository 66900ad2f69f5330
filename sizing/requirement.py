"""What one partition must hold for a workload (what to suggest when nothing holds it is
``decision.fixes``, the one engine the extender and the webhook share).

This is the question the scheduler extender asks for every pod; results are memoised because the
inputs are few and hashable.
"""

from __future__ import annotations

from sizing.catalogue import Catalogue, ModelArch
from sizing.estimator import MemoryEstimate, cached_estimate
from sizing.precision import Precision, parse_precision

TP_SIZES = (1, 2, 4, 8)  # partition counts a pod may request for one model (AIM gpu_count 1..8)


def requirement(catalogue: Catalogue, model: str | ModelArch, precision: Precision | str, *,
                partitions: int = 1, max_model_len: int | None = None, concurrency: int = 1,
                kv_cache_dtype: str = "auto") -> MemoryEstimate:
    arch = model if isinstance(model, ModelArch) else catalogue.get_model(model)
    return cached_estimate(arch, parse_precision(precision), partitions, max_model_len, concurrency,
                           kv_cache_dtype.strip().lower())
