"""aim_extender_partition_memory_bytes and aim_extender_partitions_bound_unsized, scraped over real
HTTP from an app whose node cache holds two nodes and some bound pods; expectations are computed
here with ``sizing``'s public API."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

import sizing
from decision.node_offer import read_node_offer
from decision.pod_demand import bound_pod_usage, pod_id
from extender.app import create_app
from extender.cache import ClusterCache
from tests.extender.support import make_node, partition_labels, serve_app
from tests.extender.test_extender_node_cache_watch import LLAMA_8B, bound_pod

GIB = 1024**3


def annotated(pod: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
    pod["metadata"]["annotations"] = annotations
    return pod


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        if family.name in ("aim_extender_partition_memory_bytes", "aim_extender_partitions_bound_unsized")
        for sample in family.samples
    }


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return samples(httpx.get(f"{url}/metrics", timeout=5).text)


def test_used_and_idle_partition_memory_per_node_match_sizing() -> None:
    cache = ClusterCache()
    nodes = [make_node("big", partition_labels(memory_gib=48, count=8), 8),
             make_node("small", partition_labels(memory_gib=24, count=8), 8)]
    cache.replace_nodes(offer for offer in map(read_node_offer, nodes) if offer is not None)
    pods = [
        annotated(bound_pod("llama-2", "big", 2), LLAMA_8B),
        bound_pod("plain", "big", 3),  # unannotated: counted as unsized
        annotated(bound_pod("llama-1", "small", 1), LLAMA_8B),
        annotated(bound_pod("mem", "small", 2), {"aim.amd.com/memory": "10Gi"}),
        bound_pod("done", "small", 4, phase="Succeeded"),  # finished: holds nothing
    ]
    usages = {pod_id(pod): bound_pod_usage(pod) for pod in pods}
    cache.replace_pods({uid: usage for uid, usage in usages.items() if uid is not None and usage is not None})

    model = LLAMA_8B["aim.amd.com/model"]
    need_2 = sizing.partition_requirement(model, "fp16", partitions=2).required_partition_bytes
    need_1 = sizing.partition_requirement(model, "fp16", partitions=1).required_partition_bytes
    assert need_2 < 48 * GIB and need_1 < 24 * GIB  # the test's premise: both fit their node
    expected = {
        ("aim_extender_partition_memory_bytes", (("node", "big"), ("state", "used"))): 2 * need_2,
        ("aim_extender_partition_memory_bytes", (("node", "big"), ("state", "idle"))): 2 * (48 * GIB - need_2),
        ("aim_extender_partitions_bound_unsized", (("node", "big"),)): 3,
        ("aim_extender_partition_memory_bytes", (("node", "small"), ("state", "used"))): need_1 + 2 * 10 * GIB,
        ("aim_extender_partition_memory_bytes", (("node", "small"), ("state", "idle"))):
            (24 * GIB - need_1) + 2 * 14 * GIB,
        ("aim_extender_partitions_bound_unsized", (("node", "small"),)): 0,
    }
    with serve_app(create_app(cache=cache)) as url:
        assert scrape(url) == expected
        cache.remove_pod("uid-llama-2")  # a pod leaves: the next scrape follows
        after = scrape(url)
    assert after[("aim_extender_partition_memory_bytes", (("node", "big"), ("state", "used")))] == 0
    assert after[("aim_extender_partitions_bound_unsized", (("node", "big"),))] == 3


def test_without_a_node_cache_the_families_are_described_with_no_samples() -> None:
    with serve_app(create_app()) as url:
        text = httpx.get(f"{url}/metrics", timeout=5).text
    assert "# TYPE aim_extender_partition_memory_bytes gauge" in text
    assert "# TYPE aim_extender_partitions_bound_unsized gauge" in text
    assert samples(text) == {}
