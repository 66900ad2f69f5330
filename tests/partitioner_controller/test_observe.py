"""Reading nodes and pods: hostile values end as a named problem, never an exception; the
pending pod is recorded as unschedulable (a field), and kube-scheduler's "Insufficient" partitions
(its message, the only source); whether a layout is what it waits for is computed in plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from decision.eligibility import affinity_matches
from deviceplugin.discovery import discover
from deviceplugin.labels import desired_labels
from partitioner.controller.observe import INSUFFICIENT, UNSCHEDULABLE, read_node, read_pod
from partitioner.modes import Mode
from sizing.contract import LABEL_COUNT, LABEL_GPU_COUNT, RESOURCE_NAME
from tests.deviceplugin.dp_support import lay_capture
from tests.partitioner_controller import objects

CPX, SPX = Mode("CPX", "NPS4"), Mode("SPX", "NPS1")


def test_an_unschedulable_pod_is_a_candidate_whatever_the_message_says() -> None:
    """No message text decides: the extender's words, kube-scheduler's, or none at all."""
    for message in (objects.TOO_SMALL, objects.AFFINITY_MISMATCH, "0/3 nodes are available: 3 Insufficient cpu.", ""):
        view = read_pod(objects.pod("p", objects.LLAMA_70B, blocked=message))
        assert view is not None and view.layout_blocked == UNSCHEDULABLE and view.pending_for_layout
        assert not view.wants_more_partitions


def test_a_cpx_node_reads_as_one_gpu_in_cpx() -> None:
    view = read_node(objects.node("n", gpus=2))
    assert view is not None and view.gpus == 2 and str(view.mode) == "CPX/NPS4" and view.product == "MI300X"
    assert view.opted_in and view.problem is None and view.allocatable == 16


@pytest.mark.parametrize("junk", [None, 7, "node", [], {"metadata": "x"}, {"metadata": {"name": "x" * 300}}])
def test_objects_without_a_name_are_skipped(junk: Any) -> None:
    assert read_node(junk) is None
    assert read_pod(junk) is None


@pytest.mark.parametrize(("change", "problem"), [
    ({"status": {"allocatable": {RESOURCE_NAME: "1e400"}}}, "allocatable"),
    ({"metadata": {"labels": {LABEL_COUNT: "9"}}}, "9 partitions do not fit on 1 GPUs"),
    ({"metadata": {"labels": {LABEL_COUNT: "0"}}}, "no partitions"),
    ({"metadata": {"labels": {LABEL_GPU_COUNT: "0"}}}, LABEL_GPU_COUNT),
    ({"metadata": {"labels": {LABEL_GPU_COUNT: "65"}}}, LABEL_GPU_COUNT),
    ({"metadata": {"labels": {LABEL_GPU_COUNT: "1e9"}}}, LABEL_GPU_COUNT),
    ({"metadata": {"labels": {LABEL_COUNT: "7"}}}, "differs from the count label 7"),  # allocatable 8
    ({"metadata": {"labels": {LABEL_COUNT: "9" * 100}}}, LABEL_COUNT),
    ({"metadata": {"labels": {"amd.com/gpu-partition.product": "MI999"}}}, "MI999"),
    ({"metadata": {"labels": {"amd.com/gpu-partition.homogeneous": "false"}}}, "one shape"),
])
def test_unreadable_layouts_are_named(change: dict[str, Any], problem: str) -> None:
    obj = objects.node("n")
    for part, values in change.items():
        for key, value in values.items():
            obj[part].setdefault(key, {}).update(value)
    view = read_node(obj)
    assert view is not None and view.gpus is None and view.problem is not None and problem in view.problem


def _real_cpx(tmp_path: Path, *, gpu_count_label: bool = True, allocatable: str = "63") -> dict[str, Any]:
    """A node with the device plugin's labels on the real MI300X CPX capture: 63 partitions on 8 GPUs."""
    inventory = discover(lay_capture(tmp_path, "mi300x-cpx", compute_mode="CPX", memory_mode="NPS4"))
    labels = {k: v for k, v in desired_labels(inventory.partitions, (g.address for g in inventory.gpus)).items()
              if v is not None and (gpu_count_label or k != LABEL_GPU_COUNT)}
    obj = objects.node("real", allocatable=allocatable)
    obj["metadata"]["labels"] = {**{k: v for k, v in obj["metadata"]["labels"].items()
                                    if not k.startswith("amd.com/gpu-partition.")}, **labels}
    return obj


