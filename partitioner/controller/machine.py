"""The per-node repartition state machine: a pure transition function from (state, observed node,
its GPU pods, now) to (next state, actions). The state lives on the node itself, in the
``aim.amd.com/repartition-*`` annotations, so a restarted controller resumes where it stopped.

Every step writes the next state in the same node patch as its effect (one PATCH with the node's
resourceVersion as precondition), so a crash either loses the whole step (it is redone) or none of
it. The transition table is in docs/partitioner-controller.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Final

from partitioner.controller import keys
from partitioner.controller.clock import format_time, parse_time
from partitioner.controller.observe import DCM_TAINT, NodeView, PodView
from partitioner.controller.settings import Settings
from partitioner.modes import Mode
from sizing.bounded import BoundedValueError, parse_count, shown

# Longest message kept in the condition annotation: a few readable sentences (a node's annotations
# share 256 KiB with everyone else's).
MAX_MESSAGE: Final = 512


class Phase(str, Enum):
    IDLE = "idle"  # no repartition running (no state annotation)
    DRAINING = "draining"  # cordoned; GPU pods leave (Eviction API, PDBs respected)
    TAINTED = "tainted"  # amd-dcm=up:NoExecute on; waiting until no GPU pod is left
    CONFIGURING = "configuring"  # DCM profile label set, state label cleared; waiting for DCM
    VERIFYING = "verifying"  # taint and cordon removed; waiting for the device plugin to advertise the target

    def __str__(self) -> str:
        return self.value


class Outcome(str, Enum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Target:
    """What a repartition is for: the DCM profile and the mode and partition count it gives."""

    profile: str
    mode: Mode
    partitions: int  # the device plugin's partition count afterwards (GPUs x partitions per GPU)
    from_mode: Mode | None = None


@dataclass(frozen=True, slots=True)
class RepartitionState:
    """A node's state as its annotations hold it."""

    phase: Phase = Phase.IDLE
    target: Target | None = None
    started: float | None = None
    since: float | None = None
    was_cordoned: bool = False
    last_change: float | None = None
    backoff_until: float | None = None

    def annotations(self) -> dict[str, str | None]:
        """The annotation values of this state (None removes a key)."""
        idle = self.phase is Phase.IDLE or self.target is None
        values: dict[str, str | None] = {key: None for key in keys.STATE_KEYS}
        if not idle and self.target is not None:
            values.update({
                keys.STATE: self.phase.value,
                keys.TARGET_PROFILE: self.target.profile,
                keys.TARGET_MODE: str(self.target.mode),
                keys.FROM_MODE: str(self.target.from_mode) if self.target.from_mode else None,
                keys.EXPECTED_PARTITIONS: str(self.target.partitions),
                keys.STARTED: format_time(self.started) if self.started is not None else None,
                keys.SINCE: format_time(self.since) if self.since is not None else None,
                keys.WAS_CORDONED: "true" if self.was_cordoned else "false",
            })
        values[keys.LAST_CHANGE] = format_time(self.last_change) if self.last_change is not None else None
        values[keys.BACKOFF_UNTIL] = format_time(self.backoff_until) if self.backoff_until is not None else None
        return values


class StateError(ValueError):
    """A state annotation that cannot be read; the message names it."""


def _mode(field_: str, raw: str) -> Mode:
    compute, slash, memory = raw.partition("/")
    if not slash or not compute.isalnum() or not memory.isalnum() or len(raw) > 16:
        raise StateError(f"annotation {field_}={shown(raw)}: is not a mode like SPX/NPS1")
    return Mode(compute, memory)


def _time(annotations: Mapping[str, str], key: str) -> float | None:
    raw = annotations.get(key)
    if raw is None:
        return None
    try:
        return parse_time(f"annotation {key}", raw)
    except BoundedValueError as error:
        raise StateError(str(error)) from None


