"""The per-node state machine as a pure function: every transition of the table in
docs/partitioner-controller.md, driven through the node JSON the API server would hold (patches
applied with merge-patch semantics), plus unreadable state annotations."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from partitioner.controller import keys
from partitioner.controller.machine import (
    NodePatch,
    Outcome,
    Phase,
    RepartitionState,
    StateError,
    Target,
    bad_state,
    patch_body,
    read_state,
    start,
    step,
)
from partitioner.controller.observe import NodeView, PodView, read_node, read_pod
from partitioner.controller.settings import Settings
from partitioner.modes import Mode
from sizing.contract import RESOURCE_NAME
from tests.partitioner_controller import objects

NOW = 1_800_000_000.0
SETTINGS = Settings(drain_timeout_seconds=60, dcm_timeout_seconds=120, advertise_timeout_seconds=30,
                    backoff_seconds=600)
SPX = Target("spx_nps1_1gpu", Mode("SPX", "NPS1"), 1, Mode("CPX", "NPS4"))


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class Node:
    """A node object that takes the machine's patches like the API server (merge patch)."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj

    @property
    def view(self) -> NodeView:
        view = read_node(self.obj)
        assert view is not None
        return view

    @property
    def state(self) -> RepartitionState:
        return read_state(self.view.annotations)

    def phase(self) -> Phase:  # a method: mypy does not narrow a call's result across steps
        return self.state.phase

    def apply(self, patch: NodePatch | None) -> None:
        if patch is not None:
            body: dict[str, Any] = patch_body(self.view, patch)
            body["metadata"].pop("resourceVersion", None)
            _merge(self.obj, body)

    def advance(self, now: float, pods: list[PodView] | None = None, settings: Settings = SETTINGS) -> Any:
        transition = step(self.view, self.state, pods or [], now, settings)
        self.apply(transition.patch)
        return transition

    def dcm(self, **labels: str | None) -> None:
        _merge(self.obj, {"metadata": {"labels": labels}})

    def advertise_spx(self) -> None:
        _merge(self.obj, {"metadata": {"labels": objects.partition_labels("MI300X", "SPX", "NPS1", 1)},
                          "status": {"allocatable": {RESOURCE_NAME: "1"}}})

    @property
    def tainted(self) -> bool:
        return any(t["key"] == keys.DCM_TAINT_KEY for t in self.obj["spec"].get("taints") or [])

    @property
    def cordoned(self) -> bool:
        return bool(self.obj["spec"].get("unschedulable"))


def _begin(**kwargs: Any) -> Node:
    node = Node(objects.node("n1", **kwargs))
    transition = start(node.view, SPX, NOW, "a pending pod")
    node.apply(transition.patch)
    assert transition.outcome is Outcome.STARTED and node.cordoned and not node.tainted
    assert node.phase() is Phase.DRAINING and node.state.target == SPX
    return node


def _gpu_pod(name: str = "p", deleting: bool = False) -> PodView:
    view = read_pod(objects.pod(name, objects.LLAMA_8B, node_name="n1", deleting=deleting))
    assert view is not None
    return view


def test_the_happy_path_walks_every_phase_and_ends_clean() -> None:
    node = _begin()
    node.advance(NOW + 1)
    assert node.phase() is Phase.TAINTED and node.tainted and node.cordoned
    node.advance(NOW + 2)
    assert node.phase() is Phase.CONFIGURING
    assert node.view.dcm_profile == "spx_nps1_1gpu" and node.view.dcm_state is None
    assert node.advance(NOW + 3).patch is None, "waiting for DCM changes nothing"
    node.dcm(**{keys.DCM_STATE_LABEL: "success"})
    node.advance(NOW + 4)
    assert node.phase() is Phase.VERIFYING and not node.tainted and not node.cordoned
    assert node.advance(NOW + 5).outcome is None, "the old partitions are still advertised"
    node.advertise_spx()
    done = node.advance(NOW + 6)
    assert done.outcome is Outcome.SUCCEEDED and [e.reason for e in done.events] == ["Repartitioned"]
    assert node.state == RepartitionState(last_change=NOW + 6)
    assert not any(k in node.obj["metadata"]["annotations"] for k in keys.STATE_KEYS)
    assert '"status":"True"' in node.obj["metadata"]["annotations"][keys.CONDITION]


