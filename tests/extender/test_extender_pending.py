"""The note on a waiting pod (extender.pending): the size it needs, the largest the nodes it may run on
have (its nodeSelector, required affinity and tolerations; the webhook's own memory-mib requirement left
out) and the smallest known partition that holds it, in the words of decision.reasons; only for pods
kube-scheduler tried and could not place, and only when the size or count is why. The writer
(extender.pending_events) is tested here with un-started informers fed by hand and a recording API;
on the real control plane, with ``aim-extender serve``, in tests/controlplane/test_controlplane_native_mode.py."""

from __future__ import annotations

import datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

import sizing
from decision.reasons import smallest_mode_holding
from decision.requirement import Requirement, Sizer
from decision.verdict import Capacity
from extender.pending import PendingNode, explain, explain_pod, is_waiting, read_pending_node
from extender.pending_events import PendingExplainer, event_body, event_name
from kube.informer import Informer
from sizing.contract import LABEL_MEMORY_MIB, RESOURCE_NAME

GIB = 1 << 30
MODES = sizing.GEOMETRY.partition_modes()
POOL = "example.com/pool"


def node(name: str, gib: int, count: int, pool: str = "a", taints: list[dict[str, str]] | None = None
         ) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {LABEL_MEMORY_MIB: str(gib * 1024), POOL: pool}},
            "spec": {"taints": taints or []}, "status": {"allocatable": {RESOURCE_NAME: str(count)}}}


def nodes(*objects: dict[str, Any]) -> list[PendingNode]:
    read = [read_pending_node(o) for o in objects]
    assert all(n is not None for n in read)
    return [n for n in read if n is not None]


def capacity(gib: int, count: int) -> Capacity:
    return (count, gib * GIB, 0, None)


CLUSTER = nodes(node("cpx", 24, 64), node("qpx", 48, 32))


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
    no_gpu = explain(Requirement(1, 1000 * GIB, 1000 * GIB, "big"), [n.capacity for n in CLUSTER], MODES)
    assert no_gpu is not None and "no known GPU partition holds it" in no_gpu.message


def test_too_few_partitions_on_any_node_that_holds_the_size() -> None:
    note = explain(Requirement(8, 40 * GIB, 40 * GIB, "m fp8"), (capacity(24, 8), capacity(48, 4)), MODES)
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


QWEN_32B = {"aim.amd.com/model": "Qwen/Qwen3-32B", "aim.amd.com/precision": "fp16"}  # ~72.3 GiB
POOLS = nodes(node("small-1", 24, 64, "small"), node("small-2", 24, 64, "small"), node("big", 96, 16, "big"))


def test_a_pod_pinned_to_a_pool_is_told_that_pools_sizes() -> None:
    sizer = Sizer()
    assert explain_pod(waiting_pod(QWEN_32B), sizer, POOLS) is None  # the big pool holds it: not a size fact
    pinned = waiting_pod(QWEN_32B)
    pinned["spec"]["nodeSelector"] = {POOL: "small"}
    note = explain_pod(pinned, sizer, POOLS)
    assert note is not None and note.reason == "PartitionTooSmall"
    assert "needs a partition with >= 72.3 GiB; the largest on the nodes it may run on is 24 GiB;" in note.message
    by_affinity = waiting_pod(QWEN_32B)
    by_affinity["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": POOL, "operator": "NotIn", "values": ["big"]}]}]}}}
    assert explain_pod(by_affinity, sizer, POOLS) == note


def test_a_node_whose_taint_the_pod_does_not_tolerate_is_not_one_it_may_run_on() -> None:
    taint = {"key": "example.com/reserved", "value": "x", "effect": "NoSchedule"}
    cluster = nodes(node("small", 24, 64), node("big", 96, 16, taints=[taint]))
    note = explain_pod(waiting_pod(QWEN_32B), Sizer(), cluster)
    assert note is not None and "the largest on the nodes it may run on is 24 GiB" in note.message
    tolerant = waiting_pod(QWEN_32B)
    tolerant["spec"]["tolerations"] = [{"key": "example.com/reserved", "operator": "Exists"}]
    assert explain_pod(tolerant, Sizer(), cluster) is None


def test_the_webhooks_size_requirement_is_what_the_note_explains_not_where_the_pod_may_run() -> None:
    pod = waiting_pod(QWEN_32B)
    pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": LABEL_MEMORY_MIB, "operator": "Gt", "values": ["74035"]}]}]}}}
    note = explain_pod(pod, Sizer(), CLUSTER)
    assert note is not None and "the largest in this cluster is 48 GiB" in note.message


