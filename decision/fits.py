"""Which partition counts of which partition sizes hold a workload. Pure (``sizing`` does the arithmetic).

An ``Offer`` is what one node offers (its partition size and how many partitions it has); a
``Target`` is what is being placed. ``first_fit`` is the search both the webhook's choice
(``webhook.choice.decide``) and the fix suggestions (``decision.fixes``) run: the fewest partitions
whose per-partition need an offer holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import sizing
from sizing import MemoryEstimate, ModelArch, Precision

# Partition counts (= tensor-parallel sizes) tried, smallest first: vLLM's usual TP sizes, which
# are also the counts AIM profiles use (sizing.TP_SIZES).
PARTITION_COUNTS: Final[tuple[int, ...]] = tuple(sizing.TP_SIZES)


@dataclass(frozen=True, slots=True, order=True)
class Offer:
    """What one node offers: its smallest partition's memory and how many partitions it has."""

    memory_bytes: int
    count: int | None = None  # None: the count is unknown (the node is not limited by it)


@dataclass(frozen=True, slots=True)
class Target:
    """What is being sized: the model, its precision and context, and what the user fixed."""

    model: ModelArch
    precision: Precision
    max_model_len: int | None = None  # None: sizing's default context
    partitions: int | None = None  # the user's partition count (fixed), else searched
    memory_bytes: int | None = None  # aim.amd.com/memory: per-partition need that overrides the estimate

    @property
    def subject(self) -> str:
        return f"{self.model.id} {self.precision.value}"

    @property
    def counts(self) -> tuple[int, ...]:
        """The partition counts a choice may take: the user's, else every one of PARTITION_COUNTS."""
        return (self.partitions,) if self.partitions is not None else PARTITION_COUNTS


@dataclass(frozen=True, slots=True)
class Fit:
    """``partitions`` partitions of ``partition_bytes`` (the smallest offered size that holds it)."""

    partitions: int
    need: MemoryEstimate
    required_bytes: int  # what one partition must hold
    partition_bytes: int


def product_offers(geometry: sizing.Geometry) -> tuple[Offer, ...]:
    """Every partition size of every known product on the largest node of that product (its
    ``gpus_per_node`` GPUs, all in the mode: gpus.json), for when no node of the cluster holds a model.

    A node, not a GPU: a model that needs four 192 GiB partitions fits an 8-GPU MI300X node in SPX
    and must wait for one (the partitioner sees the demand), not be denied as if nothing held it.
    """
    return tuple(Offer(mode.memory_bytes, mode.partitions * product.gpus_per_node)
                 for product in geometry.products for mode in product.modes)


def need_at(target: Target, precision: Precision, partitions: int,
            max_model_len: int | None) -> MemoryEstimate | None:
    """sizing's estimate, or None when the model cannot run at this count (heads do not divide)."""
    try:
        return sizing.partition_requirement(target.model, precision, partitions=partitions,
                                            max_model_len=max_model_len)
    except sizing.SizingError:
        return None


def required_bytes(target: Target, need: MemoryEstimate) -> int:
    """What one partition must hold: ``aim.amd.com/memory`` when given, else the estimate."""
    return target.memory_bytes if target.memory_bytes is not None else need.required_partition_bytes


def smallest_holding(offers: Sequence[Offer], required: int, partitions: int) -> int | None:
    """The smallest offered partition size that holds ``required`` on a node with ``partitions`` of them."""
    return min((o.memory_bytes for o in offers
                if o.memory_bytes >= required and (o.count is None or o.count >= partitions)), default=None)


def first_fit(target: Target, offers: Sequence[Offer], counts: Sequence[int], *,
              precision: Precision | None = None, max_model_len: int | None = None) -> Fit | None:
    """The fewest of ``counts`` partitions some offer holds, at ``precision`` and ``max_model_len``
    (the target's own when not given)."""
    precision = precision if precision is not None else target.precision
    context = max_model_len if max_model_len is not None else target.max_model_len
    for count in counts:
        need = need_at(target, precision, count, context)
        if need is None:
            continue
        required = required_bytes(target, need)
        size = smallest_holding(offers, required, count)
        if size is not None:
            return Fit(count, need, required, size)
    return None