def test_a_node_someone_else_cordoned_stays_cordoned() -> None:
    node = _begin(unschedulable=True)
    assert node.state.was_cordoned
    for at in (1, 2):
        node.advance(NOW + at)
    node.dcm(**{keys.DCM_STATE_LABEL: "success"})
    node.advance(NOW + 3)
    assert node.cordoned and not node.tainted


def test_other_taints_are_kept() -> None:
    other = {"key": "dedicated", "value": "llm", "effect": "NoSchedule"}
    node = _begin(taints=[other])
    node.advance(NOW + 1)
    assert node.obj["spec"]["taints"][0] == other and node.tainted
    node.advance(NOW + 2)
    node.dcm(**{keys.DCM_STATE_LABEL: "success"})
    node.advance(NOW + 3)
    assert node.obj["spec"]["taints"] == [other]


@pytest.mark.parametrize(("answer", "at", "reason"), [("failure", 5, "PartitionFailure"),
                                                       (None, 2 + 120, "DCMTimeout")])
def test_dcm_failure_or_timeout_undoes_taint_and_cordon(answer: str | None, at: float, reason: str) -> None:
    node = _begin()
    node.advance(NOW + 1)
    node.advance(NOW + 2)
    if answer:
        node.dcm(**{keys.DCM_STATE_LABEL: answer})
    else:
        assert node.advance(NOW + 2 + 119).outcome is None, "a second before the timeout"
    failed = node.advance(NOW + at)
    assert failed.outcome is Outcome.FAILED and failed.events[0].type == "Warning"
    assert failed.events[0].reason == reason
    assert not node.tainted and not node.cordoned
    assert node.state == RepartitionState(backoff_until=NOW + at + 600), "no last-change: the layout did not change"
    assert f'"reason":"{reason}"' in node.obj["metadata"]["annotations"][keys.CONDITION]


def test_draining_without_eviction_aborts_when_a_pod_arrived_first() -> None:
    node = _begin()
    aborted = node.advance(NOW + 1, [_gpu_pod()])
    assert aborted.outcome is Outcome.FAILED and aborted.evictions == ()
    assert "--allow-eviction" in aborted.events[0].message and not node.cordoned


def test_draining_with_eviction_evicts_and_waits_for_pods_being_deleted() -> None:
    node = _begin()
    evicting = Settings(allow_eviction=True, drain_timeout_seconds=60)
    first = node.advance(NOW + 1, [_gpu_pod("a"), _gpu_pod("b", deleting=True)], evicting)
    assert [e.name for e in first.evictions] == ["a"] and node.phase() is Phase.DRAINING
    waiting = node.advance(NOW + 2, [_gpu_pod("b", deleting=True)], evicting)
    assert waiting.evictions == () and waiting.outcome is None
    timed_out = node.advance(NOW + 61, [_gpu_pod("b", deleting=True)], evicting)
    assert timed_out.outcome is Outcome.FAILED and timed_out.events[0].reason == "DrainTimeout"


def test_losing_the_opt_in_label_while_draining_aborts() -> None:
    node = _begin()
    node.dcm(**{keys.OPT_IN_LABEL: None})
    assert node.advance(NOW + 1).events[0].reason == "RepartitionAborted"
    assert not node.cordoned


def test_a_profile_label_changed_by_someone_else_fails() -> None:
    node = _begin()
    node.advance(NOW + 1)
    node.advance(NOW + 2)
    node.dcm(**{keys.DCM_PROFILE_LABEL: "default"})
    assert node.advance(NOW + 3).events[0].reason == "ProfileChanged"


