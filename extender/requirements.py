"""SizingRequest -> Requirement: how much memory one partition must hold. The only ``sizing`` caller.

Keeping every ``sizing`` call in this module means a change in that library's API is one edit
here. Results are memoised: the inputs are a handful of strings and an int, sizing is pure, and
kube-scheduler calls filter and then prioritize for the same pod.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import sizing
from kubernetes.utils.quantity import parse_quantity

from extender.demand import (
    ANNOTATION_MAX_MODEL_LEN,
    ANNOTATION_MEMORY,
    ANNOTATION_MODEL,
    ANNOTATION_PRECISION,
    ANNOTATION_PROFILE,
    SizingRequest,
)
from extender.reasons import ReasonCode, Rejection, gib_ceil, gib_floor

# A model annotated without a precision is sized at 16 bits: the dtype most checkpoints ship in
# (fp16 and bf16 weigh the same, sizing-api.md "Precision").
DEFAULT_PRECISION = "fp16"

# Distinct pods' sizing inputs remembered; a cluster runs a few dozen models x precisions x counts.
REQUIREMENT_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class Requirement:
    """What every partition given to the pod must hold."""

    partitions: int  # partitions requested (tensor-parallel size); 0 = pod asks for none
    required_bytes: int | None = None  # smallest partition memory that holds it; None = not sized
    model_bytes: int | None = None  # memory the workload uses in each partition
    subject: str = ""  # what is being placed, for messages: "Qwen/Qwen3-8B fp16"
    rejection: Rejection | None = None  # a problem with the pod itself: rejects every node

    @property
    def is_sized(self) -> bool:
        return self.required_bytes is not None


def _invalid(annotation: str, raw: str, why: str) -> Rejection:
    return Rejection(
        ReasonCode.INVALID_ANNOTATION,
        f"invalid pod annotation {annotation}={raw!r}: {why}",
        unresolvable=True,
    )


def parse_memory_quantity(raw: str) -> int:
    """Bytes of a Kubernetes quantity ("40Gi", "42949672960", "40G"); ValueError when not one."""
    value = parse_quantity(raw)
    if value <= 0:
        raise ValueError("must be positive")
    return math.ceil(value)


def largest_partition_bytes() -> int:
    return sizing.largest_partition_bytes()


def _never_fits(subject: str, required: int, partitions: int, fixes: tuple[str, ...]) -> Rejection:
    fix = "; fix: " + " or ".join(fixes) if fixes else "; no lower precision or partition count fits"
    return Rejection(
        ReasonCode.NEVER_FITS,
        f"{subject} needs {gib_ceil(required)} per partition with {partitions} partition(s),"
        f" more than the largest gpu partition ({gib_floor(largest_partition_bytes())}){fix}",
        unresolvable=True,
    )


def _memory_override(request: SizingRequest, partitions: int) -> Requirement:
    raw = request.memory or ""
    try:
        need = parse_memory_quantity(raw)
    except (ValueError, ArithmeticError):
        reason = "not a positive Kubernetes quantity such as 40Gi"
        return Requirement(partitions, rejection=_invalid(ANNOTATION_MEMORY, raw, reason))
    subject = f"{request.model or request.profile or 'workload'} ({raw} per partition)"
    if need > largest_partition_bytes():
        fix = (f"lower {ANNOTATION_MEMORY}, or request more partitions with less memory each",)
        return Requirement(partitions, need, need, subject, _never_fits(subject, need, partitions, fix))
    return Requirement(partitions, need, need, subject)


def _model_and_precision(request: SizingRequest) -> tuple[str, str] | Rejection:
    if request.profile:
        try:
            profile = sizing.get_profile(request.profile)
        except sizing.SizingError as error:
            return Rejection(
                ReasonCode.UNKNOWN_MODEL,
                f"{error} ({ANNOTATION_PROFILE}); use a valid AIM profile id or set"
                f" {ANNOTATION_MODEL} and {ANNOTATION_PRECISION}",
                unresolvable=True,
            )
        return profile.model_id, str(profile.precision)
    if not request.model:
        present = ANNOTATION_PRECISION if request.precision else ANNOTATION_MAX_MODEL_LEN
        raw = request.precision or request.max_model_len or ""
        return _invalid(present, raw, f"needs {ANNOTATION_MODEL} or {ANNOTATION_PROFILE} as well")
    raw_precision = request.precision or DEFAULT_PRECISION
    try:
        precision = sizing.parse_precision(raw_precision)
    except sizing.SizingError as error:
        return _invalid(ANNOTATION_PRECISION, raw_precision, str(error))
    return request.model, str(precision)


@lru_cache(maxsize=REQUIREMENT_CACHE_SIZE)
def requirement_for(request: SizingRequest) -> Requirement:
    """Size one pod; pod-level problems come back as ``Requirement.rejection``, never raised."""
    partitions = request.partitions
    if not request.is_sized:
        return Requirement(partitions)
    tensor_parallel = max(partitions, 1)
    if request.memory:
        return _memory_override(request, partitions)
    max_model_len: int | None = None
    if request.max_model_len is not None:
        raw = request.max_model_len
        if not raw.isdigit() or int(raw) <= 0:
            return Requirement(partitions, rejection=_invalid(ANNOTATION_MAX_MODEL_LEN, raw, "not a positive integer"))
        max_model_len = int(raw)
    chosen = _model_and_precision(request)
    if isinstance(chosen, Rejection):
        return Requirement(partitions, rejection=chosen)
    model, precision = chosen
    try:
        estimate = sizing.partition_requirement(
            model, precision, partitions=tensor_parallel, max_model_len=max_model_len
        )
    except sizing.UnknownModelError as error:
        hint = f"did you mean {' or '.join(error.suggestions)}? " if error.suggestions else ""
        return Requirement(partitions, rejection=Rejection(
            ReasonCode.UNKNOWN_MODEL,
            f"unknown model {model!r} ({ANNOTATION_MODEL}): {hint}use a catalogue id"
            f" (aim-sizing models) or set {ANNOTATION_MEMORY}",
            unresolvable=True,
        ))
    except sizing.SizingError as error:
        return Requirement(partitions, rejection=Rejection(
            ReasonCode.INVALID_ANNOTATION, f"cannot size {model} {precision} from the pod annotations: {error}", unresolvable=True
        ))
    subject = f"{estimate.model_id} {precision}"
    if max_model_len is not None:
        subject += f" ctx {max_model_len}"
    required = estimate.required_partition_bytes
    if required > largest_partition_bytes():
        fixes = sizing.suggest_fixes(
            model, precision, partitions=tensor_parallel, max_model_len=max_model_len
        )
        rejection = _never_fits(subject, required, tensor_parallel, tuple(fixes))
        return Requirement(partitions, required, estimate.total_bytes, subject, rejection)
    return Requirement(partitions, required, estimate.total_bytes, subject)


__all__ = [
    "DEFAULT_PRECISION",
    "Requirement",
    "largest_partition_bytes",
    "parse_memory_quantity",
    "requirement_for",
]
