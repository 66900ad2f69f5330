#!/usr/bin/env python3
"""Benchmark the partition layout advisor: quality against the exact optimum, and speed.

Quality: on seeded random mixes (2-4 nodes of 1-2 MI300X/MI325X GPUs, some with a current mode,
6-18 workloads from 8B to 235B models, bring-your-own sizes and tensor-parallel requests) the
advisor's layout, its greedy start alone, and the all-CPX and all-SPX layouts are each placed by
the planner's best-fit code and compared with the exact optimum over node modes (every layout).

Speed: ``advise`` on 100 nodes x 8 GPUs and 500 workloads (median of several seeds), end to end
(demand probing, greedy, local search, the proving placement).

Few pods (``--sections few``, under a minute): 1 and 10 pods on up to 5,000 nodes, where the search
places many layouts of every node for little placement work (issue 19: 11-15 s of CPU for 1 pod when
every node's offer was rebuilt for every layout).

Bounds (``--sections bounds``, a few minutes): how the time grows with nodes, pods and distinct node
kinds, what one demand probe costs, and ``aim-partitioner advise`` end to end (files read, checked,
advised) on inputs just inside ``partitioner.inputs.MAX_ADVICE_WORK``: the numbers behind that bound.

    .venv/bin/python bench/bench_advisor.py [--mixes 60] [--max-nodes 4] [--speed-runs 3]
        [--sections quality,speed,few,bounds]

Not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sizing
from decision import planning
from partitioner import Advice, AdvisorNode, AdvisorOptions, Mode, Totals, advise
from partitioner.advisor import choices_for, layout_cluster, mode_nodes, totals_of
from partitioner.cli import main as cli_main
from partitioner.demand import demands_of
from partitioner.exhaustive import optimum
from partitioner.inputs import KIND_WORK, MAX_ADVICE_WORK, PROBE_WORK, advice_work
from partitioner.search import changed_count
from tests.partitioner.mixes import KINDS, large_mix, random_mix


def _uniform(nodes: Sequence[AdvisorNode], workloads: Sequence[planning.Workload], compute_mode: str) -> Totals:
    """Every node in its candidate mode with this compute mode (the all-CPX / all-SPX baselines)."""
    choices = choices_for(nodes, AdvisorOptions())
    layout = tuple(next(i for i, o in enumerate(c.options) if o.mode.compute_mode == compute_mode) for c in choices)
    result = planning.place_all(layout_cluster(mode_nodes(choices), layout, compute_mode), workloads,
                                policy=planning.Policy.BEST_FIT)
    return totals_of(result, changed_count(choices, layout))


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


# --- bounds: the cost of one advise, and the inputs just inside MAX_ADVICE_WORK ---------------------

# Every product and mode in gpus.json, each as the current mode of nodes of 1 to 16 GPUs: many
# distinct node kinds, and every node's mode known (the search places two layouts, greedy and current).
KIND_NODES = tuple((p.name, Mode(m.compute_mode, m.memory_mode)) for p in sizing.GEOMETRY.products for m in p.modes)


def kinds_cluster(count: int) -> list[AdvisorNode]:
    return [AdvisorNode(f"n{i}", KIND_NODES[i % len(KIND_NODES)][0], 1 + (i // len(KIND_NODES)) % 16,
                        KIND_NODES[i % len(KIND_NODES)][1]) for i in range(count)]


def distinct_kinds(kinds: int) -> list[AdvisorNode]:
    """Up to ``kinds`` nodes free to repartition, each of its own kind (NodeChoices.kind): the most
    greedy work per node (272 such kinds exist with gpus.json's six products)."""
    out: list[AdvisorNode] = []
    seen: set[tuple[object, ...]] = set()
    for node in kinds_cluster(len(KIND_NODES) * 16):
        kind = choices_for([node], AdvisorOptions())[0].kind
        if kind not in seen and len(out) < kinds:
            seen.add(kind)
            out.append(AdvisorNode(f"k{len(out)}", node.product, node.gpus, node.current))
    return out


def cycled(kinds: Sequence[AdvisorNode], count: int) -> list[AdvisorNode]:
    """``count`` nodes cycling over the given kinds."""
    return [AdvisorNode(f"c{i}", k.product, k.gpus, k.current) for i, k in ((i, kinds[i % len(kinds)])
                                                                             for i in range(count))]


def mixed_specs(count: int) -> list[planning.WorkloadSpec]:
    """``count`` pods of the twelve kinds of the quality mixes (ten replicas per entry)."""
    return [planning.WorkloadSpec.model_validate({"name": f"w{j}", **KINDS[j % len(KINDS)], "replicas": 10})
            for j in range(count // 10)]


def probe_specs(count: int) -> list[planning.WorkloadSpec]:
    """``count`` distinct workloads no partition holds (300 GiB and more, 64 partitions each): every
    one is probed against every partition size, each probe on a 16-GPU node (the costliest)."""
    return [planning.WorkloadSpec.model_validate({"name": f"p{j}", "memory": f"{300 * 1024 + j}Mi", "partitions": 64})
            for j in range(count)]


def _timed(call: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def _row(label: str, nodes: Sequence[AdvisorNode], specs: Sequence[planning.WorkloadSpec]) -> tuple[float, int]:
    workloads = planning.workloads_from_specs(specs)
    work = advice_work(nodes, workloads, AdvisorOptions())
    advice: list[Advice] = []
    wall, cpu = _timed(lambda: advice.append(advise(nodes, workloads)))
    print(f"  {label:<30}{work.nodes:>6,}{work.kinds:>6}{work.pods:>7,}{work.probes:>8,}{work.total:>12,}"
          f"{wall:>8.1f}{cpu:>7.1f}{cpu / work.total * 1e6:>8.2f}{advice[0].evaluations:>8}", flush=True)
    return cpu, work.probes


def _yaml_files(directory: Path, nodes: Sequence[AdvisorNode], specs: Sequence[planning.WorkloadSpec]) -> list[str]:
    cluster, workloads = directory / "cluster.yaml", directory / "workloads.yaml"
    cluster.write_text("nodes:\n" + "".join(
        f"  - {{name: {n.name}, gpus: [{{product: {n.product}, compute_mode: {n.current.compute_mode},"
        f" memory_mode: {n.current.memory_mode}, count: {n.gpus}}}]}}\n" if n.current else
        f"  - {{name: {n.name}, gpus: [{{product: {n.product}, count: {n.gpus}}}]}}\n" for n in nodes), "utf-8")
    workloads.write_text("workloads:\n" + "".join(
        "  - {" + ", ".join(f"{k}: {v}" for k, v in s.model_dump(exclude_defaults=True).items()) + "}\n"
        for s in specs), "utf-8")
    return ["--cluster", str(cluster), "--workloads", str(workloads)]


Shape = Callable[[int], tuple[list[AdvisorNode], list[planning.WorkloadSpec]]]


def _largest_inside(build: Shape, step: int, high: int) -> int:
    """The largest multiple of ``step`` up to ``high`` whose input ``check_advice_size`` accepts."""
    low = 0
    while high - low > step:
        middle = (low + high) // 2 // step * step
        nodes, specs = build(middle)
        if advice_work(nodes, planning.workloads_from_specs(specs), AdvisorOptions()).total <= MAX_ADVICE_WORK:
            low = middle
        else:
            high = middle
    return low


def few() -> None:
    print("Few pods: advise() on many nodes for 1 and 10 pods (each layout the search places sets up every node)")
    print(f"  {'':<30}{'nodes':>6}{'kinds':>6}{'pods':>7}{'probes':>8}{'work':>12}{'wall s':>8}{'CPU s':>7}"
          f"{'us/unit':>8}{'layouts':>8}")
    one = [planning.WorkloadSpec.model_validate({"name": "w", **KINDS[0]})]
    for count in (1000, 5000):
        _row("modes known, 1 pod", kinds_cluster(count), one)
        _row("MI300X, modes free, 1 pod", [AdvisorNode(f"n{i}", "MI300X", 8) for i in range(count)], one)
    _row("modes known, 10 pods", kinds_cluster(5000), mixed_specs(10))


def bounds() -> None:
    print(f"Bounds: advise() on growing inputs; work = (nodes + {KIND_WORK} x kinds) x pods + {PROBE_WORK} x probes"
          " (partitioner/inputs.py)")
    print(f"  {'':<30}{'nodes':>6}{'kinds':>6}{'pods':>7}{'probes':>8}{'work':>12}{'wall s':>8}{'CPU s':>7}"
          f"{'us/unit':>8}{'layouts':>8}")
    for count in (250, 500, 1000, 2000):
        _row("nodes grow, 2,000 pods", kinds_cluster(count), mixed_specs(2000))
    for count in (1250, 2500, 5000, 10_000):
        _row("pods grow, 400 nodes", kinds_cluster(400), mixed_specs(count))
    _row("kinds grow: 2, modes free", [AdvisorNode(f"n{i}", ("MI300X", "MI325X")[i % 2], 8) for i in range(1000)],
         mixed_specs(2000))
    for kinds in (34, 68, 136, 272):
        _row(f"kinds grow: {kinds}, modes known", cycled(distinct_kinds(kinds), 1000), mixed_specs(2000))
    _row("272 kinds, 272 nodes", distinct_kinds(272), mixed_specs(5000))
    cluster = [AdvisorNode(f"n{i}", product, 16, mode) for i, (product, mode) in enumerate(KIND_NODES)]
    probes = [_row(f"probes: {count:,} distinct, unplaced", cluster, probe_specs(count)) for count in (500, 1000, 2000)]
    per_probe = statistics.median(cpu / n_probes for cpu, n_probes in probes)
    print(f"  one demand probe: {per_probe * 1e6:.0f} us of CPU (median, the rest of those runs included);"
          f" PROBE_WORK counts it as {PROBE_WORK} units")
    print()
    print(f"Bounds: aim-partitioner advise end to end (files read and checked) just inside MAX_ADVICE_WORK"
          f" = {MAX_ADVICE_WORK:,}")
    shapes: list[tuple[str, Shape, int, int]] = [
        ("10,000 pods, nodes grow", lambda n: (kinds_cluster(n), mixed_specs(10_000)), 1, 5000),
        ("2,000 pods, nodes grow", lambda n: (kinds_cluster(n), mixed_specs(2000)), 1, 5000),
        ("272 kinds, pods grow", lambda n: (distinct_kinds(272), mixed_specs(n)), 10, 10_000),
        ("probes grow, 300 nodes", lambda n: (kinds_cluster(300), [*mixed_specs(1000), *probe_specs(n)]), 10, 9000),
    ]
    with tempfile.TemporaryDirectory() as directory:
        for label, build, step, high in shapes:
            nodes, specs = build(_largest_inside(build, step, high))
            work = advice_work(nodes, planning.workloads_from_specs(specs), AdvisorOptions())
            argv = ["advise", *_yaml_files(Path(directory), nodes, specs), "--format", "json"]
            codes: list[int] = []
            with contextlib.redirect_stdout(io.StringIO()):
                wall, cpu = _timed(lambda: codes.append(cli_main(argv)))  # noqa: B023 (called at once)
            assert codes == [0], f"advise exited {codes}"
            print(f"  {label:<24}{work.nodes:>6,} nodes ({work.kinds} kinds) x {work.pods:>6,} pods, {work.probes:>7,}"
                  f" probes: work {work.total:>9,}; {wall:5.1f} s wall, {cpu:5.1f} s CPU", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mixes", type=int, default=60)
    parser.add_argument("--max-nodes", type=int, default=4)
    parser.add_argument("--speed-runs", type=int, default=3)
    parser.add_argument("--sections", default="quality,speed", help="comma-separated: quality, speed, few, bounds")
    args = parser.parse_args()
    sections = {"quality": lambda: quality(args.mixes, args.max_nodes), "speed": lambda: speed(args.speed_runs),
                "few": few, "bounds": bounds}
    for i, name in enumerate(args.sections.split(",")):
        if i:
            print()
        sections[name.strip()]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
