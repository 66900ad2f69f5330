"""Stage 1, second half: a pod's demand -> its ``Requirement``. The only module that calls ``sizing``.

A requirement is one thing: how much memory each partition given to the pod must hold, and how
many partitions it takes. The ``Sizer`` is built with the model catalogue it sizes from (passed in,
not a module global), and memoises per ``PodDemand``: the inputs are a handful of strings and
ints, sizing is pure, and kube-scheduler calls filter and then prioritize for the same pod.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Final

import sizing
from decision.fits import Target, product_offers
from decision.fixes import fix_clause, memory_clause
from decision.pod_demand import PodDemand
from decision.reasons import ReasonCode, Rejection
from decision.text import gib_ceil, gib_floor
from sizing.contract import (
    ANNOTATION_MAX_MODEL_LEN,
    ANNOTATION_MEMORY,
    ANNOTATION_MODEL,
    ANNOTATION_PRECISION,
    ANNOTATION_PROFILE,
)
from sizing.requirement import requirement as size_requirement

# A model annotated without a precision is sized at 16 bits: the dtype most checkpoints ship in
# (fp16 and bf16 weigh the same, sizing-api.md "Precision").
DEFAULT_PRECISION: Final = "fp16"

# Distinct pods' demands remembered; a cluster runs a few dozen models x precisions x counts.
REQUIREMENT_CACHE_SIZE: Final = 4096


@dataclass(frozen=True, slots=True)
class Requirement:
    """What every partition given to the pod must hold, and how many partitions it takes."""

    partitions: int  # partitions requested (tensor-parallel size); 0 = pod asks for none
    required_bytes: int | None = None  # smallest partition memory that holds it; None = not sized
    model_bytes: int | None = None  # memory the workload uses in each partition
    subject: str = ""  # what is being placed, for messages: "Qwen/Qwen3-8B fp16"
    rejection: Rejection | None = None  # a problem with the pod itself: rejects every node

    @property
    def is_sized(self) -> bool:
        return self.required_bytes is not None


def _declared_precision(catalogue: sizing.Catalogue, model: str) -> str | None:
    """The precision a pre-quantized model of the catalogue declares (None: 16-bit or unknown)."""
    try:
        arch = catalogue.get_model(model)
    except sizing.SizingError:
        return None
    return arch.quantization.scheme.precision.value if arch.quantization is not None else None


def _invalid(message: str) -> Rejection:
    return Rejection(ReasonCode.INVALID_ANNOTATION, message, unresolvable=True)


class Sizer:
    """Turns a ``PodDemand`` into a ``Requirement`` with one catalogue and one GPU geometry."""

    def __init__(self, catalogue: sizing.Catalogue | None = None, geometry: sizing.Geometry | None = None) -> None:
        self.geometry = geometry if geometry is not None else sizing.GEOMETRY
        self.largest_partition_bytes = self.geometry.largest_partition_bytes()
        self.offers = product_offers(self.geometry)  # what the fixes are sized against (decision.fixes)
        self.catalogue = catalogue if catalogue is not None else sizing.CATALOGUE

    @property
    def catalogue(self) -> sizing.Catalogue:
        return self._catalogue

    @catalogue.setter
    def catalogue(self, catalogue: sizing.Catalogue) -> None:
        """Size from ``catalogue`` from now on (a models directory changed): the memo starts afresh,
        so a model that was unknown is found. Both are replaced together; readers see one or the other."""
        self._catalogue = catalogue
        self.requirement: Callable[[PodDemand], Requirement] = lru_cache(maxsize=REQUIREMENT_CACHE_SIZE)(
            partial(self._size, catalogue)
        )

    def _never_fits(self, subject: str, required: int, partitions: int, fix: str) -> Rejection:
        """``fix``: decision.fixes' clause (``; fix: ...``)."""
        return Rejection(
            ReasonCode.NEVER_FITS,
            f"{subject} needs {gib_ceil(required)} per partition with {partitions} partition(s),"
            f" more than the largest gpu partition ({gib_floor(self.largest_partition_bytes)}){fix}",
            unresolvable=True,
        )

    def _memory_override(self, demand: PodDemand, need: int) -> Requirement:
        partitions = demand.partitions
        subject = f"{demand.model or demand.profile or 'workload'} ({demand.memory_text} per partition)"
        if need > self.largest_partition_bytes:
            fix = memory_clause(max(partitions, 1), self.offers)
            return Requirement(partitions, need, need, subject, self._never_fits(subject, need, partitions, fix))
        return Requirement(partitions, need, need, subject)

    def _model_and_precision(self, demand: PodDemand) -> tuple[str, str] | Rejection:
        if demand.profile:
            try:
                profile = sizing.get_profile(demand.profile)
            except sizing.SizingError as error:
                return Rejection(
                    ReasonCode.UNKNOWN_MODEL,
                    f"{error} ({ANNOTATION_PROFILE}); use a valid AIM profile id or set"
                    f" {ANNOTATION_MODEL} and {ANNOTATION_PRECISION}",
                    unresolvable=True,
                )
            return profile.model_id, str(profile.precision)
        if not demand.model:
            present = ANNOTATION_PRECISION if demand.precision else ANNOTATION_MAX_MODEL_LEN
            return _invalid(f"invalid pod annotation {present}: needs {ANNOTATION_MODEL} or {ANNOTATION_PROFILE}"
                            " as well")
        raw_precision = demand.precision or DEFAULT_PRECISION
        try:
            precision = sizing.parse_precision(raw_precision)
        except sizing.SizingError as error:
            return _invalid(f"invalid pod annotation {ANNOTATION_PRECISION}={raw_precision!r}: {error}")
        return demand.model, str(precision)

    def _size(self, catalogue: sizing.Catalogue, demand: PodDemand) -> Requirement:
        """Size one pod; pod-level problems come back as ``Requirement.rejection``, never raised."""
        partitions = demand.partitions
        if demand.problem is not None:
            return Requirement(partitions, rejection=_invalid(demand.problem))
        if not demand.is_sized:
            return Requirement(partitions)
        tensor_parallel = max(partitions, 1)
        if demand.memory_bytes is not None:
            return self._memory_override(demand, demand.memory_bytes)
        chosen = self._model_and_precision(demand)
        if isinstance(chosen, Rejection):
            return Requirement(partitions, rejection=chosen)
        model, precision = chosen
        if demand.precision is None and demand.profile is None:  # a pre-quantized checkpoint sets its own
            declared = _declared_precision(catalogue, model)
            precision = declared or precision
        max_model_len = demand.max_model_len
        try:
            estimate = size_requirement(
                catalogue, model, precision, partitions=tensor_parallel, max_model_len=max_model_len
            )
        except sizing.UnknownModelError as error:
            hint = f"did you mean {' or '.join(error.suggestions)}? " if error.suggestions else ""
            return Requirement(partitions, rejection=Rejection(
                ReasonCode.UNKNOWN_MODEL,
                f"unknown model {model!r} ({ANNOTATION_MODEL}): {hint}use a catalogue id"
                f" (aim-sizing models), add the model to the extender's models directory"
                f" (aim-sizing models add --config config.json --id ORG/NAME --source URL --out DIR, then put"
                f" the file in the models ConfigMap) or set {ANNOTATION_MEMORY}",
                unresolvable=True,
            ))
        except sizing.SizingError as error:
            return Requirement(partitions, rejection=_invalid(
                f"cannot size {model} {precision} from the pod annotations: {error}"
            ))
        subject = f"{estimate.model_id} {precision}"
        if max_model_len is not None:
            subject += f" ctx {max_model_len}"
        required = estimate.required_partition_bytes
        if required > self.largest_partition_bytes:
            target = Target(catalogue.get_model(model), sizing.parse_precision(precision), max_model_len,
                            tensor_parallel)
            rejection = self._never_fits(subject, required, tensor_parallel, fix_clause(target, self.offers))
            return Requirement(partitions, required, estimate.total_bytes, subject, rejection)
        return Requirement(partitions, required, estimate.total_bytes, subject)
