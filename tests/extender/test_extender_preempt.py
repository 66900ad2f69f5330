"""The extender's preemptVerb over HTTP (ExtenderPreemptionArgs -> ExtenderPreemptionResult, as
kube-scheduler 1.25 sends it: PascalCase, NodeNameToMetaVictims with a node cache, NodeNameToVictims
with whole pods otherwise): only candidates where the pod fits once the victims are gone stay, their
victims unchanged; hostile bodies are a 400 naming the field. On the real scheduler:
tests/controlplane/test_controlplane_native_mode.py."""

from __future__ import annotations

from typing import Any

import httpx

from decision.node_offer import read_node_offer
from extender.app import create_app
from extender.cache import ClusterCache
from tests.extender.support import make_node, partition_labels, serve_app

LLAMA_70B_FP8 = {"aim.amd.com/model": "meta-llama/Llama-3.3-70B-Instruct", "aim.amd.com/precision": "fp8"}  # ~80 GiB


def pod(annotations: dict[str, str]) -> dict[str, Any]:
    one = {"amd.com/gpu-partition": "1"}
    return {"metadata": {"name": "big", "namespace": "team-a", "uid": "p-1", "annotations": annotations},
            "spec": {"containers": [{"name": "vllm", "resources": {"requests": one, "limits": one}}]}}


def meta(*uids: str) -> dict[str, Any]:
    return {"Pods": [{"UID": uid} for uid in uids], "NumPDBViolations": 0}


def cluster() -> ClusterCache:
    cache = ClusterCache()
    nodes = [make_node("cpx", partition_labels(memory_gib=24, count=8), 8),
             make_node("dpx", partition_labels(memory_gib=96, count=2, compute_mode="DPX"), 2),
             make_node("qpx", partition_labels(memory_gib=48, count=4, compute_mode="QPX"), 4)]
    cache.replace_nodes(offer for node in nodes if (offer := read_node_offer(node)) is not None)
    return cache


def test_only_candidates_whose_partitions_hold_the_pod_stay(http: httpx.Client) -> None:
    body = {"Pod": pod(LLAMA_70B_FP8), "NodeNameToVictims": None,
            "NodeNameToMetaVictims": {"cpx": meta("a"), "dpx": meta("b", "c"), "qpx": meta("d"), "gone": meta("e")}}
    with serve_app(create_app(cache=cluster())) as url:
        reply = http.post(f"{url}/preempt", json=body)
        assert reply.status_code == 200
        # A node not (yet) in the cache is not known to be too small: it stays.
        assert reply.json() == {"NodeNameToMetaVictims": {"dpx": meta("b", "c"), "gone": meta("e")}}
        # A pod the extender does not size keeps every candidate.
        plain = http.post(f"{url}/preempt", json={**body, "Pod": pod({})})
        assert set(plain.json()["NodeNameToMetaVictims"]) == {"cpx", "dpx", "qpx", "gone"}


def test_whole_victim_pods_without_a_node_cache_are_kept_as_meta_victims(http: httpx.Client) -> None:
    """nodeCacheCapable: false sends NodeNameToVictims with whole pods; without a cache the extender
    knows no node's partitions, so every candidate stays, answered as MetaVictims (uids)."""
    victim = {"metadata": {"name": "v", "namespace": "team-a", "uid": "u-9"}, "spec": {}}
    body = {"pod": pod(LLAMA_70B_FP8), "nodeToVictims": {"cpx": {"pods": [victim], "numPDBViolations": 1}}}
    with serve_app(create_app()) as url:
        reply = http.post(f"{url}/preempt", json=body)
    assert reply.status_code == 200
    assert reply.json() == {"NodeNameToMetaVictims": {"cpx": {"Pods": [{"UID": "u-9"}], "NumPDBViolations": 1}}}


def test_hostile_preemption_bodies_are_a_400_naming_the_field(http: httpx.Client) -> None:
    cases = [
        (b"[1]", "must be a JSON object"),
        (b'{"NodeNameToMetaVictims": {}}', "has no Pod"),
        (b'{"Pod": {}, "NodeNameToMetaVictims": {"n": {"Pods": "x"}}}', "NodeNameToMetaVictims[n].Pods"),
        (b'{"Pod": {}, "NodeNameToMetaVictims": {"n": {"Pods": [{"UID": 7}]}}}', "NodeNameToMetaVictims[n].Pods[0]"),
        (b'{"Pod": {}, "NodeNameToMetaVictims": {"n": {"Pods": [], "NumPDBViolations": -1}}}', "NumPDBViolations"),
        (b'{"Pod": {}, "NodeNameToMetaVictims": {"n": {"Pods": [' + b",".join([b'{"UID":"u"}'] * 2000) + b"]}}}",
         "at most 1024"),
    ]
    with serve_app(create_app()) as url:
        for body, expected in cases:
            reply = http.post(f"{url}/preempt", content=body, headers={"Content-Type": "application/json"})
            assert reply.status_code == 400, body[:80]
            assert expected in reply.json()["Error"]
        assert http.get(f"{url}/healthz").text == "ok"
