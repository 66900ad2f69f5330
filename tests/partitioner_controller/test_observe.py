"""Reading nodes and pods: hostile values end as a named problem, never an exception; the
extender's reasons are recognised from its own message code."""

from __future__ import annotations

from typing import Any

import pytest

from partitioner.controller.observe import LAYOUT_REASONS, affinity_matches, read_node, read_pod
from sizing.contract import LABEL_COUNT, RESOURCE_NAME
from tests.partitioner_controller import objects


def test_the_layout_reasons_are_the_extenders_words() -> None:
    assert LAYOUT_REASONS == ("gpu partition too small for model", "node has fewer gpu partitions than requested")


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
    ({"metadata": {"labels": {LABEL_COUNT: "7"}}}, "not a whole number of GPUs"),
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


def test_a_pod_pending_for_other_reasons_is_not_ours() -> None:
    view = read_pod(objects.pod("cpu", objects.LLAMA_70B, blocked="0/3 nodes are available: 3 Insufficient cpu."))
    assert view is not None and not view.pending_for_layout


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
    assert view is not None and view.pending_for_layout
    assert view.layout_blocked == "node affinity on amd.com/gpu-partition.memory-mib"
    plain = read_pod(objects.pod("other", objects.QWEN_14B, blocked=objects.AFFINITY_MISMATCH))
    assert plain is not None and not plain.pending_for_layout, "an affinity on other labels is not ours"


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
    assert affinity_matches(view.affinity, {} if label is None else {"k": label}) is expected
