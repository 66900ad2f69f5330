"""The webhook over real HTTPS, one AdmissionReview per case of issue 12.

Each reply's patch is applied with the ``jsonpatch`` package and the result validated against the
Kubernetes Pod schema or KServe's InferenceService CRD schema; each patched object is reviewed
again and must come back unchanged (reinvocationPolicy: IfNeeded).
"""

from __future__ import annotations

import json
import ssl
import time
from typing import Any

import pytest

from sizing.contract import LABEL_MEMORY_MIB, RESOURCE_NAME
from tests.admission.support import (
    FIXTURES,
    ISVC_KIND,
    POD_KIND,
    RunningWebhook,
    args_of,
    flag_count,
    validate_inference_service,
    validate_pod,
)
from tests.extender.support import HealthProbe, post_chunked, post_declaring
from webhook.review import MAX_BODY_BYTES
from webhook.workload import MAX_CONTAINERS, MAX_MATCH_EXPRESSIONS, MAX_SELECTOR_TERMS, MAX_TOKENS

RECORD = "aim.amd.com/admission"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def post_fixture(webhook: RunningWebhook, name: str) -> tuple[dict[str, Any], Any]:
    body = fixture(name)
    reply = webhook.client.post(webhook.url + "/mutate", json=body)
    assert reply.status_code == 200, reply.text
    review = reply.json()
    assert review["apiVersion"] == "admission.k8s.io/v1" and review["kind"] == "AdmissionReview"
    assert review["response"]["uid"] == body["request"]["uid"]
    from tests.admission.support import decode

    return body["request"]["object"], decode(review)


def memory_expressions(spec: dict[str, Any]) -> list[dict[str, Any]]:
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    return [e for t in terms for e in t["matchExpressions"] if e["key"] == LABEL_MEMORY_MIB]


def test_catalogue_model_pod_gets_partitions_args_affinity_and_a_record(webhook: RunningWebhook) -> None:
    pod, answer = post_fixture(webhook, "review-pod-catalogue-model.json")
    assert answer.allowed and answer.warnings == []
    mutated = answer.applied_to(pod)
    validate_pod(mutated)
    container = mutated["spec"]["containers"][0]
    assert container["resources"]["requests"][RESOURCE_NAME] == "1"
    assert container["resources"]["limits"][RESOURCE_NAME] == "1"
    args = args_of(container)
    assert args["--tensor-parallel-size"] == "1"
    assert args["--max-model-len"] == "8192"
    assert args["--gpu-memory-utilization"] == "0.9"
    assert args["--max-num-batched-tokens"] == "2048"
    assert args["--dtype"] == "float16"
    assert "--quantization" not in args
    assert container["args"][:2] == ["/models/llama-3.1-8b-instruct", "--port=8000"]  # the user's come first
    # Llama 3.1 8B fp16 needs ~18 GiB: the 24 GiB partitions hold it, Gt = MiB needed - 1.
    (expression,) = memory_expressions(mutated["spec"])
    assert expression["operator"] == "Gt"
    needed_mib = int(expression["values"][0]) + 1
    assert 16 * 1024 < needed_mib <= 24 * 1024
    record = json.loads(mutated["metadata"]["annotations"][RECORD])
    assert record["set"]["resources"] == "1"
    assert record["set"]["affinity"] == expression["values"][0]
    assert mutated["metadata"]["annotations"]["aim.amd.com/max-model-len"] == "8192"
    assert "/metadata/annotations/aim.amd.com~1admission" in {op["path"] for op in answer.ops}

    again = webhook.review(POD_KIND, mutated)
    assert again.allowed and again.ops == []


def test_profile_inference_service_gets_runtime_gpu_types_and_quantization(webhook: RunningWebhook) -> None:
    isvc, answer = post_fixture(webhook, "review-isvc-profile.json")
    assert answer.allowed
    mutated = answer.applied_to(isvc)
    validate_inference_service(mutated)
    model = mutated["spec"]["predictor"]["model"]
    assert model["runtime"] == "aim-vllm-rocm"
    assert model["resources"]["limits"][RESOURCE_NAME] == "1"
    args = args_of(model)
    assert args["--quantization"] == "compressed-tensors"  # int8 profile: W8A8 checkpoint
    assert args["--served-model-name"] == "Qwen/Qwen3-8B"
    assert json.loads(mutated["metadata"]["annotations"]["serving.kserve.io/gpu-resource-types"]) == [RESOURCE_NAME]
    assert memory_expressions(mutated["spec"]["predictor"])
    again = webhook.review(ISVC_KIND, mutated, "UPDATE")
    assert again.allowed and again.ops == []


