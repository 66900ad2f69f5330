"""The sizing decision: which partition count, which partition size, which vLLM arguments.

Pure: ``sizing`` does the arithmetic and ``decision.fits`` the search of the partition counts against
the partition sizes that exist in the cluster (``Offer``); this module picks the choice and words
the outcome for people (the fixes are ``decision.fixes``', the extender's too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import sizing
from decision.fits import Offer, Target, first_fit, need_at, product_offers, required_bytes
from decision.fixes import fix_clause
from decision.text import MIB, gib
from sizing import MemoryEstimate
from sizing.contract import RESOURCE_NAME


@dataclass(frozen=True, slots=True)
class Choice:
    """A partition count and the need of each partition at that count."""

    partitions: int
    need: MemoryEstimate
    required_bytes: int  # smallest partition memory that holds one rank (the affinity threshold)
    fits_cluster: bool  # False: chosen against known products because no node of the cluster holds it

    @property
    def required_mib(self) -> int:
        return -(-self.required_bytes // MIB)

    def engine_args(self) -> dict[str, str]:
        """vLLM arguments (``--name`` -> value) for the sized need, as ``sizing.engine_args`` gives them.

        ``--dtype``/``--kv-cache-dtype`` only when not ``auto`` and ``--quantization`` only where
        sizing says the precision needs it; everything else always, so vLLM runs what was sized.
        """
        partition = max(self.required_bytes, self.need.required_partition_bytes)
        try:
            facts = sizing.engine_args(self.need, partition)
        except sizing.SizingError:  # float rounding at the exact boundary: one MiB more always holds it
            facts = sizing.engine_args(self.need, partition + MIB)
        args: dict[str, str] = {}
        for name, value in facts.items():
            if name in ("dtype", "kv-cache-dtype") and value == "auto":
                continue
            args["--" + name] = str(value)
        return args


@dataclass(frozen=True, slots=True)
class Outcome:
    """The decision for one workload: a choice, or the denial (with the fix) when nothing can hold
    it, and what people should be told."""

    choice: Choice | None
    warnings: tuple[str, ...] = ()
    denial: str = ""  # set exactly when choice is None


def _too_big(target: Target, offers: Sequence[Offer], in_cluster: bool, waits: bool = False) -> str:
    count = target.counts[0]
    need = need_at(target, target.precision, count, target.max_model_len)
    where = "in this cluster" if in_cluster else "of any known GPU"
    largest = max((o.memory_bytes for o in offers), default=0)
    noun = "partition" if count == 1 else "partitions"
    needs = (f"needs {gib(required_bytes(target, need), round_up=True)} per partition with {count} {noun}"
             if need is not None else f"cannot run on {count} {noun}")
    text = f"{target.subject} {needs}; the largest partition {where} is {gib(largest, round_up=False)}"
    if waits:
        text += "; it waits for a node that holds it"
    return text + fix_clause(target, offers)


def decide(target: Target, offers: Sequence[Offer]) -> Outcome:
    """The smallest partition count whose need some node of the cluster holds.

    Without partitions in the cluster (no labelled node yet), or when nothing there holds it, the
    choice is made against the partitions of the known products (the pod then waits for such a
    node) and a warning says why. When no partition of a known product or of the cluster holds it
    either, there is no choice: the object is denied with the fix (admitted, it could only wait
    forever, or, without the webhook's node affinity, be placed by count on a partition too small).
    """
    found = first_fit(target, offers, target.counts)
    if found is not None:
        return Outcome(Choice(found.partitions, found.need, found.required_bytes, fits_cluster=True))
    known = product_offers(sizing.GEOMETRY)
    warnings: list[str] = []
    fallback = first_fit(target, known, target.counts)
    if fallback is None:
        return Outcome(None, denial=_too_big(target, (*known, *offers), in_cluster=False))
    if offers:
        warnings.append(_too_big(target, offers, in_cluster=True, waits=True))
    if not offers:
        size = gib(fallback.required_bytes, round_up=True)
        warnings.append(f"no node advertises {RESOURCE_NAME} partition labels yet; sized {target.subject}"
                        f" against the partitions of the known GPUs ({fallback.partitions} x {size})")
    return Outcome(Choice(fallback.partitions, fallback.need, fallback.required_bytes, fits_cluster=False),
                   tuple(warnings))


# --- Native mode: preferred node-affinity terms that rank partition sizes ----------------------
#
# kube-scheduler's NodeAffinity score (v1.25 pkg/scheduler/framework/plugins/nodeaffinity:
# Score = the sum of the weights (1..100) of the pod's preferred terms a node matches;
# NormalizeScore = helper.DefaultNormalizeScore(100, false): score * 100 / (the highest score among
# the nodes being scored), integer division; 0 stays 0) is then multiplied by the plugin's weight in
# the profile (framework RunScorePlugins). The webhook writes one term per partition size at or
# above the need except the largest, "memory-mib Lt <the next size>", each weight 100: a node whose
# partitions are the j-th size that fits (j = 0 the smallest) matches every term from the j-th on,
# so with k sizes it scores 100 x (k - 1 - j): the smaller the partition, the higher, and the
# largest size scores 0 (one term per size would add the same 100 to every node that fits).
# The sizes are those the labelled nodes advertise (gpus.json's only while no node does): each
# term costs kube-scheduler one label comparison per node per pod, and the 14 sizes of gpus.json
# would be up to 13 terms where a cluster has a handful of shapes (at 5,000 nodes, 13 x 5,000
# comparisons per pod, several percent of the scheduler's time: bench/bench_scheduler.py). A size
# that appears later (a repartitioned node) ranks with the next smaller size the pod was admitted
# with (bands, not exact values; for the same reason the KFD sizes of real partitions, a few MiB
# off the data file's, match), never above a smaller one.
#
# Why size beats fullness: after normalization two nodes of different sizes differ by at least
# floor(100 x 100 / (100 x (k - 1))) >= 1 point as long as k - 1 <= 100 terms (MAX_PREFERRED_TERMS
# keeps it at 32); the native profile (extender.scheduler_config.native_profile) weights NodeAffinity
# 1,000,000, so one point is 1,000,000, more than NodeResourcesFit MostAllocated can give
# (100 x 1,000) plus every other score plugin the profile keeps (100 x 8). Among nodes of one size the
# preference is equal and fullness decides: the extender's best fit (decision/verdict.py).

# Terms written at most: more distinct sizes than a few node shapes only come from odd labels;
# sizes beyond the 33rd that fits share the lowest rank (never inverted).
MAX_PREFERRED_TERMS: Final = 32
# Weight of each term: the API's maximum (1..100), so the ranks stay 100 apart before normalization.
PREFERRED_TERM_WEIGHT: Final = 100

_KNOWN_SIZES_MIB: Final = tuple(sorted({mode.memory_bytes // MIB for mode in sizing.GEOMETRY.partition_modes()}))


def size_bounds(required_mib: int, offers: Sequence[Offer]) -> tuple[int, ...]:
    """The ``Lt`` values of the preferred terms, smallest first: every partition size (whole MiB,
    rounded down, as the ``memory-mib`` label gives it) that holds ``required_mib``, of the labelled
    nodes (of gpus.json while no node is labelled), without the smallest (the terms are upper bounds:
    "smaller than the next size")."""
    sizes = sorted({o.memory_bytes // MIB for o in offers} or set(_KNOWN_SIZES_MIB))
    fitting = [size for size in sizes if size >= required_mib]
    return tuple(fitting[1:MAX_PREFERRED_TERMS + 1])