@pytest.mark.parametrize("gpu_count_label", [True, False], ids=["gpu-count label", "older plugin"])
def test_the_real_63_partition_cpx_capture_reads_as_8_gpus(tmp_path: Path, gpu_count_label: bool) -> None:
    view = read_node(_real_cpx(tmp_path, gpu_count_label=gpu_count_label))
    assert view is not None and view.problem is None, view.problem
    assert (view.product, view.mode, view.gpus, view.partitions_per_gpu) == ("MI300X", CPX, 8, 8)
    assert view.partition_labels.count == 63 and view.missing_partitions == 1
    # Verifying a CPX target on 8 GPUs (64 expected) succeeds with the 63 the GPUs give.
    assert view.advertises(CPX, 64) and not view.advertises(CPX, 56) and not view.advertises(SPX, 8)


def test_the_real_capture_is_not_advertised_while_allocatable_is_stale(tmp_path: Path) -> None:
    view = read_node(_real_cpx(tmp_path, allocatable="8"))  # kubelet still reports the SPX count
    assert view is not None and view.gpus is None and not view.advertises(CPX, 64)
    assert view.problem == f"allocatable {RESOURCE_NAME}=8 differs from the count label 63"


@pytest.mark.parametrize(("compute", "memory", "count", "gpus"), [
    ("CPX", "NPS4", 64, 8), ("CPX", "NPS4", 63, 8), ("CPX", "NPS4", 56, 7), ("CPX", "NPS4", 57, 8),
    ("CPX", "NPS4", 7, 1), ("CPX", "NPS4", 6, None), ("CPX", "NPS4", 48, 6), ("CPX", "NPS4", 41, None),
    ("SPX", "NPS1", 8, 8), ("SPX", "NPS1", 1, 1), ("DPX", "NPS2", 3, 2), ("QPX", "NPS1", 2, None),
])
def test_without_the_gpu_count_label_each_gpu_may_lack_one_partition(compute: str, memory: str, count: int,
                                                                     gpus: int | None) -> None:
    obj = objects.node("old", compute, memory, gpus=8, allocatable=str(count))
    labels = obj["metadata"]["labels"]
    del labels[LABEL_GPU_COUNT]
    labels[LABEL_COUNT] = str(count)
    view = read_node(obj)
    assert view is not None and view.gpus == gpus, view.problem
    if gpus is None:
        assert view.problem is not None and "not a whole number of GPUs" in view.problem
        assert LABEL_GPU_COUNT in view.problem


def test_hostile_labels_taints_and_annotations_are_dropped_not_raised() -> None:
    obj = objects.node("n")
    obj["metadata"]["labels"].update({str(i): "v" for i in range(5000)})
    obj["metadata"]["annotations"] = {"aim.amd.com/repartition-state": ["x"], "aim.amd.com/x": "y" * 10**6}
    obj["spec"]["taints"] = ["junk", {"key": 1}, {"key": "k", "effect": "NoSchedule", "value": None}]
    view = read_node(obj)
    assert view is not None and view.annotations == {}
    assert [t.key for t in view.taints] == ["k"]


def test_a_pod_pending_for_partition_size_becomes_a_workload() -> None:
    view = read_pod(objects.pod("big", objects.LLAMA_70B))
    assert view is not None and view.pending_for_layout and view.workload is not None
    assert view.workload.spec.model == "meta-llama/Llama-3.3-70B-Instruct"


