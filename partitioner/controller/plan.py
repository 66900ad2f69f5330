"""Which nodes to repartition now, and into which mode: a pure function of what the controller
sees (nodes, pods, the nodes' repartition states) and the clock.

1. The demand is the pods bound to GPU nodes plus the pods left unschedulable for a layout, a
   fact computed here with the decision core, not read from messages: the pod's requirement
   (``decision.requirement.Sizer``) against every node it may run on (nodeSelector, required node
   affinity): no node has partitions that hold it, as many FREE as it asks for (allocatable minus
   the bound pods' requests, counted here: the pod's message may predate them); or kube-scheduler's
   ``Insufficient amd.com/gpu-partition`` (too few FREE partitions, counting the pods it has
   assumed: observe.INSUFFICIENT) when some node's partitions are big enough for the pod (then
   more, smaller partitions may let it run).
2. The advisor (``partitioner.advise``) chooses a layout for that demand, with every node that may
   not change (not opted in, busy, cooling down, in a repartition) held in its mode.
3. A change is made only where it pays: the pending pods are placed, in order, with the planner's
   own ``place_one`` (the extender's filter and best-fit score) on the cluster as it is (bound pods
   where they are, nodeSelectors and required node affinity respected, against the labels a node
   would have after the change), with and without the change. A change pays when it
   lets pending pods run that cannot now. Idle nodes come first; a node with GPU pods only with
   ``--allow-eviction`` and only when its pods can be placed elsewhere too. Among equals the
   advisor's choice wins, then the mode with more (smaller) partitions.
4. Changes are chosen one after another, each judged on the layout the ones before it make.
5. A node is not changed again within ``cooldown_seconds`` of its last change. When a planned
   change may start (hysteresis) is ``hysteresis.decide``'s decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from decision import planning
from decision.eligibility import NodeFacts
from decision.pod_demand import read_pod_demand
from decision.requirement import Sizer
from partitioner import dcm
from partitioner.advisor import AdvisorNode, AdvisorOptions, advise
from partitioner.controller import keys
from partitioner.controller.machine import Phase, RepartitionState, Target
from partitioner.controller.observe import NodeView, PodView
from partitioner.controller.settings import Settings
from partitioner.errors import AdvisorInputError
from partitioner.modes import Mode, candidate_options, existing_option

# Profiles looked at in someone else's DCM ConfigMap: far more than anyone defines.
MAX_PROFILES: Final = 1024
# Pending pods planned for at once, oldest first: each is placed once per candidate in a
# simulation, so this bounds a pass (about 1 s for 50 on 100 nodes x 8 GPUs); the rest are
# planned for once these run.
MAX_PENDING: Final = 256
# Changes planned at most per evaluation: far more than max-in-flight ever allows at once.
MAX_CHANGES: Final = 16
# Taint effects that keep new pods off a node (a node with one is left out of the simulation).
_BLOCKING_EFFECTS: Final = frozenset({"NoSchedule", "NoExecute"})


@dataclass(frozen=True, slots=True)
class Change:
    node: str
    current: Mode
    target: Mode
    profile: str  # DCM profile name
    gpus: int
    partitions: int  # GPUs x partitions per GPU in the target mode (the plugin may show one fewer per GPU)
    unblocks: tuple[str, ...]  # pending pods (namespace/name) that can run after this change
    evicts: tuple[str, ...]  # GPU pods that must leave the node first (only with --allow-eviction)
    advised: bool  # the advisor's layout has this node in this mode

    @property
    def target_spec(self) -> Target:
        return Target(self.profile, self.target, self.partitions, self.current)

    def describe(self) -> str:
        moved = f", evicting {len(self.evicts)} pod(s) that can run elsewhere" if self.evicts else ""
        return (f"{self.node}: {self.current} -> {self.target} lets {len(self.unblocks)} pending pod(s) run "
                f"({', '.join(self.unblocks[:3])}{' ...' if len(self.unblocks) > 3 else ''}){moved}")

    def as_json(self) -> dict[str, Any]:
        return {"node": self.node, "current": str(self.current), "target": str(self.target),
                "profile": self.profile, "gpus": self.gpus, "partitions": self.partitions,
                "unblocks": list(self.unblocks), "evicts": list(self.evicts), "advised": self.advised}


@dataclass(frozen=True, slots=True)
class Plan:
    changes: tuple[Change, ...]  # in the order they would be made
    pending: tuple[str, ...]  # pods pending for a layout reason
    helpless: tuple[tuple[str, str], ...]  # (pod, why) for pending pods no allowed change lets run
    notes: tuple[str, ...] = ()  # why nodes were left out, what the advisor said

    def as_json(self) -> dict[str, Any]:
        return {"changes": [c.as_json() for c in self.changes], "pending": list(self.pending),
                "helpless": [{"pod": pod, "why": why} for pod, why in self.helpless], "notes": list(self.notes)}


@dataclass(frozen=True, slots=True)
class _SimNode:
    """A node as the simulation sees it whatever its mode: product, GPUs, labels and its mode now. Its
    partitions in one mode, while pods are placed, are a ``planning.NodeState`` (``_simulate``)."""

    name: str
    product: str
    mode: Mode
    gpus: int
    labels: Mapping[str, str]  # the node's labels other than our partition labels
    missing: int = 0  # partitions its GPUs lack in ``mode`` (63 of 64 CPX): never free


def _simulate(nodes: Sequence[_SimNode], modes: Mapping[str, Mode], used: Mapping[str, int],
              queue: Sequence[PodView]) -> set[str]:
    """The pods of ``queue`` the planner places, in order, on ``nodes`` (modes overridden by ``modes``)."""
    states: list[planning.NodeState] = []
    for node in nodes:
        mode = modes.get(node.name, node.mode)
        option = existing_option(node.product, mode)
        held = used.get(node.name, 0) + (node.missing if mode == node.mode else 0)
        states.append(planning.NodeState(node.name, (option.geometry,) * node.gpus, labels=node.labels, held=held))
    placed: set[str] = set()
    for pod in queue:
        if pod.workload is None:
            continue
        # simulated nodes are schedulable (blocked ones are left out): labels decide
        eligible = [s for s in states if pod.placement.admits(NodeFacts(s.name, s.labels()))]
        if eligible and isinstance(planning.place_one(eligible, pod.workload, policy=planning.Policy.BEST_FIT),
                                   planning.Placement):
            placed.add(pod.key)
    return placed


def changeable(node: NodeView, state: RepartitionState, now: float, settings: Settings) -> str | None:
    """Why the controller may not repartition this node now (None: it may)."""
    if not node.opted_in:
        return f"not opted in ({keys.OPT_IN_LABEL}={keys.OPT_IN_VALUE})"
    if state.phase is not Phase.IDLE:
        return f"repartition in progress ({state.phase})"
    if node.gpus is None or node.mode is None:
        return f"layout unreadable: {node.problem}"
    if node.unschedulable:
        return "cordoned by someone else"
    if any(t.effect in _BLOCKING_EFFECTS for t in node.taints):
        return "has a NoSchedule/NoExecute taint"
    if state.backoff_until is not None and now < state.backoff_until:
        return f"backing off after a failure for {state.backoff_until - now:.0f} s more"
    if state.last_change is not None and now - state.last_change < settings.cooldown_seconds:
        return f"changed {now - state.last_change:.0f} s ago (cooldown {settings.cooldown_seconds:.0f} s)"
    return None


def _sim_node(node: NodeView, state: RepartitionState) -> _SimNode | None:
    base = {k: v for k, v in node.labels.items() if not k.startswith("amd.com/gpu-partition.")}
    if state.phase is not Phase.IDLE and state.target is not None and node.partition_labels.product:
        try:  # a node in a repartition counts in its target mode: that is what it will offer
            option = existing_option(node.partition_labels.product, state.target.mode)
        except AdvisorInputError:
            return None
        if state.target.partitions % option.partitions == 0:
            return _SimNode(node.name, option.geometry.product, option.mode,
                            state.target.partitions // option.partitions, base)
        return None
    if node.gpus is None or node.mode is None or node.product is None or node.unschedulable:
        return None
    if any(t.effect in _BLOCKING_EFFECTS for t in node.taints):
        return None
    return _SimNode(node.name, node.product, node.mode, node.gpus, base, node.missing_partitions)


def gpu_holders(pods: Sequence[PodView]) -> dict[str, list[PodView]]:
    """The pods that hold GPU partitions (``PodView.holds_gpus``), by the node they are bound to."""
    holders: dict[str, list[PodView]] = {}
    for pod in pods:
        if pod.holds_gpus and pod.node is not None:
            holders.setdefault(pod.node, []).append(pod)
    return holders


def _free_partitions(nodes: Sequence[NodeView], used: Mapping[str, int]) -> dict[str, int]:
    """Each node's partitions not held by a pod bound to it (kubelet's allocatable, else the device
    plugin's count label, minus ``used``: what bound unfinished pods ask for): kube-scheduler's
    NodeResourcesFit accounting, less the pods it has assumed but not yet bound."""
    free = {}
    for node in nodes:
        have = node.allocatable if node.allocatable is not None else node.partition_labels.count
        if have is not None:
            free[node.name] = max(0, have - used.get(node.name, 0))
    return free


def _held_somewhere(pod: PodView, nodes: Sequence[NodeView], sizer: Sizer,
                    free: Mapping[str, int] | None) -> bool | None:
    """Whether a node the pod may run on (nodeSelector, required node affinity, taints it tolerates,
    not cordoned: kube-scheduler's node filters) has partitions that hold one rank of it (and, with
    ``free``, as many of them free as it asks for), by the decision core's requirement; None when
    the core cannot size it (then no layout can help)."""
    if pod.workload is None:
        return None
    requirement = sizer.requirement(read_pod_demand(pod.workload.to_pod()))
    if requirement.rejection is not None:
        return None
    for node in nodes:
        size = node.partition_labels.memory_bytes
        if size is None or not pod.placement.admits(node.facts):
            continue
        if requirement.required_bytes is not None and size < requirement.required_bytes:
            continue
        # A node whose partition count is unreadable counts as having room (as before the count).
        if free is None or free.get(node.name, requirement.partitions) >= requirement.partitions:
            return True
    return False


def layout_demand(nodes: Sequence[NodeView], pods: Sequence[PodView], used: Mapping[str, int]) -> list[PodView]:
    """The pods pending for a partition layout (see the module docstring, 1.): unschedulable, and
    no node they may run on has enough free partitions that hold them, or kube-scheduler found too
    few free partitions where some node's are big enough. ``used``: the partitions bound pods
    hold, by node (from ``gpu_holders``).

    Free partitions are counted, not read from the pod's message: the message is from the pod's
    last scheduling attempt, which can predate the node that now holds it by size being filled (a
    70B pod took the one SPX partition a 14B pod waits for, and kube-scheduler, which retries the
    14B pod only on a cluster event, still says "didn't match node affinity")."""
    sizer: Sizer | None = None
    free: dict[str, int] | None = None
    out = []
    for pod in pods:
        if not pod.pending_for_layout:
            continue
        sizer = sizer or Sizer()
        if pod.wants_more_partitions:  # big enough somewhere: more, smaller partitions may help
            if _held_somewhere(pod, nodes, sizer, None):
                out.append(pod)
            continue
        free = _free_partitions(nodes, used) if free is None else free
        if _held_somewhere(pod, nodes, sizer, free) is False:
            out.append(pod)
    return out


def _advised(sim: Sequence[_SimNode], allowed: set[str], pods: Sequence[PodView], pending: Sequence[PodView],
             settings: Settings) -> tuple[dict[str, Mode], str | None]:
    running = [p.workload for p in pods if p.holds_gpus and p.workload is not None]
    wanted = [p.workload for p in pending if p.workload is not None]
    nodes = [AdvisorNode(n.name, n.product, n.gpus, current=n.mode, repartition_allowed=n.name in allowed)
             for n in sim]
    try:
        advice = advise(nodes, [*running, *wanted], AdvisorOptions(trust=settings.trust), source="cluster")
    except AdvisorInputError as error:
        return {}, f"advisor: {error}"
    return {n.name: n.target for n in advice.nodes if n.changed}, None


def make_plan(nodes: Sequence[NodeView], pods: Sequence[PodView], states: Mapping[str, RepartitionState],
              now: float, settings: Settings) -> Plan:
    """The changes that pay now, in the order they would be made (see the module docstring)."""
    holders = gpu_holders(pods)
    used = {name: sum(p.partitions for p in held) for name, held in holders.items()}
    pending = sorted(layout_demand(nodes, pods, used),
                     key=lambda p: (p.created if p.created is not None else now, p.key))[:MAX_PENDING]
    if not pending:
        return Plan((), (), ())
    notes: list[str] = []
    sim: list[_SimNode] = []
    allowed: set[str] = set()
    by_name = {n.name: n for n in nodes}
    for node in nodes:
        state = states.get(node.name, RepartitionState())
        entry = _sim_node(node, state)
        if entry is not None:
            sim.append(entry)
        why = changeable(node, state, now, settings)
        if why is None and holders.get(node.name) and not settings.allow_eviction:
            why = "has GPU pods (--allow-eviction is off)"
        if why is None and entry is not None:
            allowed.add(node.name)
        elif node.opted_in and why is not None:
            notes.append(f"{node.name}: {why}")
    advised, problem = _advised(sim, allowed, pods, pending, settings) if allowed else ({}, None)
    if problem:
        notes.append(problem)

    modes: dict[str, Mode] = {}
    moved: list[PodView] = []  # pods of the changes chosen so far that must run elsewhere, placed first
    placed = _simulate(sim, modes, used, pending)
    changes: list[Change] = []
    open_nodes = {n.name: n for n in sim if n.name in allowed}
    while open_nodes and len(changes) < MAX_CHANGES and len(placed) < len(pending):
        best: tuple[tuple[Any, ...], Change] | None = None
        seen_classes: set[tuple[Any, ...]] = set()
        selectors = {k for p in pending for k, _ in p.placement.node_selector} | {
            r.key for p in pending for term in p.placement.affinity for r in term}
        for name in sorted(open_nodes, key=lambda n: (n not in advised, n)):
            node_ = open_nodes[name]
            busy = holders.get(name, [])
            if busy and not settings.allow_eviction:
                continue
            # Nodes alike for every pending pod give the same answer: try one of each kind.
            kind = (node_.product, node_.mode, node_.gpus, used.get(name, 0), node_.missing,
                    tuple(sorted((k, node_.labels.get(k)) for k in selectors)), name in advised)
            if kind in seen_classes and not busy:
                continue
            seen_classes.add(kind)
            for option in candidate_options(node_.product, node_.mode, settings.trust):
                if option.mode == node_.mode:
                    continue
                trial = {**modes, name: option.mode}
                leaving = [*moved, *busy]
                result = _simulate(sim, trial, {**used, name: 0} if busy else used, [*leaving, *pending])
                if not all(p.key in result for p in leaving):
                    continue  # the pods that must leave their nodes could not all run elsewhere
                gained = tuple(p.key for p in pending if p.key in result and p.key not in placed)
                if not gained or not {p.key for p in pending if p.key in placed} <= result:
                    continue  # helps nobody, or would leave out a pod the layout already places
                change = Change(name, node_.mode, option.mode, dcm.profile_name(option.mode, node_.gpus), node_.gpus,
                                node_.gpus * option.partitions, gained, tuple(p.key for p in busy),
                                advised.get(name) == option.mode)
                rank = (bool(busy), -len(gained), not change.advised, -option.partitions, name)
                if best is None or rank < best[0]:
                    best = (rank, change)
        if best is None:
            break
        change = best[1]
        changes.append(change)
        modes[change.node] = change.target
        if change.evicts:
            used = {**used, change.node: 0}
            moved = [*moved, *holders.get(change.node, [])]
        placed = _simulate(sim, modes, used, [*moved, *pending]) & {p.key for p in pending}
        del open_nodes[change.node]
    helpless = tuple((p.key, _why_not(p, by_name)) for p in pending if p.key not in placed)
    return Plan(tuple(changes), tuple(p.key for p in pending), helpless, tuple(notes))


def _why_not(pod: PodView, nodes: Mapping[str, NodeView]) -> str:
    if pod.workload is None:
        return f"cannot be sized: {pod.problem}"
    if not any(n.opted_in for n in nodes.values()):
        return f"no node is opted in ({keys.OPT_IN_LABEL}={keys.OPT_IN_VALUE})"
    return "no allowed change of an opted-in node lets it run now"


def dcm_profiles(nodes: Sequence[NodeView], states: Mapping[str, RepartitionState],
                 settings: Settings) -> dict[str, Any]:
    """The DCM ``config.json`` with a profile for every mode an opted-in node may be given (and any
    repartition in progress), so a profile exists before its label is set."""
    layouts: list[tuple[Mode, int]] = []
    for node in nodes:
        state = states.get(node.name, RepartitionState())
        if state.target is not None:
            in_flight = _sim_node(node, state)
            if in_flight is not None:
                layouts.append((state.target.mode, in_flight.gpus))
        if not node.opted_in or node.gpus is None or node.product is None:
            continue
        options = candidate_options(node.product, node.mode, settings.trust)
        layouts.extend((option.mode, node.gpus) for option in options)
        if node.mode is not None:
            layouts.append((node.mode, node.gpus))
    return dcm.config(layouts)


def matching_profile(profiles: Mapping[str, Any], mode: Mode, gpus: int) -> str | None:
    """The name of a profile in someone else's DCM ConfigMap that puts all ``gpus`` GPUs of a node in
    ``mode``: one entry with that compute and memory partition, ``numGPUsAssigned`` equal to the
    GPU count or left out (the GPU Operator's built-ins: "all"), no skipped GPUs. Our own name
    first; else the first such profile by name (e.g. the operator's ``cpx_nps4_all``)."""
    own = dcm.profile_name(mode, gpus)
    candidates = sorted(profiles, key=lambda name: (name != own, name))
    for name in candidates[:MAX_PROFILES]:
        body = profiles[name]
        if not isinstance(name, str) or not isinstance(body, Mapping):
            continue
        entries, skipped = body.get("profiles"), body.get("skippedGPUs")
        skipped_ids = skipped.get("ids") if isinstance(skipped, Mapping) else None
        if skipped_ids or not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], Mapping):
            continue
        entry = entries[0]
        count = entry.get("numGPUsAssigned")
        if (entry.get("computePartition") == mode.compute_mode and entry.get("memoryPartition") == mode.memory_mode
                and (count is None or (type(count) is int and count == gpus))):
            return name
    return None
