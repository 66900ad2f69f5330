"""The extender under uvicorn, called over HTTP with the bodies kube-scheduler sends.

Covers: the captured nodeCacheCapable=false requests (copied, labels and annotations added),
fits / too small / unknown model / never fits / no annotations / multi-partition / memory and
profile annotations / garbled annotations, malformed bodies (400, never 500), the reply shape
(PascalCase, whichever of Nodes/NodeNames the request used), prioritize scores, health,
metrics and the OpenAPI document.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from decision.verdict import Policy
from extender.app import create_app
from tests.extender.support import annotate, label_node, make_node, partition_labels, serve_app

LLAMA_8B = {"aim.amd.com/model": "meta-llama/Llama-3.1-8B-Instruct", "aim.amd.com/precision": "fp16"}  # ~20 GiB
LLAMA_70B_FP16 = {"aim.amd.com/model": "meta-llama/Llama-3.3-70B-Instruct", "aim.amd.com/precision": "fp16"}  # ~151 GiB


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_app(create_app(policy=Policy.BEST_FIT)) as url:
        yield url


def cpx_and_spx(request: dict[str, Any]) -> dict[str, Any]:
    """fake-gpu-node-2: 8 x 24 GiB CPX partitions; fake-gpu-node-1: 1 x 192 GiB SPX partition."""
    request = copy.deepcopy(request)
    node2, node1 = request["Nodes"]["items"]
    label_node(node2, partition_labels(memory_gib=24, count=8, compute_mode="CPX"), allocatable=8)
    label_node(node1, partition_labels(memory_gib=192, count=1, compute_mode="SPX"), allocatable=1)
    return request


def post(http: httpx.Client, url: str, body: Any) -> httpx.Response:
    return http.post(url, json=body)


def test_captured_request_without_labels_or_annotations_passes_every_node_with_partitions(
    http: httpx.Client, base_url: str, nodes_request: dict[str, Any]
) -> None:
    reply = post(http, f"{base_url}/filter", nodes_request)
    assert reply.status_code == 200
    result = reply.json()
    assert [n["metadata"]["name"] for n in result["Nodes"]["items"]] == ["fake-gpu-node-2", "fake-gpu-node-1"]
    assert result["NodeNames"] is None
    assert result["FailedNodes"] == {} and result["FailedAndUnresolvableNodes"] == {}
    assert result["Error"] == ""
    assert set(result) == {"Nodes", "NodeNames", "FailedNodes", "FailedAndUnresolvableNodes", "Error"}


def test_small_model_fits_both_nodes_and_full_node_objects_come_back_unchanged(
    http: httpx.Client, base_url: str, nodes_request: dict[str, Any]
) -> None:
    request = annotate(cpx_and_spx(nodes_request), LLAMA_8B)
    result = post(http, f"{base_url}/filter", request).json()
    assert result["Nodes"]["items"] == request["Nodes"]["items"]
    assert result["FailedNodes"] == {} and result["FailedAndUnresolvableNodes"] == {}


def test_big_model_rejects_the_small_partition_node_with_a_size_reason(
    http: httpx.Client, base_url: str, nodes_request: dict[str, Any]
) -> None:
    result = post(http, f"{base_url}/filter", annotate(cpx_and_spx(nodes_request), LLAMA_70B_FP16)).json()
    assert [n["metadata"]["name"] for n in result["Nodes"]["items"]] == ["fake-gpu-node-1"]
    reason = result["FailedAndUnresolvableNodes"]["fake-gpu-node-2"]
    assert reason.startswith("gpu partition too small for model (24 GiB < 15")
    assert result["FailedNodes"] == {}


def test_unknown_model_rejects_every_node_naming_the_model_and_the_fix(
    http: httpx.Client, base_url: str, nodes_request: dict[str, Any]
) -> None:
    request = annotate(cpx_and_spx(nodes_request), {"aim.amd.com/model": "meta-llama/Llama-3.1-8B-Instruc"})
    result = post(http, f"{base_url}/filter", request).json()
    assert result["Nodes"]["items"] == []
    reasons = result["FailedAndUnresolvableNodes"]
    assert set(reasons) == {"fake-gpu-node-1", "fake-gpu-node-2"}
    message = reasons["fake-gpu-node-1"]
    assert "meta-llama/Llama-3.1-8B-Instruc" in message and "unknown model" in message
    assert "did you mean meta-llama/Llama-3.1-8B-Instruct" in message
    assert len(set(reasons.values())) == 1  # one categorical reason, grouped in the pod event


def test_model_bigger_than_any_partition_is_unresolvable_with_a_precision_or_count_fix(
    http: httpx.Client, base_url: str, nodes_request: dict[str, Any]
) -> None:
    request = annotate(
        cpx_and_spx(nodes_request), {"aim.amd.com/model": "Qwen/Qwen3-235B-A22B", "aim.amd.com/precision": "fp16"}
    )
    result = post(http, f"{base_url}/filter", request).json()
    message = result["FailedAndUnresolvableNodes"]["fake-gpu-node-1"]
    assert "Qwen/Qwen3-235B-A22B fp16" in message and "more than the largest gpu partition" in message
    assert "fix:" in message and ("precision fp8" in message or "request 2 partitions" in message)


def test_multi_partition_pod_is_sized_per_partition_and_needs_enough_partitions(
    http: httpx.Client, base_url: str, nodes_request: dict[str, Any]
) -> None:
    """70B fp16 at tensor parallel 8 needs ~19 GiB per partition: the 8 x 24 GiB node fits, the
    single-partition node cannot offer 8 partitions."""
    request = annotate(cpx_and_spx(nodes_request), LLAMA_70B_FP16, partitions=8)
    result = post(http, f"{base_url}/filter", request).json()
    assert [n["metadata"]["name"] for n in result["Nodes"]["items"]] == ["fake-gpu-node-2"]
    assert result["FailedAndUnresolvableNodes"] == {
        "fake-gpu-node-1": "node has fewer gpu partitions than requested (1 < 8)"
    }


def test_memory_annotation_overrides_the_estimate(
    http: httpx.Client, base_url: str, nodes_request: dict[str, Any]
) -> None:
    request = annotate(cpx_and_spx(nodes_request), {**LLAMA_8B, "aim.amd.com/memory": "30Gi"})
    result = post(http, f"{base_url}/filter", request).json()
    assert [n["metadata"]["name"] for n in result["Nodes"]["items"]] == ["fake-gpu-node-1"]
    assert (
        result["FailedAndUnresolvableNodes"]["fake-gpu-node-2"] == "gpu partition too small for model (24 GiB < 30 GiB)"
    )


def test_absurd_memory_quantity_is_a_reason_not_a_500(
    http: httpx.Client, base_url: str, nodes_request: dict[str, Any]
) -> None:
    # 1e400 bytes once overflowed a float while formatting the message (found by fuzzing /filter);
    # 1e999999 stalled the event loop for 70 s. Both are refused by the bounded parser in microseconds.
    for absurd in ("1e400", "1e999999", "inf", "NaN"):
        request = annotate(cpx_and_spx(nodes_request), {"aim.amd.com/memory": absurd})
        response = post(http, f"{base_url}/filter", request)
        assert response.status_code == 200
        result = response.json()
        assert result["Nodes"]["items"] == []
        messages = result["FailedAndUnresolvableNodes"].values()
        assert messages and all(m.startswith(f"invalid pod annotation aim.amd.com/memory='{absurd}'") for m in messages)


def test_profile_annotation_sizes_like_model_and_precision(
    http: httpx.Client, base_url: str, nodes_request: dict[str, Any]
) -> None:
    by_profile = annotate(
        cpx_and_spx(nodes_request), {"aim.amd.com/profile": "meta-llama--llama-3.3-70b-instruct--fp16"}
    )
    by_model = annotate(cpx_and_spx(nodes_request), LLAMA_70B_FP16)
    assert post(http, f"{base_url}/filter", by_profile).json() == post(http, f"{base_url}/filter", by_model).json()


@pytest.mark.parametrize(
    ("annotations", "named"),
    [
        ({**LLAMA_8B, "aim.amd.com/precision": "fp7"}, "aim.amd.com/precision='fp7'"),
        ({"aim.amd.com/memory": "lots"}, "aim.amd.com/memory='lots'"),
        ({**LLAMA_8B, "aim.amd.com/max-model-len": "-5"}, "aim.amd.com/max-model-len='-5'"),
        ({"aim.amd.com/precision": "fp16"}, "aim.amd.com/precision"),
    ],
    ids=["unknown precision", "bad memory quantity", "negative context", "precision without a model"],
)
def test_garbled_annotation_rejects_every_node_naming_the_annotation(
    http: httpx.Client, base_url: str, nodes_request: dict[str, Any], annotations: dict[str, str], named: str
) -> None:
    result = post(http, f"{base_url}/filter", annotate(cpx_and_spx(nodes_request), annotations)).json()
    assert result["Nodes"]["items"] == []
    assert set(result["FailedAndUnresolvableNodes"]) == {"fake-gpu-node-1", "fake-gpu-node-2"}
    assert all(named in message for message in result["FailedAndUnresolvableNodes"].values())


def test_node_without_partitions_is_rejected_and_listed(
    http: httpx.Client, base_url: str, nodes_request: dict[str, Any]
) -> None:
    request = cpx_and_spx(nodes_request)
    request["Nodes"]["items"].append(make_node("cpu-only", None, None))
    result = post(http, f"{base_url}/filter", annotate(request, LLAMA_8B)).json()
    assert result["FailedAndUnresolvableNodes"] == {"cpu-only": "node has no gpu partitions"}
    assert len(result["Nodes"]["items"]) == 2


def test_names_request_without_a_node_cache_rejects_every_name_with_the_registration_fix(
    http: httpx.Client, base_url: str, names_request: dict[str, Any]
) -> None:
    result = post(http, f"{base_url}/filter", names_request).json()
    assert result["Nodes"] is None
    assert result["NodeNames"] == []
    assert set(result["FailedNodes"]) == set(names_request["NodeNames"])
    assert all("nodeCacheCapable" in m for m in result["FailedNodes"].values())


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"Nodes": null, "NodeNames": ["a"]}', "no Pod"),
        (b'{"Pod": {}, "Nodes": null, "NodeNames": null}', "neither Nodes nor NodeNames"),
        (b'{"Pod": {}, "NodeNames": [1, 2]}', "NodeNames[0]: Input should be a valid string"),
        (b'{"Pod": {}, "Nodes": {"items": [{"metadata": {}}]}}', "Nodes.items[0] has no metadata.name"),
    ],
    ids=["malformed JSON", "array body", "no Pod", "no nodes at all", "names not strings", "node without name"],
)
@pytest.mark.parametrize("verb", ["filter", "prioritize"])
def test_bad_body_is_http_400_with_a_message(
    http: httpx.Client, base_url: str, verb: str, body: bytes, fragment: str
) -> None:
    reply = http.post(f"{base_url}/{verb}", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    assert fragment in reply.json()["Error"]


def test_lowercase_keys_are_accepted_like_go_does(
    http: httpx.Client, base_url: str, nodes_request: dict[str, Any]
) -> None:
    request = cpx_and_spx(nodes_request)
    lowered = {"pod": request["Pod"], "nodes": request["Nodes"], "nodenames": None}
    result = post(http, f"{base_url}/filter", lowered).json()
    assert len(result["Nodes"]["items"]) == 2


def test_prioritize_prefers_the_partition_the_model_fills_best(
    http: httpx.Client, base_url: str, prioritize_request: dict[str, Any]
) -> None:
    request = annotate(cpx_and_spx(prioritize_request), LLAMA_8B)
    reply = post(http, f"{base_url}/prioritize", request)
    assert reply.status_code == 200
    scores = {item["Host"]: item["Score"] for item in reply.json()}
    assert scores == {"fake-gpu-node-2": 10, "fake-gpu-node-1": 9}
    assert all(set(item) == {"Host", "Score"} for item in reply.json())


def test_prioritize_of_an_unsized_pod_prefers_the_node_with_fewer_free_partitions(
    http: httpx.Client, base_url: str, prioritize_request: dict[str, Any]
) -> None:
    scores = {
        i["Host"]: i["Score"] for i in post(http, f"{base_url}/prioritize", cpx_and_spx(prioritize_request)).json()
    }
    assert scores["fake-gpu-node-1"] > scores["fake-gpu-node-2"]  # 1 free partition vs 8


def test_spread_policy_scores_the_mirror_image(prioritize_request: dict[str, Any], http: httpx.Client) -> None:
    with serve_app(create_app(policy=Policy.SPREAD)) as url:
        request = annotate(cpx_and_spx(prioritize_request), LLAMA_8B)
        scores = {i["Host"]: i["Score"] for i in post(http, f"{url}/prioritize", request).json()}
    assert scores == {"fake-gpu-node-2": 9, "fake-gpu-node-1": 10}


def test_server_timing_header_reports_handler_time(
    http: httpx.Client, base_url: str, nodes_request: dict[str, Any]
) -> None:
    reply = post(http, f"{base_url}/filter", nodes_request)
    timings = dict(part.strip().split(";dur=") for part in reply.headers["Server-Timing"].split(","))
    assert set(timings) == {"app", "cpu"}
    assert 0 < float(timings["app"]) < 1000 and 0 <= float(timings["cpu"]) < 1000


def test_health_and_readiness_without_a_cache(http: httpx.Client, base_url: str) -> None:
    assert http.get(f"{base_url}/healthz").text == "ok"
    assert http.get(f"{base_url}/readyz").status_code == 200


def test_metrics_count_latency_nodes_and_decisions_by_reason(http: httpx.Client, nodes_request: dict[str, Any]) -> None:
    with serve_app(create_app()) as url:
        post(http, f"{url}/filter", annotate(cpx_and_spx(nodes_request), LLAMA_70B_FP16))
        http.post(f"{url}/filter", content=b"{")
        text = http.get(f"{url}/metrics").text
    assert 'aim_extender_request_duration_seconds_count{verb="filter"} 2.0' not in text  # 400s are not timed
    assert 'aim_extender_request_duration_seconds_count{verb="filter"} 1.0' in text
    assert 'aim_extender_request_nodes_sum{verb="filter"} 2.0' in text
    assert 'aim_extender_filter_decisions_total{reason="partition_too_small",result="unresolvable"} 1.0' in text
    assert 'aim_extender_filter_decisions_total{reason="",result="pass"} 1.0' in text
    assert 'aim_extender_bad_requests_total{verb="filter"} 1.0' in text


def test_openapi_document_describes_the_wire_types(http: httpx.Client, base_url: str) -> None:
    document = http.get(f"{base_url}/openapi.json").json()
    assert {"/filter", "/prioritize", "/healthz", "/readyz", "/metrics"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    assert {"Pod", "Nodes", "NodeNames"} <= set(schemas["ExtenderArgs"]["properties"])
    assert {"FailedNodes", "FailedAndUnresolvableNodes", "Error"} <= set(schemas["ExtenderFilterResult"]["properties"])
    body = document["paths"]["/filter"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ExtenderArgs"}
