"""DRA mode of the webhook: a ResourceClaimTemplate annotated with the model gets one device
request whose firstAvailable subrequests are bands of partition sizes, smallest first, each a CEL
selector on the partition's memory capacity. Reviews go through the webhook served under uvicorn
over HTTPS with the AdmissionReview the API server sends; that kube-scheduler then allocates the
smallest fitting partition is test_dra_controlplane.py."""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from sizing import Precision
from sizing.contract import DRA_DEVICE_CLASS, DRA_DRIVER
from tests.admission.support import (
    RunningWebhook,
    args_of,
    decode,
    inventory_of,
    partition_labels,
    serve_webhook,
)
from webhook.choice import Target, decide
from webhook.dra import MAX_SUBREQUESTS, device_request
from webhook.inventory import Offer, PartitionInventory
from webhook.models import catalogue_model

KIND = {"group": "resource.k8s.io", "version": "v1", "kind": "ResourceClaimTemplate"}
MIB = 1 << 20
MODEL_14B = "Qwen/Qwen2.5-14B-Instruct"
BAND = re.compile(r'm\.memory\.compareTo\(quantity\("(\d+)"\)\) >= 0'
                  r'(?: && m\.memory\.compareTo\(quantity\("(\d+)Mi"\)\) < 0)?\)$')


def template(annotations: dict[str, str], spec: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
            "metadata": {"name": "llm", "namespace": "team-a", "annotations": annotations},
            "spec": {"spec": spec if spec is not None else {"devices": {}}}}


def review(webhook: RunningWebhook, obj: dict[str, Any], operation: str = "CREATE") -> tuple[dict[str, Any], Any]:
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "kind": KIND, "requestKind": KIND,
        "resource": {"group": "resource.k8s.io", "version": "v1", "resource": "resourceclaimtemplates"},
        "namespace": "team-a", "operation": operation, "userInfo": {"username": "alice"},
        "object": copy.deepcopy(obj), "oldObject": None, "dryRun": False}}
    reply = webhook.client.post(webhook.url + "/mutate", json=body)
    assert reply.status_code == 200, reply.text
    answer = decode(reply.json())
    assert answer.response["uid"] == body["request"]["uid"]
    return jsonpatch.apply_patch(copy.deepcopy(obj), answer.ops), answer


def bands(request: dict[str, Any]) -> list[tuple[int, int | None]]:
    """(need bytes, upper bound MiB or None) of each subrequest, in order."""
    out = []
    for sub in request["firstAvailable"]:
        (selector,) = sub["selectors"]
        expression = selector["cel"]["expression"]
        assert expression.startswith(f'cel.bind(m, device.capacity["{DRA_DRIVER}"], "memory" in m && ')
        found = BAND.search(expression)
        assert found, expression
        out.append((int(found.group(1)), int(found.group(2)) if found.group(2) else None))
    return out


@pytest.fixture
def webhook(tmp_path: Path) -> Iterator[RunningWebhook]:
    # A cluster with 24, 48 and 192 GiB partitions (labels as the device plugin writes them).
    inventory: PartitionInventory = inventory_of(cpx=partition_labels("MI300X", "CPX", 24, 8),
                                                 qpx=partition_labels("MI300X", "QPX", 48, 4),
                                                 spx=partition_labels("MI300X", "SPX", 192, 1))
    with serve_webhook(tmp_path, inventory) as running:
        yield running


def test_template_gets_bands_of_sizes_smallest_first(webhook: RunningWebhook) -> None:
    # Qwen2.5-14B fp16 at 8k context needs ~34.5 GiB: 24 GiB is too small, 48 GiB is the smallest fit.
    mutated, answer = review(webhook, template({"aim.amd.com/model": "Qwen/Qwen2.5-14B-Instruct"}))
    assert answer.allowed
    (request,) = mutated["spec"]["spec"]["devices"]["requests"]
    assert request["name"] == "gpu" and "exactly" not in request
    subs = request["firstAvailable"]
    assert 2 <= len(subs) <= MAX_SUBREQUESTS
    assert all(s["deviceClassName"] == DRA_DEVICE_CLASS and s["count"] == 1 and s["allocationMode"] == "ExactCount"
               for s in subs)
    found = bands(request)
    need = found[0][0]
    assert 24 * 1024 * MIB < need < 48 * 1024 * MIB
    assert {n for n, _ in found} == {need}
    uppers = [u for _, u in found]
    assert uppers[-1] is None, "the last subrequest takes any larger size"
    bounded = [u for u in uppers if u is not None]
    assert bounded == sorted(bounded) and len(set(bounded)) == len(bounded)
    assert bounded[0] * MIB > need
    # The 48 GiB partition is in a band before the 192 GiB one.
    first_48 = next(i for i, u in enumerate(uppers) if u is None or u * MIB > 48 * 1024 * MIB)
    first_192 = next(i for i, u in enumerate(uppers) if u is None or u * MIB > 192 * 1024 * MIB)
    assert first_48 < first_192
    assert len({s["name"] for s in subs}) == len(subs)
    record = json.loads(mutated["metadata"]["annotations"]["aim.amd.com/admission"])
    assert "Qwen/Qwen2.5-14B-Instruct" in record["sized"] and "requests" in record["set"]