def test_user_values_are_kept_and_the_rest_fills_in(webhook: RunningWebhook) -> None:
    pod, answer = post_fixture(webhook, "review-pod-user-values.json")
    assert answer.allowed
    mutated = answer.applied_to(pod)
    validate_pod(mutated)
    container = mutated["spec"]["containers"][0]
    assert container["resources"]["requests"][RESOURCE_NAME] == "2"
    assert container["resources"]["requests"]["cpu"] == "8"
    for flag in ("--max-model-len", "--tensor-parallel-size", "--gpu-memory-utilization"):
        assert flag_count(container, flag) == (0 if flag == "--tensor-parallel-size" else 1), flag
    assert "-tp" in container["args"]  # the user's short form stays, and is not doubled
    args = args_of(container)
    assert args["--max-model-len"] == "16384" and args["--gpu-memory-utilization"] == "0.95"
    assert args["--quantization"] == "fp8" and args["--max-num-batched-tokens"] == "2048"
    # Every alternative node selector term the user wrote now also requires the partition size.
    affinity = mutated["spec"]["affinity"]["nodeAffinity"]
    terms = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert len(terms) == 2
    assert [e["key"] for e in terms[0]["matchExpressions"]] == ["topology.kubernetes.io/zone", LABEL_MEMORY_MIB]
    assert [e["key"] for e in terms[1]["matchExpressions"]] == ["node.kubernetes.io/instance-type", LABEL_MEMORY_MIB]
    record = json.loads(mutated["metadata"]["annotations"][RECORD])
    assert "resources" not in record["set"] and "args:--max-model-len" not in record["set"]
    # The sizing used the user's context (16384) at the user's 2 partitions; 0.95 < 0.9 is no warning.
    assert "ctx 16384: 2 partitions" in record["sized"]
    assert answer.warnings == []
    assert webhook.review(POD_KIND, mutated).ops == []


def test_a_model_that_fits_no_partition_of_the_cluster_is_warned_about_with_a_fix(webhook: RunningWebhook) -> None:
    isvc, answer = post_fixture(webhook, "review-isvc-fits-nowhere.json")
    assert answer.allowed
    (warning,) = answer.warnings
    assert warning.startswith("meta-llama/Llama-3.3-70B-Instruct fp16 needs 1")
    assert "per partition with 1 partition; the largest partition in this cluster is 48 GiB" in warning
    assert warning.endswith("; fix: precision fp8 on 2 x 48 GiB, or 4 partitions of 48 GiB")
    assert len(warning) <= 256
    mutated = answer.applied_to(isvc)
    validate_inference_service(mutated)
    model = mutated["spec"]["predictor"]["model"]
    assert model["resources"]["limits"][RESOURCE_NAME] == "1"  # the user's count is never changed


def test_a_garbage_annotation_is_denied_naming_it(webhook: RunningWebhook) -> None:
    _, answer = post_fixture(webhook, "review-pod-garbage-annotation.json")
    assert not answer.allowed
    status = answer.response["status"]
    assert status["code"] == 400
    assert "aim.amd.com/max-model-len" in status["message"] and "ASCII digits" in status["message"]
    assert answer.ops == []