def read_state(annotations: Mapping[str, str]) -> RepartitionState:
    """The state from a node's annotations; StateError naming the first unreadable one."""
    last_change = _time(annotations, keys.LAST_CHANGE)
    backoff_until = _time(annotations, keys.BACKOFF_UNTIL)
    raw_phase = annotations.get(keys.STATE)
    if raw_phase is None:
        return RepartitionState(last_change=last_change, backoff_until=backoff_until)
    try:
        phase = Phase(raw_phase)
    except ValueError:
        raise StateError(f"annotation {keys.STATE}={shown(raw_phase)}: is not one of "
                          f"{', '.join(p.value for p in Phase)}") from None
    profile = annotations.get(keys.TARGET_PROFILE, "")
    if not profile or len(profile) > 63:
        raise StateError(f"annotation {keys.TARGET_PROFILE}={shown(profile)}: missing or too long")
    try:
        partitions = parse_count(f"annotation {keys.EXPECTED_PARTITIONS}", annotations.get(keys.EXPECTED_PARTITIONS),
                                 minimum=1)
    except BoundedValueError as error:
        raise StateError(str(error)) from None
    mode = _mode(keys.TARGET_MODE, annotations.get(keys.TARGET_MODE, ""))
    raw_from = annotations.get(keys.FROM_MODE)
    from_mode = _mode(keys.FROM_MODE, raw_from) if raw_from else None
    was_cordoned = annotations.get(keys.WAS_CORDONED)
    if was_cordoned not in ("true", "false"):
        raise StateError(f"annotation {keys.WAS_CORDONED}={shown(was_cordoned)}: is not true or false")
    if phase is Phase.IDLE:
        raise StateError(f"annotation {keys.STATE}=idle is never written; remove it")
    return RepartitionState(
        phase=phase, target=Target(profile, mode, partitions, from_mode),
        started=_time(annotations, keys.STARTED), since=_time(annotations, keys.SINCE),
        was_cordoned=was_cordoned == "true", last_change=last_change, backoff_until=backoff_until,
    )


# --- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodePatch:
    """Changes to one node, sent as one patch with its resourceVersion as precondition."""

    unschedulable: bool | None = None  # None: leave as is
    dcm_taint: bool | None = None  # True: add amd-dcm=up:NoExecute; False: remove it; None: leave
    labels: Mapping[str, str | None] = field(default_factory=dict)  # None removes a label
    annotations: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Evict:
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class NodeEvent:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Transition:
    state: RepartitionState
    patch: NodePatch | None = None
    evictions: tuple[Evict, ...] = ()
    events: tuple[NodeEvent, ...] = ()
    outcome: Outcome | None = None
    log: str | None = None  # a line for the person on call; None when nothing happened


def condition(status: str, reason: str, message: str, now: float) -> str:
    """The condition-like annotation value (JSON, like a status condition)."""
    return json.dumps({"type": "Repartitioned", "status": status, "reason": reason,
                       "message": message[:MAX_MESSAGE], "lastTransitionTime": format_time(now)},
                      separators=(",", ":"))


def start(node: NodeView, target: Target, now: float, why: str) -> Transition:
    """Begin: cordon the node and record the target (one patch)."""
    state = RepartitionState(Phase.DRAINING, target, started=now, since=now, was_cordoned=node.unschedulable,
                             last_change=None, backoff_until=None)
    text = f"repartitioning {target.from_mode or 'unknown'} -> {target.mode} (DCM profile {target.profile}): {why}"
    return Transition(
        state, NodePatch(unschedulable=True, annotations={**state.annotations(), keys.CONDITION: condition(
            "False", "InProgress", text, now)}),
        events=(NodeEvent("Normal", "RepartitionStarted", text),), outcome=Outcome.STARTED,
        log=f"node {node.name}: {text}; cordoned",
    )


def fail(node: NodeView, state: RepartitionState, reason: str, message: str, now: float, settings: Settings,
         *, uncordon: bool = True) -> Transition:
    """Undo taint and cordon (unless someone else had cordoned it), record why, back off the node."""
    target = state.target
    what = f"repartition to {target.mode} failed" if target else "repartition failed"
    text = f"{what}: {message}; taint and cordon removed, no new attempt before" \
           f" {format_time(now + settings.backoff_seconds)}"
    after = RepartitionState(backoff_until=now + settings.backoff_seconds)  # last-change: successes only
    cordon = False if uncordon and not state.was_cordoned else None
    patch = NodePatch(unschedulable=cordon, dcm_taint=False, annotations={
        **after.annotations(), keys.CONDITION: condition("False", reason, text, now)})
    return Transition(after, patch, events=(NodeEvent("Warning", reason, text),), outcome=Outcome.FAILED,
                      log=f"node {node.name}: {text}")