def test_count_is_the_partition_count_the_model_needs(webhook: RunningWebhook) -> None:
    # Llama-3.3-70B fp16 (~141 GiB of weights): whatever count sizing chose, every subrequest asks
    # for that many devices and the record says it.
    mutated, answer = review(webhook, template({"aim.amd.com/model": "meta-llama/Llama-3.3-70B-Instruct",
                                                "aim.amd.com/precision": "fp16"}))
    assert answer.allowed
    (request,) = mutated["spec"]["spec"]["devices"]["requests"]
    counts = {s["count"] for s in request["firstAvailable"]}
    assert len(counts) == 1 and counts.pop() >= 1
    record = json.loads(mutated["metadata"]["annotations"]["aim.amd.com/admission"])
    assert record["set"]["requests"].startswith(f"{request['firstAvailable'][0]['count']}x")


def test_memory_annotation_sets_the_need(webhook: RunningWebhook) -> None:
    mutated, _ = review(webhook, template({"aim.amd.com/model": "Qwen/Qwen2.5-14B-Instruct",
                                           "aim.amd.com/memory": "100Gi"}))
    (request,) = mutated["spec"]["spec"]["devices"]["requests"]
    assert {n for n, _ in bands(request)} == {100 << 30}


def test_no_spec_devices_is_created(webhook: RunningWebhook) -> None:
    mutated, answer = review(webhook, template({"aim.amd.com/model": "Qwen/Qwen2.5-14B-Instruct"}, spec={}))
    assert answer.allowed and len(mutated["spec"]["spec"]["devices"]["requests"]) == 1


def test_users_requests_are_kept_with_a_warning(webhook: RunningWebhook) -> None:
    own = {"devices": {"requests": [{"name": "mine", "exactly": {"deviceClassName": DRA_DEVICE_CLASS}}]}}
    mutated, answer = review(webhook, template({"aim.amd.com/model": "Qwen/Qwen2.5-14B-Instruct"}, spec=own))
    assert answer.allowed and answer.ops == [] and mutated["spec"]["spec"] == own
    assert any("keeps it" in w for w in answer.warnings)


def test_unannotated_template_and_updates_pass_untouched(webhook: RunningWebhook) -> None:
    plain = template({})
    _, answer = review(webhook, plain)
    assert answer.allowed and answer.ops == []
    _, answer = review(webhook, template({"aim.amd.com/model": "Qwen/Qwen2.5-14B-Instruct"}), operation="UPDATE")
    assert answer.allowed and answer.ops == []


@pytest.mark.parametrize(("annotations", "field"), [
    ({"aim.amd.com/model": "no-such/model"}, "aim.amd.com/model"),
    ({"aim.amd.com/model": "Qwen/Qwen2.5-14B-Instruct", "aim.amd.com/precision": "fp3"}, "aim.amd.com/precision"),
    ({"aim.amd.com/model": "Qwen/Qwen2.5-14B-Instruct", "aim.amd.com/memory": "lots"}, "aim.amd.com/memory"),
    ({"aim.amd.com/model": "Qwen/Qwen2.5-14B-Instruct", "aim.amd.com/max-model-len": "9" * 40},
     "aim.amd.com/max-model-len"),
])
def test_unreadable_annotation_is_denied_naming_it(webhook: RunningWebhook, annotations: dict[str, str],
                                                   field: str) -> None:
    _, answer = review(webhook, template(annotations))
    assert not answer.allowed
    assert field in answer.response["status"]["message"]


def test_spec_that_is_not_an_object_is_denied(webhook: RunningWebhook) -> None:
    obj = template({"aim.amd.com/model": "Qwen/Qwen2.5-14B-Instruct"})
    obj["spec"]["spec"] = ["not", "an", "object"]
    _, answer = review(webhook, obj)
    assert not answer.allowed and "spec.spec" in answer.response["status"]["message"]


def test_at_most_eight_subrequests_however_many_sizes_exist() -> None:
    model = catalogue_model("Qwen/Qwen2.5-14B-Instruct")
    offers = tuple(Offer((36 + i) << 30, 8) for i in range(40))  # 40 distinct sizes that hold it
    choice = decide(Target(model, Precision.FP16, partitions=2), offers).choice
    assert choice is not None
    request = device_request(choice, offers)
    assert len(request["firstAvailable"]) == MAX_SUBREQUESTS
    assert request["firstAvailable"][-1]["name"] == "any-size"
    assert {s["count"] for s in request["firstAvailable"]} == {2}


