#!/usr/bin/env python3
"""Benchmark the partition layout advisor: quality against the exact optimum, and speed.

Quality: on seeded random mixes (2-4 nodes of 1-2 MI300X/MI325X GPUs, some with a current mode,
6-18 workloads from 8B to 235B models, bring-your-own sizes and tensor-parallel requests) the
advisor's layout, its greedy start alone, and the all-CPX and all-SPX layouts are each placed by
the planner's best-fit code and compared with the exact optimum over node modes (every layout).

Speed: ``advise`` on 100 nodes x 8 GPUs and 500 workloads (median of several seeds), end to end
(demand probing, greedy, local search, the proving placement).

    .venv/bin/python bench/bench_advisor.py [--mixes 60] [--max-nodes 4] [--speed-runs 3]

Not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from extender import planning
from partitioner import AdvisorNode, AdvisorOptions, Totals, advise
from partitioner.advisor import choices_for, layout_cluster, totals_of
from partitioner.demand import demands_of
from partitioner.exhaustive import optimum
from partitioner.replay import replay
from partitioner.search import changed_count
from tests.partitioner.mixes import large_mix, random_mix


def _uniform(nodes: Sequence[AdvisorNode], workloads: Sequence[planning.Workload], compute_mode: str) -> Totals:
    """Every node in its candidate mode with this compute mode (the all-CPX / all-SPX baselines)."""
    choices = choices_for(nodes, AdvisorOptions())
    layout = tuple(next(i for i, o in enumerate(c.options) if o.mode.compute_mode == compute_mode) for c in choices)
    return totals_of(replay(layout_cluster(choices, layout, compute_mode), workloads), changed_count(choices, layout))


class Column:
    def __init__(self, name: str) -> None:
        self.name = name
        self.placed_equal = 0
        self.placed_short = 0  # workloads short of the optimum, summed
        self.gpu_ratios: list[float] = []
        self.within_5 = 0
        self.changed = 0

    def add(self, got: Totals, best: Totals) -> None:
        self.placed_equal += got.placed == best.placed
        self.placed_short += best.placed - got.placed
        ratio = got.gpus_used / best.gpus_used if best.gpus_used else 1.0
        self.gpu_ratios.append(ratio)
        self.within_5 += got.placed == best.placed and ratio <= 1.05
        self.changed += got.nodes_changed


def quality(mixes: int, max_nodes: int) -> None:
    columns = {name: Column(name) for name in ("advisor", "greedy only", "all CPX", "all SPX", "optimum")}
    layouts = 0
    started = time.perf_counter()
    advisor_seconds = 0.0
    for seed in range(mixes):
        mix = random_mix(seed, nodes=max_nodes)
        best = optimum(mix.nodes, mix.workloads)
        layouts += best.layouts
        t0 = time.perf_counter()
        advice = advise(mix.nodes, mix.workloads)
        advisor_seconds += time.perf_counter() - t0
        greedy = advise(mix.nodes, mix.workloads, AdvisorOptions(greedy_only=True))
        columns["advisor"].add(advice.totals, best.totals)
        columns["greedy only"].add(greedy.totals, best.totals)
        columns["all CPX"].add(_uniform(mix.nodes, mix.workloads, "CPX"), best.totals)
        columns["all SPX"].add(_uniform(mix.nodes, mix.workloads, "SPX"), best.totals)
        columns["optimum"].add(best.totals, best.totals)
    print(f"Quality: {mixes} seeded mixes, 2-{max_nodes} nodes, {layouts} layouts placed for the exact optimum"
          f" ({time.perf_counter() - started:.1f} s; advisor {advisor_seconds / mixes * 1000:.0f} ms per mix)")
    head = f"  {'':<38}" + "".join(f"{c.name:>13}" for c in columns.values())
    print(head)
    rows: list[tuple[str, Callable[[Column], str]]] = [
        ("placed = optimum (mixes)", lambda c: f"{c.placed_equal}/{mixes}"),
        ("workloads short of optimum (sum)", lambda c: str(c.placed_short)),
        ("placed = opt. and GPUs <= 1.05 x opt.", lambda c: f"{c.within_5}/{mixes}"),
        ("GPUs used / optimum's (mean)", lambda c: f"{statistics.fmean(c.gpu_ratios):.3f}"),
        ("GPUs used / optimum's (max)", lambda c: f"{max(c.gpu_ratios):.3f}"),
        ("nodes changed (sum)", lambda c: str(c.changed)),
    ]
    for label, cell in rows:
        print(f"  {label:<38}" + "".join(f"{cell(c):>13}" for c in columns.values()))


def gpu_lower_bound(nodes: Sequence[AdvisorNode], workloads: Sequence[planning.Workload]) -> int:
    """GPUs no layout can beat: each placed workload's partitions at the most partitions per GPU of
    any mode that holds it, summed as fractions of a GPU (ignores node boundaries and order)."""
    choices = choices_for(nodes, AdvisorOptions())
    options = [o for c in choices for o in c.options]
    total = 0.0
    for demand in demands_of(workloads, options, max(n.gpus for n in nodes)):
        if demand.uses_gpus:
            per_gpu = max(o.partitions for o in options if o.partition_bytes >= demand.required_bytes)
            total += demand.partitions / per_gpu
    return math.ceil(total - 1e-9)


def speed(runs: int) -> None:
    times = []
    for seed in range(runs):
        mix = large_mix(seed)
        t0 = time.perf_counter()
        advice = advise(mix.nodes, mix.workloads)
        times.append(time.perf_counter() - t0)
        cpx = _uniform(mix.nodes, mix.workloads, "CPX")
        spx = _uniform(mix.nodes, mix.workloads, "SPX")
        t = advice.totals
        bound = gpu_lower_bound(mix.nodes, mix.workloads)
        print(f"  seed {seed}: {times[-1]:.2f} s, {advice.evaluations} layouts placed;"
              f" advisor {t.placed}/{t.workloads} placed on {t.gpus_used} GPUs (lower bound {bound})"
              f" (greedy start {advice.greedy_totals.gpus_used}); all CPX {cpx.placed} on {cpx.gpus_used};"
              f" all SPX {spx.placed} on {spx.gpus_used}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"Speed: 100 nodes x 8 GPUs, 500 workloads, {cores} cores: median {statistics.median(times):.2f} s,"
          f" max {max(times):.2f} s (target < 2 s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixes", type=int, default=60)
    parser.add_argument("--max-nodes", type=int, default=4)
    parser.add_argument("--speed-runs", type=int, default=3)
    args = parser.parse_args()
    quality(args.mixes, args.max_nodes)
    print()
    speed(args.speed_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
