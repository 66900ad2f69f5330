"""--node-cache watch: the extender lists and watches a (stand-in) API server with the kubernetes
client, is not ready until both lists are in, then answers NodeNames requests from its cache and
counts partitions held by bound pods as used.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from extender.app import create_app
from extender.cache import ClusterCache
from extender.watch import ClusterWatcher, core_api
from tests.extender.apiserver_standin import StandInApiServer
from tests.extender.support import annotate, make_node, partition_labels, serve_app

LLAMA_8B = {"aim.amd.com/model": "meta-llama/Llama-3.1-8B-Instruct", "aim.amd.com/precision": "fp16"}


def bound_pod(name: str, node: str, partitions: int, *, phase: str = "Running") -> dict[str, Any]:
    resources = {"amd.com/gpu-partition": str(partitions)}
    return {
        "metadata": {"name": name, "namespace": "inference", "uid": f"uid-{name}"},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "vllm", "resources": {"requests": resources, "limits": resources}}],
        },
        "status": {"phase": phase},
    }


def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for: {what}")


@pytest.fixture
def apiserver() -> Iterator[StandInApiServer]:
    server = StandInApiServer()
    server.add("nodes", make_node("fake-gpu-node-1", partition_labels(memory_gib=24, count=8), 8))
    server.add("nodes", make_node("fake-gpu-node-2", partition_labels(memory_gib=24, count=8), 8))
    server.add("pods", bound_pod("busy", "fake-gpu-node-1", 7))
    server.start()
    yield server
    server.stop()


# /readyz turns 503 after the watch has been broken this long in these tests (30 s in production).
STALE_AFTER_SECONDS = 0.5


@pytest.fixture
def extender_url(apiserver: StandInApiServer, tmp_path: Path) -> Iterator[str]:
    apiserver.hold_lists()
    cache = ClusterCache()
    watcher = ClusterWatcher(core_api(apiserver.kubeconfig(tmp_path)), cache, watch_timeout_seconds=2)
    with serve_app(create_app(cache=cache, background=watcher, stale_after_seconds=STALE_AFTER_SECONDS)) as url:
        yield url
        watcher.stop()


def filter_names(http: httpx.Client, url: str, request: dict[str, Any]) -> dict[str, Any]:
    reply = http.post(f"{url}/filter", json=request)
    assert reply.status_code == 200
    return reply.json()


def test_readyz_flips_to_ready_only_after_the_first_list(
    http: httpx.Client, apiserver: StandInApiServer, extender_url: str
) -> None:
    assert http.get(f"{extender_url}/readyz").status_code == 503
    assert "aim_extender_cache_synced 0.0" in http.get(f"{extender_url}/metrics").text
    apiserver.release_lists()
    eventually(lambda: http.get(f"{extender_url}/readyz").status_code == 200, "/readyz 200")
    metrics = http.get(f"{extender_url}/metrics").text
    assert "aim_extender_cache_synced 1.0" in metrics
    assert "aim_extender_cache_nodes 2.0" in metrics and "aim_extender_cache_pods 1.0" in metrics


def test_names_request_is_answered_from_the_cache_with_usage_from_bound_pods(
    http: httpx.Client, apiserver: StandInApiServer, extender_url: str, names_request: dict[str, Any]
) -> None:
    apiserver.release_lists()
    eventually(lambda: http.get(f"{extender_url}/readyz").status_code == 200, "/readyz 200")
    request = annotate(names_request, LLAMA_8B, partitions=2)
    result = filter_names(http, extender_url, request)
    assert result["Nodes"] is None
    assert result["NodeNames"] == ["fake-gpu-node-2"]
    assert result["FailedNodes"] == {
        "fake-gpu-node-1": "not enough free gpu partitions (1 free < 2 requested)",
        "realnode-1": "node not yet in extender node cache",
    }
    assert result["FailedAndUnresolvableNodes"] == {}


def test_watch_events_update_nodes_and_usage(
    http: httpx.Client, apiserver: StandInApiServer, extender_url: str, names_request: dict[str, Any]
) -> None:
    apiserver.release_lists()
    eventually(lambda: http.get(f"{extender_url}/readyz").status_code == 200, "/readyz 200")
    request = annotate(names_request, LLAMA_8B, partitions=2)

    apiserver.push("pods", "MODIFIED", bound_pod("busy", "fake-gpu-node-1", 7, phase="Succeeded"))
    eventually(
        lambda: "fake-gpu-node-1" in filter_names(http, extender_url, request)["NodeNames"],
        "finished pod frees its partitions",
    )

    apiserver.push(
        "nodes", "ADDED", make_node("realnode-1", partition_labels(memory_gib=192, count=1, compute_mode="SPX"), 1)
    )
    eventually(
        lambda: (
            filter_names(http, extender_url, request)["FailedAndUnresolvableNodes"].get("realnode-1")
            == "node has fewer gpu partitions than requested (1 < 2)"
        ),
        "new node is seen",
    )

    apiserver.push("pods", "ADDED", bound_pod("new", "fake-gpu-node-2", 7))
    eventually(
        lambda: filter_names(http, extender_url, request)["NodeNames"] == ["fake-gpu-node-1"],
        "new bound pod uses partitions",
    )

    scores = http.post(
        f"{extender_url}/prioritize",
        json={**copy.deepcopy(request), "NodeNames": ["fake-gpu-node-1", "fake-gpu-node-2"]},
    ).json()
    assert {s["Host"]: s["Score"] for s in scores} == {"fake-gpu-node-1": 10, "fake-gpu-node-2": 0}


def test_watch_expiry_makes_the_extender_list_again_and_see_silent_changes(
    http: httpx.Client, apiserver: StandInApiServer, extender_url: str, names_request: dict[str, Any]
) -> None:
    apiserver.release_lists()
    eventually(lambda: http.get(f"{extender_url}/readyz").status_code == 200, "/readyz 200")
    request = annotate(names_request, LLAMA_8B, partitions=2)
    assert "realnode-1" in filter_names(http, extender_url, request)["FailedNodes"]
    # A change the watch never reports (as if made while the watch was down) ...
    apiserver.add("nodes", make_node("realnode-1", partition_labels(memory_gib=48, count=4, compute_mode="QPX"), 4))
    node_lists_before = sum(1 for r in apiserver.requests if r.startswith("/api/v1/nodes") and "watch=true" not in r)
    # ... is found by the relist after the watch expires.
    apiserver.expire_watches("nodes")
    eventually(lambda: "realnode-1" in filter_names(http, extender_url, request)["NodeNames"], "relist after 410")
    node_lists_after = sum(1 for r in apiserver.requests if r.startswith("/api/v1/nodes") and "watch=true" not in r)
    assert node_lists_after == node_lists_before + 1


def test_watcher_uses_paged_lists_and_a_bound_pod_selector(
    http: httpx.Client, apiserver: StandInApiServer, extender_url: str
) -> None:
    apiserver.release_lists()
    eventually(lambda: http.get(f"{extender_url}/readyz").status_code == 200, "/readyz 200")
    eventually(lambda: any("watch=true" in r for r in apiserver.requests), "watch started")
    pod_lists = [r for r in apiserver.requests if r.startswith("/api/v1/pods")]
    assert all("fieldSelector=spec.nodeName" in r for r in pod_lists)
    assert any("limit=500" in r for r in apiserver.requests if r.startswith("/api/v1/nodes"))


def metric(text: str, name: str) -> float:
    """The value of one sample in a Prometheus text exposition."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in the exposition")