POD_KIND = {"group": "", "version": "v1", "kind": "Pod"}
MODEL_14B_NOTES = {"aim.amd.com/model": MODEL_14B, "aim.amd.com/precision": "fp16"}


def dra_pod(annotations: dict[str, str], args: list[str] | None = None) -> dict[str, Any]:
    """A pod that takes its partitions from a claim of the template ``llm`` (docs/dra.md)."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "llm", "namespace": "team-a", "annotations": dict(annotations)},
            "spec": {"resourceClaims": [{"name": "gpu", "resourceClaimTemplateName": "llm"}],
                     "containers": [{"name": "vllm", "image": "vllm/vllm-openai", "command": ["vllm", "serve"],
                                     "args": ["/models/qwen2.5-14b", *(args or [])],
                                     "resources": {"claims": [{"name": "gpu"}]}}]}}


def test_annotated_pod_with_claims_gets_the_vllm_args_its_template_was_sized_for(webhook: RunningWebhook) -> None:
    """DRA mode: the pod's vLLM arguments are the ones the device-plugin mode writes for the same pod,
    at the tensor-parallel size its template asks devices for; no amd.com/gpu-partition requests and
    no partition-label affinity (a second allocation, or labels a DRA-only node does not carry)."""
    # CPX only: Qwen2.5-14B fp16 (~34.5 GiB at 8k) takes 2 partitions of 24 GiB.
    webhook.inventory.replace_all({"cpx": partition_labels("MI300X", "CPX", 24, 8)})
    claim, _ = review(webhook, template(MODEL_14B_NOTES))
    (request,) = claim["spec"]["spec"]["devices"]["requests"]
    count = request["firstAvailable"][0]["count"]
    assert count == 2
    pod = dra_pod(MODEL_14B_NOTES)
    answer = webhook.review(POD_KIND, pod)
    assert answer.allowed, answer.response
    mutated = answer.applied_to(pod)
    container = mutated["spec"]["containers"][0]
    args = args_of(container)
    assert args["--tensor-parallel-size"] == str(count)
    assert {"--max-model-len", "--gpu-memory-utilization"} <= set(args)
    assert container["resources"] == {"claims": [{"name": "gpu"}]}
    assert "affinity" not in mutated["spec"] and "schedulerName" not in mutated["spec"]
    assert mutated["spec"]["resourceClaims"] == pod["spec"]["resourceClaims"]
    assert "DRA" in json.loads(mutated["metadata"]["annotations"]["aim.amd.com/admission"])["sized"]
    # Exactly the arguments the device-plugin mode writes for the pod without the claim.
    native = copy.deepcopy(pod)
    del native["spec"]["resourceClaims"]
    native["spec"]["containers"][0]["resources"] = {}
    native_answer = webhook.review(POD_KIND, native)
    native_mutated = native_answer.applied_to(native)
    assert native_mutated["spec"]["containers"][0]["args"] == container["args"]
    assert native_mutated["spec"]["containers"][0]["resources"]["limits"]["amd.com/gpu-partition"] == str(count)
    # Reinvocation: nothing more to do.
    assert webhook.review(POD_KIND, mutated).ops == []


def test_a_dra_pod_keeps_the_users_own_flags_and_is_told_when_they_disagree(webhook: RunningWebhook) -> None:
    webhook.inventory.replace_all({"cpx": partition_labels("MI300X", "CPX", 24, 8)})
    pod = dra_pod(MODEL_14B_NOTES, ["--tensor-parallel-size=4", "--max-model-len=4096"])
    answer = webhook.review(POD_KIND, pod)
    assert answer.allowed
    args = args_of(answer.applied_to(pod)["spec"]["containers"][0])
    assert args["--tensor-parallel-size"] == "4" and args["--max-model-len"] == "4096"
    assert any("asks for 2 partition(s) (DRA mode)" in w and "runs 4 tensor-parallel ranks" in w
               for w in answer.warnings), answer.warnings
    assert any("give it aim.amd.com/max-model-len=4096 too" in w for w in answer.warnings), answer.warnings
    # The same context as an annotation reaches the template as well: no such warning.
    pod = dra_pod({**MODEL_14B_NOTES, "aim.amd.com/max-model-len": "4096"}, ["--max-model-len=4096"])
    assert not any("ResourceClaimTemplate is sized" in w for w in webhook.review(POD_KIND, pod).warnings)


def test_a_dra_pod_that_does_not_run_vllm_gets_no_args(webhook: RunningWebhook) -> None:
    pod = dra_pod(MODEL_14B_NOTES)
    pod["spec"]["containers"][0].update(image="busybox", command=["sleep"], args=["3600"])
    answer = webhook.review(POD_KIND, pod)
    assert answer.allowed
    mutated = answer.applied_to(pod)
    assert mutated["spec"]["containers"][0] == pod["spec"]["containers"][0]
    assert "affinity" not in mutated["spec"]
