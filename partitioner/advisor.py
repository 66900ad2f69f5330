"""The partition layout advisor as a library: nodes and workloads in, one mode per node out, proved
by the planner's own placement. Pure: no I/O, no logging, no clock.

    from partitioner import AdvisorNode, Mode, advise
    advice = advise([AdvisorNode("gpu-a", "MI300X", 8, current=Mode("CPX", "NPS4"))], workloads)
    advice.nodes[0].target, advice.totals.placed, advice.dcm_config

``workloads`` are ``decision.planning.Workload`` values (the planner's), in arrival order. See
docs/partitioner.md for the objective, the search and the guarantees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from decision import planning
from partitioner import dcm
from partitioner.demand import Demand, demands_of, gib
from partitioner.errors import AdvisorInputError
from partitioner.modes import Mode, ModeOption, Trust, candidate_options, existing_option, product_name
from partitioner.search import Layout, NodeChoices, Score, changed_count, greedy_layout, local_search

# GPUs in one node: the planner's bound (8 on OAM platforms; 16 leaves room for others).
MAX_GPUS_PER_NODE = 16
# Search work, in node x workload decisions of the planner. One layout of 100 nodes and 500
# workloads placed is 50,100 (with NODE_SETUP_WORK) and the whole advice takes 0.1-0.2 s on the
# shared 2-core machine (bench_advisor.py --sections speed; 0.3-0.5 s for two layouts before issue 19), so
# 100 nodes get the greedy start (there already within 0.5 % of a lower bound on GPUs) and the
# answer stays far under 2 s; small clusters get hundreds of moves.
WORK_BUDGET = 100_000
# Setting up one node for a layout placed (its state, its share of the totals), in decisions: what
# a node offers is looked up once per mode (mode_nodes), so the rest costs about one decision
# (bench_advisor.py --sections few). Counted so that few pods on many nodes do not buy hundreds
# of layouts: 1 pod on 5,000 nodes took 11-15 s of CPU when only nodes x pods was counted.
NODE_SETUP_WORK = 1
# Layouts tried at most, whatever the size: small clusters converge long before this.
MAX_EVALUATIONS = 600


@dataclass(frozen=True, slots=True)
class AdvisorNode:
    """A node to advise on: every GPU the same product, all in one mode."""

    name: str
    product: str
    gpus: int
    current: Mode | None = None  # the node's mode now; None = unknown or free to choose
    repartition_allowed: bool = True  # False: the node keeps ``current`` (the controller's opt-in label)


@dataclass(frozen=True, slots=True)
class AdvisorOptions:
    trust: Trust = Trust.DRIVER  # least-tested gpus.json status a chosen mode may have
    work_budget: int = WORK_BUDGET
    max_evaluations: int = MAX_EVALUATIONS
    greedy_only: bool = False  # skip the local search (for comparisons)


@dataclass(frozen=True, slots=True)
class NodeAdvice:
    name: str
    product: str
    gpus: int
    current: Mode | None
    target: Mode
    changed: bool
    repartition_allowed: bool
    dcm_profile: str  # value for the node label dcm.amd.com/gpu-config-profile


@dataclass(frozen=True, slots=True)
class Totals:
    workloads: int
    placed: int
    gpus: int
    gpus_used: int
    gpus_free: int
    nodes_changed: int

    def as_json(self) -> dict[str, int]:
        return {"workloads": self.workloads, "placed": self.placed, "gpus": self.gpus,
                "gpus_used": self.gpus_used, "gpus_free": self.gpus_free, "nodes_changed": self.nodes_changed}


@dataclass(frozen=True, slots=True)
class Unplaceable:
    """A workload no layout of these nodes can hold, and why."""

    workload: str
    subject: str
    reason: str


@dataclass(frozen=True, slots=True)
class Advice:
    nodes: tuple[NodeAdvice, ...]
    totals: Totals  # of ``plan``
    plan: planning.PlanResult  # the proof: the planner's best-fit placement on the target layout
    current_totals: Totals | None  # the same placement on the current layout, when every node has one
    current_plan: planning.PlanResult | None
    unplaceable: tuple[Unplaceable, ...]
    dcm_config: dict[str, Any]  # DCM config.json: one profile per target mode and GPU count
    evaluations: int  # layouts the search placed
    greedy_totals: Totals  # the search's starting layout, for comparison

    @property
    def changes(self) -> tuple[NodeAdvice, ...]:
        return tuple(node for node in self.nodes if node.changed)


def _choices(node: AdvisorNode, trust: Trust) -> NodeChoices:
    current = existing_option(node.product, node.current) if node.current is not None else None
    if not node.repartition_allowed:
        if current is None:
            raise AdvisorInputError(f"node {node.name}: repartitioning is not allowed and its current mode is unknown")
        return NodeChoices(node.name, current.geometry.product, node.gpus, (current,), 0)
    options: list[ModeOption] = list(candidate_options(node.product, node.current, trust))
    if current is not None and current not in options:
        options.append(current)  # not a mode the advisor would choose, but keeping it costs nothing
    index = options.index(current) if current is not None else None
    return NodeChoices(node.name, product_name(node.product), node.gpus, tuple(options), index)


def _check_nodes(nodes: Sequence[AdvisorNode]) -> None:
    if not nodes:
        raise AdvisorInputError("no nodes to advise on")
    seen: set[str] = set()
    for node in nodes:
        if not node.name:
            raise AdvisorInputError("a node has an empty name")
        if node.name in seen:
            raise AdvisorInputError(f"node name {node.name!r} appears twice")
        seen.add(node.name)
        if not 1 <= node.gpus <= MAX_GPUS_PER_NODE:
            raise AdvisorInputError(f"node {node.name}: gpus={node.gpus} is out of range 1..{MAX_GPUS_PER_NODE}")


def _unplaceable(demand: Demand, nodes: Sequence[NodeChoices], most: dict[int, int]) -> Unplaceable | None:
    """Why no layout can place the demand, or None. ``most`` memoises, per partition size needed,
    the most partitions of that size any node can have."""
    if demand.problem is not None:
        return Unplaceable(demand.name, demand.subject, f"no node in any mode it may take: {demand.problem}")
    if not demand.uses_gpus:
        return None
    if demand.required_bytes not in most:
        most[demand.required_bytes] = max((node.gpus * o.partitions for node in nodes for o in node.options
                                           if o.partition_bytes >= demand.required_bytes), default=0)
    if most[demand.required_bytes] < demand.partitions:
        return Unplaceable(demand.name, demand.subject, (
            f"needs {demand.partitions} partitions of {gib(demand.required_bytes)} or more on one node;"
            f" no node can have more than {most[demand.required_bytes]} in any mode it may take"))
    return None


def choices_for(nodes: Sequence[AdvisorNode], options: AdvisorOptions) -> list[NodeChoices]:
    """Each node's options for the search; AdvisorInputError for invalid nodes or modes."""
    _check_nodes(nodes)
    return [_choices(node, options.trust) for node in nodes]


