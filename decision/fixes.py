"""What would fit: the one fix-suggestion engine. Pure.

Asked when nothing holds a workload: by the extender for a pod no partition of a known GPU holds
(``decision.requirement``, against ``fits.product_offers`` of its geometry) and by the webhook for
an object no partition of the cluster, or of a known GPU, holds (``webhook.choice``, against the
cluster's offers or the known products'). Both word the same situation alike:

* a lower precision (the highest that fits), on the fewest partitions that hold it;
* more partitions at the same precision, when the partition count was fixed;
* the default context (``sizing.DEFAULT_CONTEXT_CAP``) when a longer one was asked for;
* with ``aim.amd.com/memory``, at most the largest partition a node has enough of.

Each fix names the smallest offered partition that holds it, e.g.
``fix: precision fp8 on 1 x 256 GiB, or 2 partitions of 256 GiB``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import sizing
from decision.fits import PARTITION_COUNTS, Fit, Offer, Target, first_fit
from decision.text import gib
from sizing import Precision
from sizing.contract import ANNOTATION_MEMORY

# Precisions tried, highest first: the first one lower than the target's that fits is offered.
SUGGESTED_PRECISIONS: Final = (Precision.FP8, Precision.INT8, Precision.INT4)

NO_FIX: Final = "; no lower precision, more partitions or shorter context fits"


@dataclass(frozen=True, slots=True)
class Fix:
    """One change that makes the workload fit, and the partitions it then takes."""

    change: str  # "precision fp8", "max-model-len 8192", "" (more partitions: the count is the change)
    fit: Fit

    @property
    def text(self) -> str:
        """``precision fp8 on 2 x 48 GiB``, ``4 partitions of 48 GiB``: short, as a warning is cut
        at 256 characters (webhook.review) and the fix comes last."""
        count, size = self.fit.partitions, gib(self.fit.partition_bytes)
        return f"{self.change} on {count} x {size}" if self.change else f"{count} partitions of {size}"


def fixes(target: Target, offers: Sequence[Offer]) -> tuple[Fix, ...]:
    """The fixes that make ``target`` fit ``offers``, in the order of the module's list."""
    if target.memory_bytes is not None:
        return ()  # the need is the user's number, not an estimate: memory_clause words it
    out: list[Fix] = []
    for lower in SUGGESTED_PRECISIONS:
        if lower.bits >= target.precision.bits:
            continue
        found = first_fit(target, offers, PARTITION_COUNTS, precision=lower)
        if found is not None:
            out.append(Fix(f"precision {lower.value}", found))
            break
    if target.partitions is not None:
        more = first_fit(target, offers, [c for c in PARTITION_COUNTS if c > target.partitions])
        if more is not None:
            out.append(Fix("", more))
    if target.max_model_len is not None and target.max_model_len > sizing.DEFAULT_CONTEXT_CAP:
        shorter = first_fit(target, offers, target.counts, max_model_len=sizing.DEFAULT_CONTEXT_CAP)
        if shorter is not None:
            out.append(Fix(f"max-model-len {sizing.DEFAULT_CONTEXT_CAP}", shorter))
    return tuple(out)


def memory_clause(partitions: int, offers: Sequence[Offer]) -> str:
    """For ``aim.amd.com/memory`` beyond every partition: ``; fix:`` the most it may ask on
    ``partitions`` partitions (the largest partition of a node that has that many)."""
    largest = max((o.memory_bytes for o in offers if o.count is None or o.count >= partitions), default=None)
    if largest is None:
        return NO_FIX
    return f"; fix: {ANNOTATION_MEMORY} of at most {gib(largest)} per partition (more partitions split the model)"


def fix_clause(target: Target, offers: Sequence[Offer]) -> str:
    """``; fix: a, or b`` for a message that says what does not fit (or that nothing would)."""
    if target.memory_bytes is not None:
        return memory_clause(target.counts[0], offers)
    found = fixes(target, offers)
    return "; fix: " + ", or ".join(fix.text for fix in found) if found else NO_FIX
