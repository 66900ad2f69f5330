"""The control loop: on every watch change (and every resync) read the cache, move each node in a
repartition one step (``machine.step``), plan (``plan.make_plan``) and either record the plan as
Events (recommend) or start the changes that are ready (apply). Effects go through ``kube.Kube``."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Final

from partitioner.controller import keys
from partitioner.controller.clock import format_time
from partitioner.controller.hysteresis import Candidacy, decide
from partitioner.controller.kube import EvictionResult, Kube
from partitioner.controller.machine import (
    Phase,
    RepartitionState,
    StateError,
    Transition,
    bad_state,
    read_state,
    start,
    step,
)
from partitioner.controller.metrics import Metrics
from partitioner.controller.observe import NodeView, PodView
from partitioner.controller.plan import Change, Plan, dcm_profiles, gpu_holders, make_plan, matching_profile
from partitioner.controller.profiles import DcmConfig, ProfileKeeper
from partitioner.controller.settings import RunMode, Settings
from partitioner.controller.watch import short

logger = logging.getLogger(__name__)

# Events already recorded (object, reason, message), so a plan that stays the same is not
# announced again on every pass; old entries are forgotten first.
MAX_REMEMBERED_EVENTS: Final = 4096
# Pods followed from pending to bound (for the unblocked metrics).
MAX_FOLLOWED_PODS: Final = 16384
# A pass is a few API calls of milliseconds; one this long is worth a line in the log (each call
# may take up to kube.TIMEOUT's 30 s before it counts as failed).
SLOW_PASS_SECONDS: Final = 5.0


class Controller:
    def __init__(self, kube: Kube, cache_snapshot: Callable[[], tuple[list[NodeView], list[PodView]]],
                 live: Callable[[], bool], settings: Settings, metrics: Metrics, dcm: DcmConfig,
                 clock: Callable[[], float] = time.time) -> None:
        self._kube = kube
        self._snapshot = cache_snapshot
        self._live = live
        self._settings = settings
        self._metrics = metrics
        self._dcm = dcm
        self._clock = clock
        self._memory: dict[str, Candidacy] = {}
        self._said: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._profiles = ProfileKeeper(kube, dcm, settings.configmap_settle_seconds, self._first)
        self._due: float | None = None  # when a waiting change may be ready, by the clock alone
        self._tracked: dict[str, NodeView] = {}  # nodes in a repartition at the last pass
        self._pending: dict[str, float] = {}  # pod uid -> its creation time, while pending for layout
        self._last_plan = ""
        self._waiting_logged = False

    # --- one pass ----------------------------------------------------------------------------
    def tick(self) -> Plan | None:
        if not self._live():
            if not self._waiting_logged:
                logger.info("waiting for the first node and pod lists before deciding anything")
                self._waiting_logged = True
            return None
        nodes, pods = self._snapshot()
        now = self._clock()
        apply = self._settings.mode is RunMode.APPLY
        states = self._states(nodes, now, apply)
        if apply:  # ahead of any change: applying one is then only the node label
            self._profiles.keep(dcm_profiles(nodes, states, self._settings)["gpu-config-profiles"], now)
        self._vanished({n.name for n in nodes}, now)
        holders = gpu_holders(pods)
        for node in nodes:
            state = states[node.name]
            if state.phase is Phase.IDLE:
                continue
            if apply:
                transition = step(node, state, holders.get(node.name, []), now, self._settings)
                if self._run(node, transition):
                    states[node.name] = transition.state
            else:
                if self._first(("node", node.name, "recommend-in-flight")):
                    logger.warning("node %s is in a repartition (%s) that --mode recommend does not continue; run"
                                   " --mode apply, or remove its %s annotation, taint and cordon by hand", node.name,
                                   state.phase, keys.STATE)
        self._tracked = {n.name: n for n in nodes if states[n.name].phase is not Phase.IDLE}
        # From here on ``states`` holds each node's state after this pass's step.
        plan = make_plan(nodes, pods, states, now, self._settings)
        # Only the partition demand (plan.pending: the decision core's verdict, not a pod waiting
        # for CPU or memory alone) is followed for the metrics and counts for the hysteresis.
        demand = frozenset(plan.pending)
        self._follow_pods(pods, demand, states)
        pending_since = {p.key: p.created for p in pods if p.key in demand and p.created is not None}
        decision = decide(plan.changes, self._memory, pending_since, now, self._settings.stable_seconds)
        self._memory, self._due = decision.memory, decision.due
        self._record(nodes, states, plan, now)
        if apply:
            self._apply(plan, decision.ready, nodes, pods, states, now)
        else:
            self._recommend(plan, nodes, pods)
        return plan

    def run(self, stop: threading.Event, changed: threading.Event, resync_seconds: float,
            min_interval_seconds: float) -> None:
        """Evaluate on every change (at most every ``min_interval_seconds``), every ``resync_seconds``,
        and when a waiting change becomes ready by the clock (hysteresis, ConfigMap settle)."""
        logger.info("controller running in --mode %s (max %d node(s) at a time%s)", self._settings.mode,
                    self._settings.max_in_flight, ", evictions allowed" if self._settings.allow_eviction else "")
        while not stop.is_set():
            changed.clear()
            began = time.monotonic()
            try:
                self.tick()
            except Exception as error:  # the loop outlives any one bad pass
                logger.error("evaluation failed (%s); will retry in %.0f s", short(error), resync_seconds)
                logger.debug("evaluation failure", exc_info=True)
                self._due = None
            took = time.monotonic() - began
            if took >= SLOW_PASS_SECONDS:
                logger.warning("one evaluation took %.1f s (normally milliseconds): the API server answers slowly"
                               " or this process is starved of CPU; nothing was decided in between", took)
            stop.wait(min_interval_seconds)  # the least time between two passes
            changed.wait(self.wait_seconds(max(0.0, resync_seconds - min_interval_seconds)))

    def wait_seconds(self, longest: float) -> float:
        """How long to wait for a watch event before the next pass: ``longest`` (until the next
        resync), or less when a waiting change is due sooner."""
        if self._due is None:
            return longest
        return min(longest, max(0.0, self._due - self._clock()))

    # --- state ---------------------------------------------------------------------------------
    def _states(self, nodes: Sequence[NodeView], now: float, apply: bool) -> dict[str, RepartitionState]:
        states: dict[str, RepartitionState] = {}
        for node in nodes:
            try:
                states[node.name] = read_state(node.annotations)
            except StateError as error:
                if apply:
                    transition = bad_state(node, error, now, self._settings)
                    self._run(node, transition)
                    states[node.name] = transition.state
                else:
                    logger.warning("node %s: %s", node.name, error)
                    states[node.name] = RepartitionState(backoff_until=now + self._settings.backoff_seconds)
        return states

    def _vanished(self, names: set[str], now: float) -> None:
        for name, node in list(self._tracked.items()):
            if name in names:
                continue
            target = node.annotations.get(keys.TARGET_MODE, "?")
            text = f"node {name} was deleted during its repartition to {target}; nothing left to undo"
            logger.warning(text)
            self._kube.node_event(name, node.uid, "Warning", "NodeVanished", text)
            self._metrics.repartitions.labels(result="failed").inc()
            del self._tracked[name]

    def _run(self, node: NodeView, transition: Transition) -> bool:
        for eviction in transition.evictions:
            result = self._kube.evict(eviction.namespace, eviction.name)
            if result is EvictionResult.EVICTED:
                logger.info("node %s: evicted pod %s/%s", node.name, eviction.namespace, eviction.name)
            elif result is EvictionResult.BLOCKED:
                logger.info("node %s: eviction of pod %s/%s is not allowed now by a PodDisruptionBudget (HTTP 429);"
                            " will retry", node.name, eviction.namespace, eviction.name)
        if transition.patch is not None and not self._kube.patch_node(node, transition.patch):
            return False
        for event in transition.events:
            self._kube.node_event(node.name, node.uid, event.type, event.reason, event.message)
        if transition.outcome is not None:
            self._metrics.repartitions.labels(result=transition.outcome.value).inc()
        if transition.log:
            (logger.warning if transition.outcome is not None and transition.outcome.value == "failed"
             else logger.info)(transition.log)
        return True

    # --- metrics -------------------------------------------------------------------------------
    def _follow_pods(self, pods: Sequence[PodView], demand: frozenset[str],
                     states: Mapping[str, RepartitionState]) -> None:
        """Pods of the partition demand (``demand``: their keys) followed until bound: bound on a node
        that changed for them, they count as unblocked."""
        present = set()
        for pod in pods:
            present.add(pod.uid)
            if pod.key in demand and pod.uid not in self._pending and len(self._pending) < MAX_FOLLOWED_PODS:
                self._pending[pod.uid] = pod.created if pod.created is not None else self._clock()
            elif pod.node is not None and pod.uid in self._pending:
                created = self._pending.pop(pod.uid)
                state = states.get(pod.node)
                # bound while its node is verified (the device plugin's labels come before kubelet's
                # allocatable), or the node changed after the pod was created (annotation times are
                # whole seconds)
                if state is not None and (state.phase is Phase.VERIFYING or (
                        state.last_change is not None and state.last_change >= created - 1)):
                    self._metrics.pods_unblocked.inc()
                    self._metrics.unblock_seconds.observe(max(0.0, self._clock() - created))
                    logger.info("pod %s runs on %s after its repartition (%.0f s after it was created)", pod.key,
                                pod.node, self._clock() - created)
        for uid in [u for u in self._pending if u not in present]:
            del self._pending[uid]

    def _record(self, nodes: Sequence[NodeView], states: Mapping[str, RepartitionState], plan: Plan,
                now: float) -> None:
        counts: dict[str, int] = {}
        for node in nodes:
            if node.mode is None and node.partition_labels.count is None and node.name not in self._tracked:
                continue  # not a GPU node of ours
            state = states[node.name]
            if state.phase is not Phase.IDLE:
                name = state.phase.value
            elif not node.opted_in:
                name = "opted_out"
            elif state.backoff_until is not None and now < state.backoff_until:
                name = "backoff"
            elif state.last_change is not None and now - state.last_change < self._settings.cooldown_seconds:
                name = "cooldown"
            else:
                name = "idle"
            counts[name] = counts.get(name, 0) + 1
        self._metrics.set_nodes(counts)
        self._metrics.pending.set(len(plan.pending))
        self._metrics.planned.set(len(plan.changes))
        text = json.dumps({**plan.as_json(), "notes": None}, sort_keys=True)  # notes carry ages in seconds
        if text != self._last_plan:
            self._last_plan = text
            if plan.changes:
                logger.info("plan (%s): %s", self._settings.mode, "; ".join(c.describe() for c in plan.changes))
            elif plan.helpless:
                logger.info("plan: %d pod(s) pending for a partition layout that no change of an opted-in node lets"
                            " run now (%s)%s", len(plan.helpless),
                            "; ".join(f"{p}: {why}" for p, why in plan.helpless[:3]),
                            f"; nodes left out: {'; '.join(plan.notes[:5])}" if plan.notes else "")
            elif plan.pending:
                logger.info("plan: %d pod(s) pending for a partition layout fit the layout as it is or will be after"
                            " the repartitions in progress; waiting for the scheduler", len(plan.pending))
            else:
                logger.info("plan: no pod is pending for a partition layout; nothing to change")

    # --- events --------------------------------------------------------------------------------
    def _first(self, key: tuple[str, str, str]) -> bool:
        """True the first time ``key`` is seen (recently): say it; False: already said."""
        if key in self._said:
            self._said.move_to_end(key)
            return False
        self._said[key] = None
        while len(self._said) > MAX_REMEMBERED_EVENTS:
            self._said.popitem(last=False)
        return True

    def _pod_event(self, pod: PodView | None, type_: str, reason: str, message: str) -> None:
        if pod is not None and self._first((pod.uid, reason, message)):
            self._kube.pod_event(pod, type_, reason, message)

    def _recommend(self, plan: Plan, nodes: Sequence[NodeView], pods: Sequence[PodView]) -> None:
        by_key = {p.key: p for p in pods}
        by_name = {n.name: n for n in nodes}
        for change in plan.changes:
            node = by_name.get(change.node)
            text = f"recommended: {change.describe()}; --mode recommend changes nothing"
            if node is not None and self._first((node.uid, "RepartitionRecommended", text)):
                self._kube.node_event(node.name, node.uid, "Normal", "RepartitionRecommended", text)
            for key in change.unblocks:
                self._pod_event(by_key.get(key), "Normal", "RepartitionRecommended",
                                f"repartitioning node {change.node} {change.current} -> {change.target} would let"
                                " this pod run; the controller runs in --mode recommend and changes nothing")
        self._helpless(plan, by_key)

    def _helpless(self, plan: Plan, by_key: Mapping[str, PodView]) -> None:
        for key, why in plan.helpless:
            self._pod_event(by_key.get(key), "Normal", "NoRepartitionHelps", f"no repartition planned: {why}")

    # --- apply ---------------------------------------------------------------------------------
    def _apply(self, plan: Plan, ready: Sequence[Change], nodes: Sequence[NodeView], pods: Sequence[PodView],
               states: Mapping[str, RepartitionState], now: float) -> None:
        by_key = {p.key: p for p in pods}
        self._helpless(plan, by_key)
        in_flight = sorted(name for name, s in states.items() if s.phase is not Phase.IDLE)
        slots = self._settings.max_in_flight - len(in_flight)
        if ready and slots <= 0:
            self._wait_for_slot(ready[0], in_flight)
        if slots <= 0 or not ready:
            return
        usable = self._profiles.usable(now)
        by_name = {n.name: n for n in nodes}
        for change in ready[:slots]:
            if self._dcm.existing and change.profile not in usable:
                found = matching_profile(usable, change.target, change.gpus)
                change = replace(change, profile=found) if found else change
            if change.profile not in usable:
                self._wait_for_profile(change)
                break
            node = by_name[change.node]
            if self._run(node, start(node, change.target_spec, now, change.describe())):
                self._memory.pop(change.node, None)
                self._tracked[node.name] = node
                for key in change.unblocks:
                    self._pod_event(by_key.get(key), "Normal", "RepartitionStarted",
                                    f"node {change.node} is being repartitioned {change.current} -> {change.target}"
                                    " so that this pod can run")

    def _wait_for_slot(self, change: Change, in_flight: Sequence[str]) -> None:
        if self._first(("slot", change.node, change.profile)):
            logger.info("node %s waits to be repartitioned to %s: %d repartition(s) in progress (%s), at most"
                        " %d at a time (--max-in-flight)", change.node, change.target, len(in_flight),
                        ", ".join(in_flight[:3]) + (" ..." if len(in_flight) > 3 else ""),
                        self._settings.max_in_flight)

    def _wait_for_profile(self, change: Change) -> None:
        where = f"ConfigMap {self._dcm.namespace}/{self._dcm.name}"
        usable_from = None if self._dcm.existing else self._profiles.usable_from(change.profile)
        if usable_from is not None:
            self._due = usable_from if self._due is None else min(self._due, usable_from)
        if not self._first(("configmap", change.profile, str(usable_from))):
            return
        if usable_from is None:
            logger.info("node %s waits for DCM profile %s to be in %s", change.node, change.profile, where)
        else:
            logger.info("node %s waits until %s for DCM to see profile %s in %s (--configmap-settle-seconds=%.0f"
                        " after it was written)", change.node, format_time(usable_from), change.profile, where,
                        self._settings.configmap_settle_seconds)