def test_stale_advertisement_times_out_naming_the_known_problem() -> None:
    node = _begin()
    node.advance(NOW + 1)
    node.advance(NOW + 2)
    node.dcm(**{keys.DCM_STATE_LABEL: "success"})
    node.advance(NOW + 3)
    timeout = node.advance(NOW + 3 + 30)
    assert timeout.outcome is Outcome.FAILED and "ROCm/gpu-operator#420" in timeout.events[0].message
    assert "8 CPX/NPS4 partitions" in timeout.events[0].message


def test_a_lost_taint_is_put_back_while_waiting() -> None:
    node = _begin()
    node.advance(NOW + 1)
    node.advance(NOW + 2)
    node.obj["spec"]["taints"] = []
    node.advance(NOW + 3)
    assert node.tainted


def test_state_round_trips_through_annotations() -> None:
    state = RepartitionState(Phase.CONFIGURING, SPX, started=NOW, since=NOW + 5, was_cordoned=True,
                             last_change=NOW - 100, backoff_until=None)
    written = {k: v for k, v in state.annotations().items() if v is not None}
    assert read_state(written) == state


@pytest.mark.parametrize(("key", "value", "named"), [
    (keys.STATE, "rebooting", keys.STATE),
    (keys.SINCE, "yesterday", keys.SINCE),
    (keys.SINCE, "9" * 5000, keys.SINCE),
    (keys.EXPECTED_PARTITIONS, "1e400", keys.EXPECTED_PARTITIONS),
    (keys.TARGET_MODE, "SPX", keys.TARGET_MODE),
    (keys.WAS_CORDONED, "maybe", keys.WAS_CORDONED),
    (keys.LAST_CHANGE, "1900-01-01T00:00:00Z", keys.LAST_CHANGE),
])
def test_unreadable_state_annotations_are_named(key: str, value: str, named: str) -> None:
    good = {k: v for k, v in RepartitionState(Phase.TAINTED, SPX, NOW, NOW).annotations().items() if v is not None}
    with pytest.raises(StateError, match=named):
        read_state({**good, key: value})


def test_bad_state_in_a_repartition_removes_our_taint_but_leaves_the_cordon() -> None:
    node = _begin()
    node.advance(NOW + 1)
    node.obj["metadata"]["annotations"][keys.STATE] = "rebooting"
    with pytest.raises(StateError) as error:
        read_state(node.view.annotations)
    transition = bad_state(node.view, error.value, NOW + 2, SETTINGS)
    node.apply(transition.patch)
    assert not node.tainted and node.cordoned and keys.STATE not in node.obj["metadata"]["annotations"]
    assert node.state.backoff_until == NOW + 2 + 600


def test_bad_time_on_an_idle_node_touches_neither_taint_nor_cordon() -> None:
    other = {"key": keys.DCM_TAINT_KEY, "value": "up", "effect": "NoExecute"}  # someone repartitioning by hand
    node = Node(objects.node("n1", taints=[other], annotations={keys.LAST_CHANGE: "garbage"}))
    with pytest.raises(StateError) as error:
        read_state(node.view.annotations)
    transition = bad_state(node.view, error.value, NOW, SETTINGS)
    assert transition.patch is not None and transition.patch.dcm_taint is None
    assert transition.patch.unschedulable is None


def test_patch_body_carries_the_resource_version_and_removes_with_null() -> None:
    view = read_node(objects.node("n1"))
    assert view is not None
    body = patch_body(view, NodePatch(unschedulable=False, dcm_taint=False, labels={keys.DCM_STATE_LABEL: None}))
    assert body == {"metadata": {"resourceVersion": "7", "labels": {keys.DCM_STATE_LABEL: None}},
                    "spec": {"unschedulable": None, "taints": None}}