def test_an_api_server_outage_makes_the_cache_stale_and_not_ready_until_it_relists(
    http: httpx.Client, apiserver: StandInApiServer, extender_url: str, names_request: dict[str, Any]
) -> None:
    apiserver.release_lists()
    eventually(lambda: http.get(f"{extender_url}/readyz").status_code == 200, "/readyz 200")
    assert metric(http.get(f"{extender_url}/metrics").text, "aim_extender_cache_stale_seconds") == 0.0
    apiserver.go_down()
    eventually(lambda: http.get(f"{extender_url}/readyz").status_code == 503, "/readyz 503 while stale")
    assert "node cache stale" in http.get(f"{extender_url}/readyz").text
    metrics = http.get(f"{extender_url}/metrics").text
    assert metric(metrics, "aim_extender_cache_stale_seconds") > STALE_AFTER_SECONDS
    assert metric(metrics, "aim_extender_cache_synced") == 1.0  # kept: synced once, now stale
    request = annotate(names_request, LLAMA_8B, partitions=2)
    assert filter_names(http, extender_url, request)["NodeNames"] == ["fake-gpu-node-2"]  # still answers
    counted = 'aim_extender_stale_decisions_total{verb="filter"}'
    assert metric(http.get(f"{extender_url}/metrics").text, counted) == 1.0
    lists_before = sum(1 for r in apiserver.requests if "watch=true" not in r)
    apiserver.come_back()
    back = time.monotonic()
    eventually(lambda: http.get(f"{extender_url}/readyz").status_code == 200, "/readyz 200 after relisting")
    assert time.monotonic() - back < 4.0  # backoff capped at 3 s
    assert sum(1 for r in apiserver.requests if "watch=true" not in r) >= lists_before + 2  # nodes and pods
    assert metric(http.get(f"{extender_url}/metrics").text, "aim_extender_cache_stale_seconds") == 0.0