# Per node, the planner's node in each of its options (indexed like NodeChoices.options).
ModeNodes = Sequence[tuple[planning.PlanNode, ...]]


def mode_nodes(nodes: Sequence[NodeChoices]) -> ModeNodes:
    """Each node in each of its options, built once per advice: what a node offers in a mode is
    looked up once (``PlanNode.partitioning``), not once per layout placed."""
    return [tuple(planning.PlanNode(node.name, (option.geometry,) * node.gpus) for option in node.options)
            for node in nodes]


def layout_cluster(nodes: ModeNodes, layout: Layout, source: str) -> planning.Cluster:
    return planning.Cluster(source, tuple(options[index] for options, index in zip(nodes, layout, strict=True)))


def totals_of(result: planning.PlanResult, changed: int) -> Totals:
    return Totals(result.workload_count, len(result.placements), result.gpu_count,
                  result.gpu_count - result.free_gpus, result.free_gpus, changed)


def advise(
    nodes: Sequence[AdvisorNode], workloads: Sequence[planning.Workload], options: AdvisorOptions | None = None,
    *, source: str = "",
) -> Advice:
    """One mode per node for these workloads (in arrival order); AdvisorInputError for invalid nodes."""
    options = options or AdvisorOptions()
    choices = choices_for(nodes, options)
    demands = demands_of(workloads, [o for c in choices for o in c.options], max(n.gpus for n in nodes))

    results: dict[Layout, planning.PlanResult] = {}
    in_modes = mode_nodes(choices)

    def placed(layout: Layout) -> planning.PlanResult:
        if layout not in results:
            results[layout] = planning.place_all(layout_cluster(in_modes, layout, source), workloads,
                                                    policy=planning.Policy.BEST_FIT)
        return results[layout]

    def evaluate(layout: Layout) -> Score:
        result = placed(layout)
        return (len(result.placements), result.free_gpus - result.gpu_count, -changed_count(choices, layout))

    greedy = greedy_layout(choices, demands)
    starts = [greedy]
    if any(c.current is not None for c in choices):
        starts.append(tuple(c.current if c.current is not None else g for c, g in zip(choices, greedy, strict=True)))
    work = max(1, len(choices) * (len(workloads) + NODE_SETUP_WORK))  # one layout placed
    budget = 1 if options.greedy_only else max(len(starts), min(options.max_evaluations, options.work_budget // work))
    outcome = local_search(choices, starts, evaluate, max_evaluations=budget)
    plan = placed(outcome.layout)
    current_plan = None
    if all(c.current is not None for c in choices):
        current_plan = placed(tuple(c.current for c in choices if c.current is not None))
    advice_nodes = []
    for node, choice, index in zip(nodes, choices, outcome.layout, strict=True):
        target = choice.options[index].mode
        advice_nodes.append(NodeAdvice(
            node.name, choice.product, node.gpus, node.current, target,
            node.current is not None and choice.current != index, node.repartition_allowed,
            dcm.profile_name(target, node.gpus)))
    most: dict[int, int] = {}
    unplaceable = tuple(u for u in (_unplaceable(d, choices, most) for d in demands) if u is not None)
    return Advice(
        nodes=tuple(advice_nodes),
        totals=totals_of(plan, changed_count(choices, outcome.layout)),
        plan=plan,
        current_totals=totals_of(current_plan, 0) if current_plan is not None else None,
        current_plan=current_plan,
        unplaceable=unplaceable,
        dcm_config=dcm.config((n.target, n.gpus) for n in advice_nodes),
        evaluations=outcome.evaluations,
        greedy_totals=totals_of(placed(greedy), changed_count(choices, greedy)),
    )
