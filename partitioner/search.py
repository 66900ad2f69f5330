"""Choose one mode per node: a greedy layout built from the demand, then local search judged by the
planner's own placement. Pure (no I/O, no clock: the budget counts work, so answers repeat).

Objective, in order: most workloads placed; fewest GPUs used (a GPU is used when any of its
partitions is taken); fewest nodes changed from their current mode.

The greedy walks the workloads in their order, as the scheduler will, and keeps a rough model of
the nodes: a workload goes to an open node whose partitions are the tightest any node could offer
it; when none has room, the empty node whose tightest mode for it is smallest is opened in that
mode (preferring a node already in that mode, then the node whose capacity best matches the
partitions the rest of the workloads need in that mode); failing that, to any open node that fits.
Nodes left empty keep their current mode, or get their largest-partition mode.

The local search then tries, node by node, every other candidate mode, and swaps the modes of two
alike nodes when that undoes changes; a move is kept when the planner's placement scores better.
It stops when a full round finds nothing or the work budget is spent.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from partitioner.demand import Demand
from partitioner.modes import ModeOption

# (placed, -gpus_used, -nodes_changed): larger is better, compared as a tuple.
Score = tuple[int, int, int]
Layout = tuple[int, ...]  # per node, an index into its options


@dataclass(frozen=True, slots=True)
class NodeChoices:
    """A node as the search sees it: its options and where it starts."""

    name: str
    product: str
    gpus: int
    options: tuple[ModeOption, ...]  # largest partitions first; one option = the node is fixed
    current: int | None  # index of the current mode in options, None when unknown or not a candidate

    @property
    def fixed(self) -> bool:
        return len(self.options) == 1

    @property
    def kind(self) -> tuple[object, ...]:
        """Nodes of one kind share every answer of the greedy (the search's work grows with kinds x pods)."""
        return (self.product, self.gpus, self.options)


@dataclass(frozen=True, slots=True)
class SearchOutcome:
    layout: Layout
    score: Score
    evaluations: int
    greedy_score: Score


def changed_count(nodes: Sequence[NodeChoices], layout: Layout) -> int:
    pairs = zip(nodes, layout, strict=True)
    return sum(1 for node, index in pairs if node.current is not None and node.current != index)


def _tightest(node: NodeChoices, demand: Demand) -> int | None:
    """Index of the node's option with the smallest partitions that holds the demand on this node."""
    best: int | None = None
    for index, option in enumerate(node.options):
        holds = option.partition_bytes >= demand.required_bytes and node.gpus * option.partitions >= demand.partitions
        if holds and (best is None or option.partition_bytes < node.options[best].partition_bytes):
            best = index
    return best


@dataclass(slots=True)
class _Open:
    """A node with a chosen mode in the greedy's rough model."""

    option: int
    free: list[int]  # free partitions per GPU

    def room(self) -> int:
        return sum(self.free)

    def take(self, partitions: int) -> None:
        whole = [i for i, free in enumerate(self.free) if free >= partitions]
        if whole:  # all on one GPU, the fullest that holds them (as the device plugin takes them)
            gpu = min(whole, key=lambda i: self.free[i])
            self.free[gpu] -= partitions
            return
        for i in sorted(range(len(self.free)), key=lambda i: self.free[i]):
            step = min(partitions, self.free[i])
            self.free[i] -= step
            partitions -= step


def _preference(node: NodeChoices, option: int, still_needed: int, demand: Demand) -> tuple[int, int, int]:
    """Which empty node to open for a demand (smaller is better): one already in the mode, then one
    whose capacity in it covers what the workloads to come need (the smallest such), else the largest."""
    capacity = node.gpus * node.options[option].partitions
    covers = capacity >= still_needed + demand.partitions
    return (0 if node.current == option else 1, 0 if covers else 1, capacity if covers else -capacity)


def greedy_layout(nodes: Sequence[NodeChoices], demands: Sequence[Demand]) -> Layout:
    """The first layout: modes opened on demand, in the workloads' order."""
    active = [d for d in demands if d.uses_gpus]
    # Nodes of one kind (product and options) share their tightest option for a demand.
    kinds: dict[tuple[object, ...], int] = {}
    kind_of = [kinds.setdefault(node.kind, i) for i, node in enumerate(nodes)]
    representatives = sorted(set(kind_of))
    tight: list[list[int | None]] = []
    for demand in active:
        by_kind = {k: _tightest(nodes[k], demand) for k in representatives}
        tight.append([by_kind[k] for k in kind_of])
    # Partitions the workloads still to come need in each (node kind, option): which node to open.
    remaining: Counter[tuple[int, int]] = Counter()
    for row, demand in zip(tight, active, strict=True):
        for k in representatives:
            option = row[k]
            if option is not None:
                remaining[(k, option)] += demand.partitions
    opened: dict[int, _Open] = {
        i: _Open(0, [node.options[0].partitions] * node.gpus) for i, node in enumerate(nodes) if node.fixed
    }
    for row, demand in zip(tight, active, strict=True):
        for k in representatives:
            option = row[k]
            if option is not None:
                remaining[(k, option)] -= demand.partitions
        fitting = [
            (nodes[i].options[state.option].partition_bytes, state.room(), i)
            for i, state in opened.items()
            if nodes[i].options[state.option].partition_bytes >= demand.required_bytes
            and state.room() >= demand.partitions
        ]
        closed = [(nodes[i].options[option].partition_bytes, i, option) for i, option in enumerate(row)
                  if option is not None and i not in opened]
        best_open = min(fitting) if fitting else None
        best_closed = min(b for b, _, _ in closed) if closed else None
        if best_open is not None and (best_closed is None or best_open[0] <= best_closed):
            opened[best_open[2]].take(demand.partitions)
            continue
        if best_closed is not None:
            chosen, option = min(
                ((i, option) for size, i, option in closed if size == best_closed),
                key=lambda pair: (*_preference(nodes[pair[0]], pair[1], remaining[(kind_of[pair[0]], pair[1])], demand),
                                  pair[0]))
            state = _Open(option, [nodes[chosen].options[option].partitions] * nodes[chosen].gpus)
            state.take(demand.partitions)
            opened[chosen] = state
            continue
        if best_open is not None:
            opened[best_open[2]].take(demand.partitions)
    return tuple(
        opened[i].option if i in opened else (node.current if node.current is not None else 0)
        for i, node in enumerate(nodes)
    )


def _moves(nodes: Sequence[NodeChoices], layout: Layout) -> Iterator[Layout]:
    """Neighbouring layouts, cheapest first: swaps that undo changes, single-node mode changes,
    then changes of two nodes at once (a mode given up here pays only with one taken up there)."""
    for i, a in enumerate(nodes):
        if a.fixed or a.current is None or layout[i] == a.current:
            continue
        for j, b in enumerate(nodes):
            if (j != i and not b.fixed and (b.product, b.gpus) == (a.product, a.gpus)
                    and layout[j] == a.current and layout[i] != layout[j]):
                swapped = list(layout)
                swapped[i], swapped[j] = layout[j], layout[i]
                yield tuple(swapped)
    for i, node in enumerate(nodes):
        for option in range(len(node.options)):
            if option != layout[i]:
                yield (*layout[:i], option, *layout[i + 1:])
    for i, j in itertools.combinations(range(len(nodes)), 2):
        for first, second in itertools.product(range(len(nodes[i].options)), range(len(nodes[j].options))):
            if first != layout[i] and second != layout[j]:
                pair = list(layout)
                pair[i], pair[j] = first, second
                yield tuple(pair)


def local_search(
    nodes: Sequence[NodeChoices], start: Sequence[Layout], evaluate: Callable[[Layout], Score], *, max_evaluations: int,
) -> SearchOutcome:
    """Hill-climb from the best of ``start`` with first-improvement moves, within ``max_evaluations``."""
    seen: dict[Layout, Score] = {}

    def score(layout: Layout) -> Score:
        if layout not in seen:
            seen[layout] = evaluate(layout)
        return seen[layout]

    greedy_score = score(start[0])
    best = max(start, key=score)
    best_score = score(best)
    improved = True
    while improved and len(seen) < max_evaluations:
        improved = False
        for candidate in _moves(nodes, best):
            if candidate in seen:
                continue
            if len(seen) >= max_evaluations:
                break
            if score(candidate) > best_score:
                best, best_score, improved = candidate, score(candidate), True
                break
    return SearchOutcome(best, best_score, len(seen), greedy_score)