def test_nothing_is_said_of_partitions_of_the_size_that_are_not_advertised_yet() -> None:
    unadvertised = node("dpx", 96, 0)
    del unadvertised["status"]["allocatable"][RESOURCE_NAME]
    assert explain_pod(waiting_pod(QWEN_32B), Sizer(), nodes(node("cpx", 24, 64), unadvertised)) is None


class RecordingApi:
    """CoreV1Api's create_namespaced_event, recorded; ``fail`` is raised (once each) instead."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail: list[Exception] = []

    def create_namespaced_event(self, namespace: str, body: dict[str, Any], **_: Any) -> None:
        if self.fail:
            raise self.fail.pop(0)
        self.events.append(body)

    def list_node(self, **_: Any) -> None:
        raise AssertionError("the informers are fed by hand here")

    list_pod_for_all_namespaces = list_node


def explainer(api: RecordingApi, scheduler: str | None = None) -> PendingExplainer:
    return PendingExplainer(api, Sizer(), nodes=Informer("nodes", api.list_node),
                            pods=Informer("pods", api.list_pod_for_all_namespaces), scheduler_name=scheduler)


def pinned(name: str, uid: str, pool: str = "small") -> dict[str, Any]:
    pod = waiting_pod(QWEN_32B)
    pod["metadata"].update(name=name, uid=uid)
    pod["spec"]["nodeSelector"] = {POOL: pool}
    return pod


def test_the_writer_explains_changed_pods_and_every_pod_again_when_a_nodes_facts_change() -> None:
    api = RecordingApi()
    writer = explainer(api)
    writer.pods.replace([pinned("a", "u-a")])
    assert writer.explain_waiting() == 0 and not api.events  # no node list yet: nothing is "too small"
    small = [node("small-1", 24, 64, "small"), node("big", 96, 16, "big")]
    writer.nodes.replace(small)
    assert writer.explain_waiting() == 1
    assert [e["involvedObject"]["name"] for e in api.events] == ["a"]
    # A status-only node update changes no fact: no pass over every pod; a pod update is one pod.
    heartbeat = node("small-1", 24, 64, "small")
    heartbeat["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    writer.nodes.apply("MODIFIED", heartbeat)
    writer.pods.apply("MODIFIED", pinned("b", "u-b"))
    assert writer.explain_waiting() == 1 and len(api.events) == 2
    writer.pods.apply("MODIFIED", pinned("a", "u-a"))
    assert writer.explain_waiting() == 1 and len(api.events) == 2  # once per pod and reason
    # A node of the pool repartitioned to 96 GiB: every waiting pod again, and now it fits there.
    writer.nodes.apply("MODIFIED", node("small-1", 96, 16, "small"))
    assert writer.explain_waiting() == 2 and len(api.events) == 2


def test_the_writer_forgets_pods_that_stop_waiting_and_retries_failed_writes() -> None:
    api = RecordingApi()
    writer = explainer(api, scheduler="aim-native")
    writer.nodes.replace([node("small-1", 24, 64, "small")])
    other = pinned("other", "u-o")
    other["spec"]["schedulerName"] = "default-scheduler"
    ours = pinned("ours", "u-1")
    ours["spec"]["schedulerName"] = "aim-native"
    api.fail = [ApiException(status=500, reason="Internal Server Error")]
    writer.pods.replace([other, ours])
    assert writer.explain_waiting() == 1 and not api.events  # the other scheduler's pod is not ours
    writer.nodes.replace([node("small-1", 24, 64, "small")])  # a relist (or the resweep): every pod again
    assert writer.explain_waiting() == 1 and len(api.events) == 1
    api.fail = [ApiException(status=409, reason="AlreadyExists")]  # another replica wrote it: remembered
    twin = explainer(api, scheduler="aim-native")
    twin.nodes.replace([node("small-1", 24, 64, "small")])
    twin.consider(ours)
    twin.consider(ours)
    assert len(api.events) == 1 and not api.fail
    bound = pinned("ours", "u-1")
    bound["spec"].update(schedulerName="aim-native", nodeName="small-1")
    writer.pods.apply("MODIFIED", bound)
    assert writer.explain_waiting() == 0
    writer.pods.apply("DELETED", ours)
    writer.nodes.replace([node("small-1", 24, 64, "small")])
    assert writer.explain_waiting() == 0 and len(api.events) == 1
