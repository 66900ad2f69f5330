"""The mutation rules beyond the issue's cases, in process (``review`` on the request bytes): KServe's
predictor pods, runtimes and model formats, the scheduler name, the memory override, partitions
that exist nowhere yet, and objects the webhook cannot write into."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson

from sizing.contract import LABEL_MEMORY_MIB, RESOURCE_NAME
from tests.admission.support import (
    FIXTURES,
    ISVC_KIND,
    POD_KIND,
    Answer,
    args_of,
    decode,
    demo_inventory,
    review_request,
    validate_inference_service,
    validate_pod,
)
from webhook.inventory import PartitionInventory
from webhook.mutation import Options
from webhook.review import review

RECORD = "aim.amd.com/admission"


def fixture_object(name: str) -> dict[str, Any]:
    return copy.deepcopy(json.loads((FIXTURES / name).read_text())["request"]["object"])


def answer(kind: dict[str, str], obj: dict[str, Any], options: Options | None = None,
           inventory: PartitionInventory | None = None, operation: str = "CREATE") -> Answer:
    reply = review(orjson.dumps(review_request(kind, obj, operation)), (inventory or demo_inventory()).offers,
                   options or Options())
    assert reply.status == 200
    return decode(json.loads(reply.body))


def test_a_predictor_pod_of_an_inference_service_the_webhook_sized_is_left_alone() -> None:
    isvc = fixture_object("review-isvc-profile.json")
    sized = answer(ISVC_KIND, isvc).applied_to(isvc)
    pod = fixture_object("review-pod-catalogue-model.json")
    pod["metadata"]["labels"]["serving.kserve.io/inferenceservice"] = "qwen3-8b"
    pod["metadata"]["annotations"] = dict(sized["metadata"]["annotations"])  # KServe copies them
    result = answer(POD_KIND, pod)
    assert result.allowed and result.ops == []
    # Without the record (the InferenceService was not sized, e.g. created while the webhook was
    # off), the pod is sized itself.
    del pod["metadata"]["annotations"][RECORD]
    assert answer(POD_KIND, pod).ops


def test_an_inference_service_with_another_model_format_gets_no_runtime_and_a_warning() -> None:
    isvc = fixture_object("review-isvc-profile.json")
    isvc["spec"]["predictor"]["model"]["modelFormat"] = {"name": "huggingface"}
    result = answer(ISVC_KIND, isvc)
    mutated = result.applied_to(isvc)
    validate_inference_service(mutated)
    assert "runtime" not in mutated["spec"]["predictor"]["model"]
    (warning,) = result.warnings
    assert "modelFormat.name='huggingface'" in warning and "runs on CPU" in warning


def test_a_named_runtime_is_kept_and_a_missing_model_format_is_filled_in() -> None:
    isvc = fixture_object("review-isvc-profile.json")
    isvc["spec"]["predictor"]["model"]["runtime"] = "my-runtime"
    mutated = answer(ISVC_KIND, isvc).applied_to(isvc)
    assert mutated["spec"]["predictor"]["model"]["runtime"] == "my-runtime"
    isvc = fixture_object("review-isvc-profile.json")
    del isvc["spec"]["predictor"]["model"]["modelFormat"]
    mutated = answer(ISVC_KIND, isvc).applied_to(isvc)
    validate_inference_service(mutated)
    assert mutated["spec"]["predictor"]["model"]["modelFormat"] == {"name": "vllm-rocm"}
    assert mutated["spec"]["predictor"]["model"]["runtime"] == "aim-vllm-rocm"


def test_a_gpu_resource_types_annotation_without_our_resource_is_kept_with_a_warning() -> None:
    isvc = fixture_object("review-isvc-profile.json")
    isvc["metadata"]["annotations"]["serving.kserve.io/gpu-resource-types"] = '["amd.com/gpu"]'
    result = answer(ISVC_KIND, isvc)
    assert result.applied_to(isvc)["metadata"]["annotations"]["serving.kserve.io/gpu-resource-types"] == \
        '["amd.com/gpu"]'
    assert any("does not list amd.com/gpu-partition" in w for w in result.warnings)


def test_a_custom_container_predictor_is_mutated_in_its_first_container() -> None:
    isvc = fixture_object("review-isvc-profile.json")
    isvc["spec"]["predictor"] = {"containers": [{"name": "kserve-container", "image": "rocm/vllm:latest",
                                                 "args": ["--model=/mnt/models"]}]}
    mutated = answer(ISVC_KIND, isvc).applied_to(isvc)
    validate_inference_service(mutated)
    container = mutated["spec"]["predictor"]["containers"][0]
    assert container["resources"]["limits"][RESOURCE_NAME] == "1"
    assert args_of(container)["--tensor-parallel-size"] == "1"


def test_the_scheduler_name_is_set_only_where_the_user_named_none() -> None:
    options = Options(scheduler_name="aim-gpu-scheduler")
    pod = fixture_object("review-pod-catalogue-model.json")  # the API server's default-scheduler
    assert answer(POD_KIND, pod, options).applied_to(pod)["spec"]["schedulerName"] == "aim-gpu-scheduler"
    pod["spec"]["schedulerName"] = "volcano"
    assert answer(POD_KIND, pod, options).applied_to(pod)["spec"]["schedulerName"] == "volcano"
    isvc = fixture_object("review-isvc-profile.json")
    assert answer(ISVC_KIND, isvc, options).applied_to(isvc)["spec"]["predictor"]["schedulerName"] == \
        "aim-gpu-scheduler"
    plain = fixture_object("review-pod-catalogue-model.json")
    assert answer(POD_KIND, plain).applied_to(plain)["spec"]["schedulerName"] == "default-scheduler"  # off by default


def test_the_memory_annotation_sets_the_partition_size_needed() -> None:
    pod = fixture_object("review-pod-catalogue-model.json")
    pod["metadata"]["annotations"]["aim.amd.com/memory"] = "40Gi"
    mutated = answer(POD_KIND, pod).applied_to(pod)
    validate_pod(mutated)
    terms = mutated["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (expression,) = terms["nodeSelectorTerms"][0]["matchExpressions"]
    assert expression == {"key": LABEL_MEMORY_MIB, "operator": "Gt", "values": [str(40 * 1024 - 1)]}


def test_before_any_node_is_labelled_the_known_gpus_are_used_and_said_so() -> None:
    pod = fixture_object("review-pod-catalogue-model.json")
    result = answer(POD_KIND, pod, inventory=PartitionInventory())
    (warning,) = result.warnings
    assert warning.startswith("no node advertises amd.com/gpu-partition partition labels yet")
    mutated = result.applied_to(pod)
    assert mutated["spec"]["containers"][0]["resources"]["limits"][RESOURCE_NAME] == "1"


def test_a_model_no_partition_holds_is_denied_with_the_fix() -> None:
    """Admitted, it could only wait forever (or, without our affinity, be placed by count on a
    partition too small): denied, naming the need, the largest partition there is and the fix."""
    pod = fixture_object("review-pod-catalogue-model.json")
    pod["metadata"]["annotations"] = {"aim.amd.com/model": "Qwen/Qwen3-235B-A22B", "aim.amd.com/precision": "fp16"}
    pod["spec"]["containers"][0]["resources"] = {"limits": {RESOURCE_NAME: "1"}}
    result = answer(POD_KIND, pod)
    assert not result.allowed and result.ops == []
    message = result.review["response"]["status"]["message"]
    assert message.startswith("Qwen/Qwen3-235B-A22B fp16 needs ")
    assert "per partition with 1 partition; the largest partition of any known GPU is 288 GiB" in message
    assert message.endswith("; fix: precision fp8 on 1 x 256 GiB, or 2 partitions of 256 GiB")


def test_a_model_a_node_of_known_gpus_holds_with_several_partitions_waits_for_one() -> None:
    """Qwen3-235B fp16 needs ~491 GiB on 1 partition, ~245 GiB on 2: no partition of the demo cluster
    (24 and 48 GiB) holds it, but a node of known GPUs with several partitions does (2 x 288 GiB
    MI355X SPX), so it is admitted to wait (the partitioner sees the demand), not denied as if no GPU
    held it (the known offers once counted the partitions of one GPU, so the count-2 need was "not held")."""
    pod = fixture_object("review-pod-catalogue-model.json")
    pod["metadata"]["annotations"] = {"aim.amd.com/model": "Qwen/Qwen3-235B-A22B", "aim.amd.com/precision": "fp16"}
    result = answer(POD_KIND, pod)
    assert result.allowed, result.review["response"].get("status")
    assert any("it waits for a node that holds it" in w for w in result.warnings), result.warnings
    mutated = result.applied_to(pod)
    assert mutated["spec"]["containers"][0]["resources"]["limits"][RESOURCE_NAME] == "2"


def test_objects_with_nowhere_to_write_pass_with_a_warning() -> None:
    pod = fixture_object("review-pod-catalogue-model.json")
    pod["spec"]["containers"][0]["args"] = {"not": "a list"}
    result = answer(POD_KIND, pod)
    assert result.allowed and result.ops == []
    assert any("not mutated by the aim-gpu-sharing webhook" in w and "args" in w for w in result.warnings)
    isvc = fixture_object("review-isvc-profile.json")
    isvc["spec"]["predictor"] = {"huggingface": {"storageUri": "hf://x/y"}}
    result = answer(ISVC_KIND, isvc)
    assert result.allowed and result.ops == []
    assert any("use spec.predictor.model" in w for w in result.warnings)


def test_pods_are_mutated_at_create_only_and_deletes_pass() -> None:
    pod = fixture_object("review-pod-catalogue-model.json")
    assert answer(POD_KIND, pod, operation="UPDATE").ops == []
    assert answer(POD_KIND, pod, operation="DELETE").ops == []