def _elapsed(state: RepartitionState, now: float) -> float:
    return now - state.since if state.since is not None else 0.0


def _pods_text(pods: Sequence[PodView]) -> str:
    names = ", ".join(p.key for p in pods[:3])
    return names + (f" and {len(pods) - 3} more" if len(pods) > 3 else "")


def step(node: NodeView, state: RepartitionState, gpu_pods: Sequence[PodView], now: float,
         settings: Settings) -> Transition:
    """The next state and actions of a node in a repartition (``state.phase`` is not IDLE).

    ``gpu_pods``: the pods bound to the node that hold GPU partitions (unfinished).
    """
    target = state.target
    if state.phase is Phase.IDLE or target is None:
        return Transition(state)
    if not node.opted_in and state.phase in (Phase.DRAINING, Phase.TAINTED):
        return fail(node, state, "RepartitionAborted",
                    f"the node lost its opt-in label {keys.OPT_IN_LABEL}={keys.OPT_IN_VALUE}", now, settings)
    elapsed = _elapsed(state, now)

    if state.phase is Phase.DRAINING:
        if not gpu_pods:
            nxt = replace(state, phase=Phase.TAINTED, since=now)
            return Transition(nxt, NodePatch(unschedulable=True, dcm_taint=True, annotations=nxt.annotations()),
                              log=f"node {node.name}: no GPU pods left; tainted "
                                  f"{keys.DCM_TAINT_KEY}={keys.DCM_TAINT_VALUE}:{keys.DCM_TAINT_EFFECT}")
        if elapsed >= settings.drain_timeout_seconds:
            return fail(node, state, "DrainTimeout", f"GPU pods still on the node after {elapsed:.0f} s: "
                        f"{_pods_text(gpu_pods)}", now, settings)
        staying = [p for p in gpu_pods if not p.deleting]
        if not settings.allow_eviction and staying:
            return fail(node, state, "RepartitionAborted",
                        f"GPU pods were bound to the node before it was cordoned ({_pods_text(staying)}) and"
                        " --allow-eviction is off", now, settings)
        ensure = NodePatch(unschedulable=True) if not node.unschedulable else None
        return Transition(state, ensure, evictions=tuple(Evict(p.namespace, p.name) for p in staying),
                          log=f"node {node.name}: draining, {len(gpu_pods)} GPU pod(s) left "
                              f"({_pods_text(gpu_pods)})" if staying else None)

    if state.phase is Phase.TAINTED:
        if not gpu_pods:
            nxt = replace(state, phase=Phase.CONFIGURING, since=now)
            return Transition(nxt, NodePatch(
                unschedulable=True, dcm_taint=True,
                labels={keys.DCM_PROFILE_LABEL: target.profile, keys.DCM_STATE_LABEL: None},
                annotations=nxt.annotations()),
                log=f"node {node.name}: drained; set {keys.DCM_PROFILE_LABEL}={target.profile}, waiting for DCM")
        if elapsed >= settings.drain_timeout_seconds:
            return fail(node, state, "DrainTimeout", f"GPU pods still on the tainted node after {elapsed:.0f} s: "
                        f"{_pods_text(gpu_pods)}", now, settings)
        ensure = None if node.has_dcm_taint and node.unschedulable else NodePatch(unschedulable=True, dcm_taint=True)
        return Transition(state, ensure)

    if state.phase is Phase.CONFIGURING:
        if node.dcm_profile != target.profile:
            return fail(node, state, "ProfileChanged", f"the label {keys.DCM_PROFILE_LABEL} was changed to "
                        f"{shown(node.dcm_profile)} by someone else while DCM worked", now, settings)
        if node.dcm_state == keys.DCM_FAILURE:
            return fail(node, state, "PartitionFailure", f"DCM reported {keys.DCM_STATE_LABEL}=failure for "
                        f"profile {target.profile} (see the DCM pod's events)", now, settings)
        if node.dcm_state == keys.DCM_SUCCESS:
            nxt = replace(state, phase=Phase.VERIFYING, since=now)
            return Transition(nxt, NodePatch(unschedulable=None if state.was_cordoned else False, dcm_taint=False,
                                             annotations=nxt.annotations()),
                              log=f"node {node.name}: DCM applied {target.profile}; taint removed"
                                  f"{'' if state.was_cordoned else ', uncordoned'}; waiting for the device plugin"
                                  f" to advertise {target.partitions} {target.mode} partitions")
        if elapsed >= settings.dcm_timeout_seconds:
            return fail(node, state, "DCMTimeout", f"DCM did not report {keys.DCM_STATE_LABEL} within "
                        f"{settings.dcm_timeout_seconds:.0f} s", now, settings)
        ensure = None if node.has_dcm_taint and node.unschedulable else NodePatch(unschedulable=True, dcm_taint=True)
        return Transition(state, ensure)

    # VERIFYING
    if node.advertises(target.mode, target.partitions):
        done = RepartitionState(last_change=now)
        took = f" in {now - state.started:.0f} s" if state.started is not None else ""
        text = f"repartitioned to {target.mode} ({target.partitions} partitions advertised){took}"
        return Transition(done, NodePatch(annotations={**done.annotations(), keys.CONDITION: condition(
            "True", "Repartitioned", text, now)}), events=(NodeEvent("Normal", "Repartitioned", text),),
            outcome=Outcome.SUCCEEDED, log=f"node {node.name}: {text}")
    if elapsed >= settings.advertise_timeout_seconds:
        seen = node.partition_labels
        return fail(node, state, "AdvertiseTimeout", (
            f"DCM applied {target.profile} but after {elapsed:.0f} s the device plugin advertises "
            f"{seen.count} {seen.compute_mode}/{seen.memory_mode} partitions (allocatable {node.allocatable}), "
            f"not {target.partitions} {target.mode} (stale allocatable: ROCm/gpu-operator#420)"), now, settings)
    return Transition(state)