def test_kube_schedulers_insufficient_partitions_is_layout_demand_to_check() -> None:
    message = (f"0/4 nodes are available: 1 {INSUFFICIENT}, 3 node(s) didn't match Pod's node affinity/selector."
               " preemption: 0/4 nodes are available: 1 No preemption victims found for incoming pod.")
    view = read_pod(objects.pod("tp16", objects.LLAMA_8B, partitions=16, blocked=message))
    assert view is not None and view.pending_for_layout and view.wants_more_partitions
    assert view.layout_blocked == "Insufficient amd.com/gpu-partition"
    other = read_pod(objects.pod("gpu", objects.LLAMA_8B,
                                 blocked="0/3 nodes are available: 3 Insufficient amd.com/gpu."))
    assert other is not None and other.pending_for_layout and not other.wants_more_partitions


def test_a_pod_not_unschedulable_or_not_sized_is_no_candidate() -> None:
    obj = objects.pod("gated", objects.LLAMA_70B, blocked="")
    obj["status"]["conditions"][0]["reason"] = "SchedulingGated"
    waiting = read_pod(obj)
    assert waiting is not None and waiting.layout_blocked is None and not waiting.pending_for_layout
    bad = read_pod(objects.pod("bad", {"aim.amd.com/precision": "fp7", "aim.amd.com/model": "m"}))
    assert bad is not None and bad.workload is None and not bad.pending_for_layout


@pytest.mark.parametrize(("annotations", "problem"), [
    ({"aim.amd.com/precision": "fp7", "aim.amd.com/model": "m"}, "precision"),
    ({"aim.amd.com/max-model-len": "lots"}, "max-model-len"),
    ({"aim.amd.com/model": "x" * 10_000}, "aim.amd.com/model"),
])
def test_a_pending_pod_with_bad_annotations_has_a_named_problem(annotations: dict[str, str], problem: str) -> None:
    view = read_pod(objects.pod("bad", annotations))
    assert view is not None and view.workload is None and view.problem is not None and problem in view.problem


def test_a_bound_pod_with_bad_annotations_still_holds_its_partitions() -> None:
    view = read_pod(objects.pod("bad", {"aim.amd.com/precision": "fp7"}, node_name="n", partitions=2))
    assert view is not None and view.holds_gpus and view.workload is not None
    assert view.workload.spec.partitions == 2


def test_a_huge_partition_request_is_a_problem_not_a_crash() -> None:
    obj = objects.pod("greedy", objects.LLAMA_8B)
    obj["spec"]["containers"][0]["resources"] = {"limits": {RESOURCE_NAME: "9" * 50}}
    view = read_pod(obj)
    assert view is not None and view.partitions == 0 and view.problem is not None and RESOURCE_NAME in view.problem


def test_a_pod_held_back_by_the_webhooks_node_affinity_is_ours() -> None:
    view = read_pod(objects.pod("mid", objects.QWEN_14B, blocked=objects.AFFINITY_MISMATCH, memory_mib_above=34815))
    assert view is not None and view.pending_for_layout and view.layout_blocked == UNSCHEDULABLE
    assert any(r.key == "amd.com/gpu-partition.memory-mib" for term in view.placement.affinity for r in term)


@pytest.mark.parametrize(("operator", "values", "label", "expected"), [
    ("Gt", ["24575"], "24576", True), ("Gt", ["24576"], "24576", False), ("Lt", ["100"], "99", True),
    ("Gt", ["9" * 100], "1", False), ("Gt", ["x"], "1", False), ("Gt", ["1"], None, False),
    ("In", ["a", "b"], "b", True), ("NotIn", ["a"], None, True), ("Exists", [], "", True),
    ("DoesNotExist", [], None, True), ("Weird", [], "a", False),
])
def test_affinity_requirements_match_like_the_scheduler(operator: str, values: list[str], label: str | None,
                                                        expected: bool) -> None:
    pod = objects.pod("p", {})
    pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": operator, "values": values}]}]}}}
    view = read_pod(pod)
    assert view is not None
    assert affinity_matches(view.placement.affinity, {} if label is None else {"k": label}) is expected
