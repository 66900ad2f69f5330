"""The exact optimum over node modes for small clusters: every combination of candidate modes,
each placed by the planner's best-fit placement, best by the advisor's objective. For tests, the
benchmark and anyone who wants to check an answer; the work grows as modes^nodes. Pure.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from decision import planning
from partitioner.advisor import (
    AdvisorNode,
    AdvisorOptions,
    Totals,
    choices_for,
    layout_cluster,
    mode_nodes,
    totals_of,
)
from partitioner.modes import Mode
from partitioner.search import changed_count

# Layouts the exhaustive search will try before refusing (about a second of small placements).
MAX_LAYOUTS = 20_000


@dataclass(frozen=True, slots=True)
class Optimum:
    modes: tuple[Mode, ...]
    totals: Totals
    layouts: int  # combinations placed


def optimum(nodes: Sequence[AdvisorNode], workloads: Sequence[planning.Workload],
            options: AdvisorOptions | None = None) -> Optimum:
    """The best layout by (placed, fewest GPUs used, fewest nodes changed); ValueError when too many."""
    choices = choices_for(nodes, options or AdvisorOptions())
    count = 1
    for choice in choices:
        count *= len(choice.options)
    if count > MAX_LAYOUTS:
        raise ValueError(f"{count} layouts; the exhaustive search stops at {MAX_LAYOUTS}")
    best: tuple[tuple[int, int, int], tuple[int, ...], planning.PlanResult] | None = None
    in_modes = mode_nodes(choices)
    for layout in itertools.product(*(range(len(c.options)) for c in choices)):
        result = planning.place_all(layout_cluster(in_modes, layout, "exhaustive"), workloads,
                                    policy=planning.Policy.BEST_FIT)
        score = (len(result.placements), result.free_gpus - result.gpu_count, -changed_count(choices, layout))
        if best is None or score > best[0]:
            best = (score, layout, result)
    assert best is not None
    _, layout, result = best
    return Optimum(tuple(c.options[i].mode for c, i in zip(choices, layout, strict=True)),
                   totals_of(result, changed_count(choices, layout)), count)