def bad_state(node: NodeView, error: StateError, now: float, settings: Settings) -> Transition:
    """A node whose state annotations cannot be read. Idle (no phase): the unreadable times are
    replaced by a backoff. In a repartition: remove our taint, leave the cordon (we do not know
    whether someone else set it), record why and back off."""
    if keys.STATE not in node.annotations:
        after = RepartitionState(backoff_until=now + settings.backoff_seconds)
        text = f"unreadable repartition annotation ({error}); replaced, no attempt before " \
               f"{format_time(now + settings.backoff_seconds)}"
        return Transition(after, NodePatch(annotations=after.annotations()),
                          events=(NodeEvent("Warning", "BadState", text),), log=f"node {node.name}: {text}")
    broken = RepartitionState(was_cordoned=True)
    return fail(node, broken, "BadState", f"unreadable state ({error}); the node is left cordoned for a person"
                " to check", now, settings, uncordon=False)


def patch_body(node: NodeView, patch: NodePatch) -> dict[str, object]:
    """The merge patch for ``patch`` on ``node``: taints are a list the API replaces whole, so the
    node's other taints are kept as read; the resourceVersion makes the API refuse (409) a patch
    on a node that changed since it was read."""
    metadata: dict[str, object] = {"resourceVersion": node.resource_version} if node.resource_version else {}
    if patch.labels:
        metadata["labels"] = dict(patch.labels)
    if patch.annotations:
        metadata["annotations"] = dict(patch.annotations)
    spec: dict[str, object] = {}
    if patch.unschedulable is not None:
        spec["unschedulable"] = patch.unschedulable or None
    if patch.dcm_taint is not None:
        others = [dict(raw) for raw, taint in zip(node.taints_raw, node.taints, strict=True)
                  if not (taint.key == keys.DCM_TAINT_KEY and taint.effect == keys.DCM_TAINT_EFFECT)]
        if patch.dcm_taint:
            others.append(DCM_TAINT.as_json())
        spec["taints"] = others or None
    body: dict[str, object] = {"metadata": metadata}
    if spec:
        body["spec"] = spec
    return body
