"""What the loop says when it holds back: a ready change that waits for a free slot
(``--max-in-flight``) is logged once, naming the node in progress; a pass that takes seconds is
logged with how long it took. Driven through ``Controller.tick``/``run`` in apply mode with views
read from API JSON and a Kube that answers every call without changing anything."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from partitioner.controller import loop
from partitioner.controller.loop import Controller
from partitioner.controller.machine import Phase, RepartitionState, Target
from partitioner.controller.metrics import Metrics
from partitioner.controller.observe import NodeView, PodView
from partitioner.controller.profiles import DcmConfig
from partitioner.controller.settings import RunMode, Settings
from partitioner.modes import Mode
from tests.partitioner_controller import objects
from tests.partitioner_controller.loop_support import Cluster, RecordingKube

NOW = 1_800_000_000.0


def _draining() -> dict[str, str]:
    target = Target("spx_nps1_1gpu", Mode("SPX", "NPS1"), 1, Mode("CPX", "NPS4"))
    state = RepartitionState(Phase.DRAINING, target, started=NOW - 5, since=NOW - 5)
    return {k: v for k, v in state.annotations().items() if v is not None}


def _controller(nodes: list[dict[str, Any]], pods: list[dict[str, Any]], kube: RecordingKube,
                settings: Settings) -> Controller:
    return Controller(kube, Cluster(nodes, pods).snapshot, lambda: True, settings, Metrics(),  # type: ignore[arg-type]
                      DcmConfig("kube-amd-gpu", "config-manager-config", existing=False), clock=lambda: NOW)


def test_a_ready_change_held_back_by_max_in_flight_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    nodes = [objects.node("a-busy", annotations=_draining(), unschedulable=True), objects.node("b-idle")]
    # No 24 GiB CPX partition holds a 70B pod; the node in progress (to SPX) will hold one of them.
    pods = [objects.pod(f"llama-70b-{i}", objects.LLAMA_70B) for i in (1, 2)]
    kube = RecordingKube()
    controller = _controller(nodes, pods, kube, Settings(mode=RunMode.APPLY, stable_seconds=0))
    with caplog.at_level(logging.INFO, logger="partitioner.controller.loop"):
        for _ in range(4):
            plan = controller.tick()
            assert plan is not None and [c.node for c in plan.changes] == ["b-idle"]
    waits = [r.getMessage() for r in caplog.records if "waits to be repartitioned" in r.getMessage()]
    assert waits == ["node b-idle waits to be repartitioned to SPX/NPS1: 1 repartition(s) in progress (a-busy),"
                     " at most 1 at a time (--max-in-flight)"], waits


def test_a_change_with_a_free_slot_does_not_say_it_waits(caplog: pytest.LogCaptureFixture) -> None:
    nodes = [objects.node("a-busy", annotations=_draining(), unschedulable=True), objects.node("b-idle")]
    pods = [objects.pod(f"llama-70b-{i}", objects.LLAMA_70B) for i in (1, 2)]
    controller = _controller(nodes, pods, RecordingKube(),
                             Settings(mode=RunMode.APPLY, stable_seconds=0, max_in_flight=2))
    with caplog.at_level(logging.INFO, logger="partitioner.controller.loop"):
        for _ in range(3):
            controller.tick()
    assert not [r for r in caplog.records if "waits to be repartitioned" in r.getMessage()]


@pytest.mark.parametrize(("threshold", "logged"), [(0.05, True), (5.0, False)])
def test_a_slow_pass_is_logged_with_its_duration(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                                 threshold: float, logged: bool) -> None:
    monkeypatch.setattr(loop, "SLOW_PASS_SECONDS", threshold)
    stop, changed = threading.Event(), threading.Event()

    def slow_snapshot() -> tuple[list[NodeView], list[PodView]]:
        stop.set()  # one pass only
        threading.Event().wait(0.1)  # a pass of 0.1 s, as if an API call lagged
        return [], []

    controller = Controller(RecordingKube(), slow_snapshot, lambda: True,  # type: ignore[arg-type]
                            Settings(mode=RunMode.APPLY), Metrics(),
                            DcmConfig("kube-amd-gpu", "config-manager-config", existing=False))
    with caplog.at_level(logging.WARNING, logger="partitioner.controller.loop"):
        controller.run(stop, changed, resync_seconds=0.3, min_interval_seconds=0.01)
    slow = [r.getMessage() for r in caplog.records if "one evaluation took" in r.getMessage()]
    assert bool(slow) is logged, slow
