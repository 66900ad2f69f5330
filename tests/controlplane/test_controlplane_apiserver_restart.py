"""The extender's watch survives the API server: kube-apiserver is stopped and restarted during the
test; the extender keeps answering from its cache, reports the staleness (/readyz, metrics),
relists when the API server is back, and a node added after the restart appears in decisions and
receives a pod through kube-scheduler."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.controlplane.gpu_cluster import (
    POOL_LABEL,
    NodeSpec,
    Pool,
    bound_node,
    create_pool,
    delete_pool,
    gpu_pod,
    model_annotations,
    submit,
)
from tests.controlplane.harness import ControlPlane, RunningExtender
from tests.controlplane.processes import wait_until

# /readyz turns 503 this long after the watch broke; short, so the test sees it within seconds.
STALE_AFTER_SECONDS = 2
# Time for the extender to notice an outage or a recovery: the watch connection breaks at once;
# the relist follows the extender's backoff (at most 3 s, kube/backoff.py) plus the list.
NOTICE_SECONDS = 20.0
SCHEDULER = "aim-gpu-scheduler-restart"
LLAMA_8B = model_annotations("meta-llama/Llama-3.1-8B-Instruct", "fp16")  # fits 24 GiB partitions
SPECS = (NodeSpec("cpx8", "MI300X", "CPX", "NPS4", 38, 24, 8), NodeSpec("qpx", "MI300X", "QPX", "NPS1", 76, 48, 4))
# Added during the test: the only node whose partition holds a 70B model in fp16. A pod needing
# it stays Pending until kube-scheduler (which lost the API server too, and relists with its own
# backoff) and the extender both know the node, and then must land there.
LATE = NodeSpec("late-spx", "MI300X", "SPX", "NPS1", 304, 192, 1)
LLAMA_70B = model_annotations("meta-llama/Llama-3.3-70B-Instruct", "fp16")  # ~151 GiB
PREFIX = "restart"


def filter_body(names: list[str]) -> dict[str, Any]:
    pod = gpu_pod("probe", scheduler=SCHEDULER, pool=PREFIX, annotations=LLAMA_8B)
    pod["metadata"] |= {"namespace": "default", "uid": "00000000-0000-0000-0000-000000000001"}
    return {"Pod": pod, "Nodes": None, "NodeNames": names}


def verdict(extender: RunningExtender, names: list[str]) -> tuple[list[str], dict[str, str]]:
    response = extender.post("/filter", filter_body(names))
    assert response.status_code == 200, response.text
    body = response.json()
    return list(body.get("NodeNames") or []), dict(body.get("FailedNodes") or {})


@pytest.fixture
def watched(control_plane: ControlPlane) -> Iterator[tuple[RunningExtender, Pool]]:
    pool = create_pool(control_plane, PREFIX, SPECS)
    extender = control_plane.start_extender(node_cache="watch", extra_args=[f"--stale-after={STALE_AFTER_SECONDS}"])
    scheduler = control_plane.start_scheduler(extender.scheduler_config(SCHEDULER), name=SCHEDULER)
    yield extender, pool
    control_plane.stop_process(scheduler)
    control_plane.stop_process(extender.process)
    if not control_plane.ready():  # a failure mid-outage must not leave the session without an API server
        control_plane.start_apiserver()
    delete_pool(control_plane, pool)
    delete_pool(control_plane, Pool(PREFIX, {LATE.suffix: f"{PREFIX}-{LATE.suffix}"}))


def stale_seconds(extender: RunningExtender) -> float:
    return extender.metrics().get("aim_extender_cache_stale_seconds", 0.0)


def stale_decisions(extender: RunningExtender) -> float:
    return sum(v for k, v in extender.metrics().items() if k.startswith("aim_extender_stale_decisions_total"))


def test_extender_serves_from_cache_through_an_apiserver_restart_and_relists(
        control_plane: ControlPlane, watched: tuple[RunningExtender, Pool], namespace: str) -> None:
    extender, pool = watched
    names = [pool["cpx8"], pool["qpx"]]
    assert verdict(extender, names) == (names, {})
    assert stale_seconds(extender) == 0.0

    control_plane.stop_apiserver()
    wait_until(lambda: stale_seconds(extender) > 0, NOTICE_SECONDS, "the extender to notice the broken watch")
    before = stale_decisions(extender)
    # Still answering, from the cache, with the same verdicts.
    assert verdict(extender, names) == (names, {})
    assert stale_decisions(extender) > before, "a decision from a stale cache was not counted"
    wait_until(lambda: extender.get("/readyz").status_code == 503, NOTICE_SECONDS,
               f"/readyz to report the stale cache after {STALE_AFTER_SECONDS} s")
    assert "stale" in extender.get("/readyz").text

    control_plane.start_apiserver()
    late = f"{PREFIX}-{LATE.suffix}"
    control_plane.create_node(late, partitions=LATE.count, labels={**LATE.labels(), POOL_LABEL: PREFIX})
    wait_until(lambda: extender.ready() and stale_seconds(extender) == 0.0, NOTICE_SECONDS,
               "the extender to relist and become ready again")
    wait_until(lambda: late in verdict(extender, [*names, late])[0], NOTICE_SECONDS,
               "the node added after the restart to pass the filter")

    # kube-scheduler and the extender place a pod that only the new node holds.
    submit(control_plane.core, namespace, gpu_pod("after-restart", scheduler=SCHEDULER, pool=PREFIX,
                                                  annotations=LLAMA_70B))
    assert bound_node(control_plane.core, namespace, "after-restart") == late