@pytest.mark.parametrize("annotations, expected", [
    ({"aim.amd.com/model": "Llama-9-405B-Imaginary"}, "unknown model"),
    ({"aim.amd.com/model": "meta-llama/Llama-3.1-8B-Instruct", "aim.amd.com/precision": "fp7"}, "unknown precision"),
    ({"aim.amd.com/model": "../../etc/passwd"}, "is not a model id"),
    ({"aim.amd.com/model": "x" * 5000}, "is longer than 256 characters"),  # decision.pod_demand.annotation_text
    ({"aim.amd.com/profile": "no-such-profile"}, "unknown AIM profile"),
    ({"aim.amd.com/model": "meta-llama/Llama-3.1-8B-Instruct", "aim.amd.com/max-model-len": "1e400"}, "ASCII digits"),
    ({"aim.amd.com/model": "meta-llama/Llama-3.1-8B-Instruct", "aim.amd.com/max-model-len": "999999"}, "exceeds"),
    ({"aim.amd.com/model": "meta-llama/Llama-3.1-8B-Instruct", "aim.amd.com/memory": "inf"}, "aim.amd.com/memory"),
])
def test_garbage_annotations_are_denied_with_a_message_naming_the_problem(
        webhook: RunningWebhook, annotations: dict[str, str], expected: str) -> None:
    pod = fixture("review-pod-catalogue-model.json")["request"]["object"]
    pod["metadata"]["annotations"] = annotations
    answer = webhook.review(POD_KIND, pod)
    assert not answer.allowed
    assert expected in answer.response["status"]["message"]
    assert len(answer.response["status"]["message"]) < 400


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b'{"kind": "AdmissionReview"}',
    b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 7}}',
    b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": ' + b"[" * 5000 + b"]" * 5000 + b"}",
])
def test_a_body_that_is_no_admission_review_is_400_never_500(webhook: RunningWebhook, body: bytes) -> None:
    reply = webhook.client.post(webhook.url + "/mutate", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    assert "error" in reply.json()


def test_objects_without_the_model_annotation_and_other_kinds_pass_untouched(webhook: RunningWebhook) -> None:
    pod = fixture("review-pod-catalogue-model.json")["request"]["object"]
    pod["metadata"]["annotations"] = {"team": "a"}
    answer = webhook.review(POD_KIND, pod)
    assert answer.allowed and answer.ops == [] and answer.warnings == []
    other = webhook.review({"group": "apps", "version": "v1", "kind": "Deployment"}, {"metadata": {}})
    assert other.allowed and other.ops == []


def test_a_models_directory_model_is_sized_like_a_catalogue_model(webhook: RunningWebhook) -> None:
    isvc, answer = post_fixture(webhook, "review-isvc-models-directory.json")
    assert answer.allowed and answer.warnings == []
    mutated = answer.applied_to(isvc)
    validate_inference_service(mutated)
    model = mutated["spec"]["predictor"]["model"]
    args = args_of(model)
    # The context came from spec.predictor.annotations (KServe copies them onto the pod, last).
    assert args["--max-model-len"] == "16384"
    assert "--dtype" not in args and "--quantization" not in args  # 16-bit, no precision given: vLLM's auto
    assert model["resources"]["limits"][RESOURCE_NAME] == "1"
    record = json.loads(mutated["metadata"]["annotations"][RECORD])
    assert record["sized"].startswith("example-org/mistral-7b-base fp16 ctx 16384: 1 partition")


def test_a_pre_quantized_checkpoint_is_sized_as_it_declares(webhook: RunningWebhook) -> None:
    pod, answer = post_fixture(webhook, "review-pod-prequantized.json")
    assert answer.allowed and answer.warnings == []
    mutated = answer.applied_to(pod)
    validate_pod(mutated)
    container = mutated["spec"]["containers"][0]
    args = args_of(container)
    assert args["--quantization"] == "awq"  # the checkpoint's own method, not compressed-tensors
    assert "--dtype" not in args
    record = json.loads(mutated["metadata"]["annotations"][RECORD])
    assert record["sized"].startswith("jmurphy97/mistral-7b-awq int4 ctx 8192: 1 partition of at least 7.")
    # The same model with a precision that contradicts the checkpoint is refused, naming both.
    pod["metadata"]["annotations"]["aim.amd.com/precision"] = "fp16"
    refused = webhook.review(POD_KIND, pod)
    assert not refused.allowed
    assert "contradicts jmurphy97/mistral-7b-awq" in refused.response["status"]["message"]
    assert "awq int4" in refused.response["status"]["message"]


def test_an_update_recomputes_the_webhooks_values_and_keeps_the_users(webhook: RunningWebhook) -> None:
    isvc, answer = post_fixture(webhook, "review-isvc-profile.json")
    first = answer.applied_to(isvc)
    model = first["spec"]["predictor"]["model"]
    model["args"].append("--max-num-seqs=64")  # the user's own value, written after the webhook's
    del model["args"][[a.startswith("--max-num-seqs=256") for a in model["args"]].index(True)]
    first["metadata"]["annotations"]["aim.amd.com/profile"] = "qwen--qwen3-32b--fp16"
    answer = webhook.review(ISVC_KIND, first, "UPDATE")
    updated = answer.applied_to(first)
    validate_inference_service(updated)
    model = updated["spec"]["predictor"]["model"]
    args = args_of(model)
    assert model["resources"]["limits"][RESOURCE_NAME] == args["--tensor-parallel-size"] == "2"
    assert args["--max-num-seqs"] == "64"  # the user's, kept
    assert "--quantization" not in args or args["--quantization"] != "compressed-tensors"
    assert flag_count(model, "--tensor-parallel-size") == 1
    (expression,) = memory_expressions(updated["spec"]["predictor"])
    assert json.loads(updated["metadata"]["annotations"][RECORD])["set"]["affinity"] == expression["values"][0]


# --- issue 18: hostile objects and bodies -------------------------------------------------------

PARTITIONS = f"resources.limits[{RESOURCE_NAME}]"


def deep(levels: int) -> str:
    """A stand-in string that ``spliced`` replaces with an array nested ``levels`` deep."""
    return f"\x00deep:{levels}\x00"


def spliced(body: dict[str, Any]) -> bytes:
    """The review as JSON text with each ``deep`` stand-in spliced in (no encoder writes 1,000 levels)."""
    text = json.dumps(body)
    while '"\\u0000deep:' in text:
        start = text.index('"\\u0000deep:')
        end = text.index('\\u0000"', start) + len('\\u0000"')
        levels = int(text[start + len('"\\u0000deep:'): end - len('\\u0000"')])
        text = text[:start] + "[" * levels + '"1"' + "]" * levels + text[end:]
    return text.encode()


def post_raw(webhook: RunningWebhook, body: bytes) -> Any:
    reply = webhook.client.post(webhook.url + "/mutate", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 200, reply.text[:300]
    from tests.admission.support import decode

    return decode(reply.json())


@pytest.mark.parametrize("kind", ["limits", "requests"])
@pytest.mark.parametrize("value", ["2_0", True, "1.5", "", "-1", "2Gi", 1.0, {"n": 1}])
def test_a_partition_count_that_is_no_count_is_denied_naming_the_field(
        webhook: RunningWebhook, kind: str, value: object) -> None:
    """Before, the value was copied into the patch as the other half ("2_0" -> requests "2_0")."""
    body = fixture("review-pod-catalogue-model.json")
    body["request"]["object"]["spec"]["containers"][0]["resources"] = {kind: {RESOURCE_NAME: value}}
    answer = post_raw(webhook, json.dumps(body).encode())
    assert not answer.allowed and answer.ops == []
    message = answer.response["status"]["message"]
    assert message.startswith(f"spec.containers[0].resources.{kind}[{RESOURCE_NAME}]="), message
    assert 'give a whole number of partitions such as "1"' in message


def test_a_partition_count_in_an_inference_service_is_denied_naming_its_field(webhook: RunningWebhook) -> None:
    body = fixture("review-isvc-profile.json")
    body["request"]["object"]["spec"]["predictor"]["model"]["resources"] = {"limits": {RESOURCE_NAME: "2_0"}}
    answer = post_raw(webhook, json.dumps(body).encode())
    assert not answer.allowed
    assert answer.response["status"]["message"].startswith(f"spec.predictor.model.{PARTITIONS}='2_0'")


@pytest.mark.parametrize("place", ["count", "affinity value", "runtime", "model format", "record", "gpu types"])
def test_nesting_a_thousand_levels_deep_where_the_webhook_reads_is_never_a_500(
        webhook: RunningWebhook, place: str) -> None:
    """json.dumps/json.loads raised RecursionError (HTTP 500) on these; each now gets an answer."""
    name = "review-isvc-profile.json" if place in ("runtime", "model format", "gpu types") else \
        "review-pod-user-values.json"
    body = fixture(name)
    obj = body["request"]["object"]
    notes = obj["metadata"]["annotations"]
    if place == "count":
        obj["spec"]["containers"][0]["resources"]["limits"][RESOURCE_NAME] = deep(1000)
    elif place == "affinity value":
        terms = obj["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        terms["nodeSelectorTerms"][0]["matchExpressions"].append(
            {"key": LABEL_MEMORY_MIB, "operator": "Gt", "values": [deep(990)]})
    elif place == "runtime":
        obj["spec"]["predictor"]["model"]["runtime"] = deep(1000)
    elif place == "model format":
        obj["spec"]["predictor"]["model"]["modelFormat"] = {"name": deep(1000)}
    elif place == "record":
        notes[RECORD] = "[" * 10000
    else:
        notes["serving.kserve.io/gpu-resource-types"] = "[" * 4000
    answer = post_raw(webhook, spliced(body))
    if place == "count":
        assert not answer.allowed
        assert answer.response["status"]["message"].startswith(f"spec.containers[0].{PARTITIONS}=<list>")
    else:
        assert answer.allowed  # the nested value is the user's: kept, and the rest is sized
        assert any(op["path"].endswith("aim.amd.com~1admission") for op in answer.ops)


@pytest.mark.parametrize("where, count, field", [
    ("containers", 1_000_000, "spec.containers"),
    ("args", 5000, "spec.containers[0].args"),
    ("terms", 5000, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"),
    ("expressions", 5000, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
                          ".nodeSelectorTerms[1].matchExpressions"),
])
def test_a_list_over_its_bound_is_denied_naming_the_field_while_health_stays_live(
        webhook: RunningWebhook, where: str, count: int, field: str) -> None:
    """One million containers held the event loop 3-7 s (review() walked them on it)."""
    body = fixture("review-pod-user-values.json")
    spec = body["request"]["object"]["spec"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    if where == "containers":
        spec["containers"] += [{}] * (count - 1)
    elif where == "args":
        spec["containers"][0]["args"] = ["-"] * count
    elif where == "terms":
        terms[:] = [{}] * count
    else:
        terms[1]["matchExpressions"] = [{}] * count
    raw = json.dumps(body).encode()
    context = ssl.create_default_context(cafile=str(webhook.tls.ca))
    with HealthProbe(webhook.url, verify=context) as probe:
        time.sleep(0.1)
        started = time.perf_counter()
        answer = post_raw(webhook, raw)
        seconds = time.perf_counter() - started
        time.sleep(0.1)
    assert not answer.allowed and answer.ops == []
    assert answer.response["status"]["message"] == (f"{field} has {count} items, more than the"
                                                    f" {LIMITS[where]} the aim-gpu-sharing webhook reads")
    assert seconds < 2.0, f"the review took {seconds:.2f} s"
    assert probe.failures == [] and probe.probes >= 3
    assert probe.slowest < 1.0, f"/healthz took {probe.slowest:.2f} s"


LIMITS = {"containers": MAX_CONTAINERS, "args": MAX_TOKENS, "terms": MAX_SELECTOR_TERMS,
          "expressions": MAX_MATCH_EXPRESSIONS}


def test_lists_at_their_bound_are_still_sized(webhook: RunningWebhook) -> None:
    body = fixture("review-pod-user-values.json")
    spec = body["request"]["object"]["spec"]
    spec["containers"] += [{"name": f"sidecar-{i}", "image": "busybox"} for i in range(MAX_CONTAINERS - 1)]
    answer = post_raw(webhook, json.dumps(body).encode())
    assert answer.allowed and answer.ops


def test_a_refused_connection_keeps_taking_the_body_for_a_while_over_tls(webhook: RunningWebhook) -> None:
    # As the extender's test_a_refused_connection_keeps_taking_the_body_for_a_while_before_it_closes;
    # over TLS asyncio's shutdown waited for the peer before the webhook lingered too: this guards it.
    context = ssl.create_default_context(cafile=str(webhook.tls.ca))
    chunk = 64 << 10
    reply = post_chunked(webhook.url, "/mutate", MAX_BODY_BYTES + 2 * chunk, chunk=chunk, tls=context,
                         keep_sending=MAX_BODY_BYTES // 16)
    assert reply.status == 413 and "a chunked body is over the limit" in json.loads(reply.body)["error"]
    assert reply.sent_after == MAX_BODY_BYTES // 16, f"the connection failed {reply.sent_after} bytes after the 413"


def test_a_body_over_the_limit_is_413_by_its_declared_length_or_while_it_streams(webhook: RunningWebhook) -> None:
    context = ssl.create_default_context(cafile=str(webhook.tls.ca))
    declared = post_declaring(webhook.url, "/mutate", 94_000_000, tls=context)
    assert declared.status == 413 and declared.seconds < 1.0
    assert "Content-Length 94000000 is over the limit" in json.loads(declared.body)["error"]
    total = 8 * MAX_BODY_BYTES
    with HealthProbe(webhook.url, verify=context) as probe:
        streamed = post_chunked(webhook.url, "/mutate", total, tls=context)
    assert streamed.status == 413 and "a chunked body is over the limit" in json.loads(streamed.body)["error"]
    assert streamed.sent < total // 2, f"refused after {streamed.sent} of {total} bytes"
    assert probe.failures == [] and probe.slowest < 1.0
