"""The note on a waiting pod (extender.pending): the size it needs, the largest the cluster has and the
smallest known partition that holds it, in the words of decision.reasons; only for pods kube-scheduler
tried and could not place, and only when the size or count is why. The Events themselves, their
deduplication and the wiring into ``aim-extender serve`` are tested on the real control plane
(tests/controlplane/test_controlplane_native_mode.py)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import sizing
from decision.reasons import smallest_mode_holding
from decision.requirement import Requirement, Sizer
from extender.pending import explain, explain_pod, is_waiting
from extender.pending_events import event_body, event_name
from sizing.contract import RESOURCE_NAME

GIB = 1 << 30
MODES = sizing.GEOMETRY.partition_modes()


@dataclass(frozen=True)
class Offer:
    memory_bytes: int
    count: int | None


CLUSTER = (Offer(24 * GIB, 64), Offer(48 * GIB, 32))


def waiting_pod(annotations: dict[str, str], partitions: int = 1, scheduled: str = "False") -> dict[str, Any]:
    count = {RESOURCE_NAME: str(partitions)}
    return {"metadata": {"name": "p", "namespace": "team-a", "uid": "u-1", "annotations": annotations},
            "spec": {"containers": [{"name": "vllm", "resources": {"limits": count, "requests": count}}]},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": scheduled,
                                                           "reason": "Unschedulable"}]}}


def test_a_pod_too_big_for_every_partition_is_told_the_size_and_the_smallest_mode_that_holds_it() -> None:
    pod = waiting_pod({"aim.amd.com/model": "Qwen/Qwen3-32B", "aim.amd.com/precision": "fp16"})
    note = explain_pod(pod, Sizer(), CLUSTER)
    assert note is not None and note.reason == "PartitionTooSmall"
    # ~72.3 GiB: more than MI350X QPX's 72 GiB, so MI300X DPX (96 GiB) is the smallest that holds it.
    assert note.message == ("Qwen/Qwen3-32B fp16 needs a partition with >= 72.3 GiB; the largest in this cluster is"
                            " 48 GiB; the smallest that holds it is MI300X DPX (96 GiB): repartition a node, or lower"
                            " max-model-len or precision")


def test_the_smallest_mode_is_the_first_of_gpus_json_among_equal_sizes() -> None:
    assert smallest_mode_holding(45 * GIB, MODES) == "MI300X QPX (48 GiB)"
    assert smallest_mode_holding(1000 * GIB, MODES) is None
    no_gpu = explain(Requirement(1, 1000 * GIB, 1000 * GIB, "big"), CLUSTER, MODES)
    assert no_gpu is not None and "no known GPU partition holds it" in no_gpu.message


def test_too_few_partitions_on_any_node_that_holds_the_size() -> None:
    note = explain(Requirement(8, 40 * GIB, 40 * GIB, "m fp8"), (Offer(24 * GIB, 8), Offer(48 * GIB, 4)), MODES)
    assert note is not None and note.reason == "TooFewPartitions"
    assert "needs 8 partitions with >= 40 GiB on one node; the nodes whose partitions hold it have at most 4" in (
        note.message)


def test_nothing_is_said_when_size_and_count_are_not_the_reason_or_the_pod_is_not_waiting() -> None:
    sizer = Sizer()
    small = waiting_pod({"aim.amd.com/model": "Qwen/Qwen3-8B"})
    assert explain_pod(small, sizer, CLUSTER) is None  # fits: busy partitions are kube-scheduler's to say
    assert explain_pod(waiting_pod({"aim.amd.com/model": "Qwen/Qwen3-32B"}, scheduled="True"), sizer, CLUSTER) is None
    assert not is_waiting(waiting_pod({}))  # not opted in
    bound = waiting_pod({"aim.amd.com/model": "Qwen/Qwen3-32B"})
    bound["spec"]["nodeName"] = "n1"
    assert not is_waiting(bound)
    assert not is_waiting({"metadata": [], "spec": "x", "status": {"conditions": "y"}})
    # A pod that cannot be sized is the webhook's (denied) and the partition controller's to name.
    assert explain_pod(waiting_pod({"aim.amd.com/model": "no/such-model"}), sizer, CLUSTER) is None


def test_the_event_is_named_per_pod_and_reason_and_bounded() -> None:
    pod = waiting_pod({"aim.amd.com/model": "Qwen/Qwen3-32B"})
    pod["metadata"]["name"] = "x" * 253
    note = explain_pod(pod, Sizer(), CLUSTER)
    assert note is not None
    body = event_body(pod, note, datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC))
    assert body is not None
    assert body["metadata"]["name"] == event_name("x" * 253, "u-1", "PartitionTooSmall")
    assert len(body["metadata"]["name"]) <= 253
    assert body["involvedObject"] == {"apiVersion": "v1", "kind": "Pod", "name": "x" * 253, "namespace": "team-a",
                                      "uid": "u-1"}
    assert body["firstTimestamp"] == "2026-01-02T03:04:05Z" and body["type"] == "Warning"
    assert event_name("p", "u-1", "PartitionTooSmall") != event_name("p", "u-2", "PartitionTooSmall")
    assert event_name("p", "u-1", "PartitionTooSmall") != event_name("p", "u-1", "TooFewPartitions")
    del pod["metadata"]["uid"]
    assert event_body(pod, note, datetime.datetime.now(datetime.UTC)) is None
