"""What a node offers: the device plugin's labels and allocatable, read through sizing.contract;
garbage never raises and is named in the node's defect."""

from __future__ import annotations

from typing import Any

import pytest

from decision.node_offer import read_node_offer
from sizing.contract import LABEL_MEMORY_MIB, MIB, RESOURCE_NAME, PartitionShape, node_labels
from tests.extender.support import make_node, partition_labels


def offer_of(labels: dict[str, Any] | None, allocatable: Any) -> Any:
    node: dict[str, Any] = {"metadata": {"name": "n", "labels": labels or {}}, "status": {"allocatable": {}}}
    if allocatable is not None:
        node["status"]["allocatable"][RESOURCE_NAME] = allocatable
    offer = read_node_offer(node)
    assert offer is not None
    return offer


def test_well_formed_labels_are_read_in_full() -> None:
    offer = read_node_offer(make_node("n1", partition_labels(memory_gib=24, count=8), 8))
    assert offer is not None and offer.allocatable == 8
    assert offer.partition_bytes == 24 * 1024 * MIB
    labels = offer.labels
    assert (labels.count, labels.compute_mode, labels.memory_mode) == (8, "CPX", "NPS4")
    assert (labels.cu_count, labels.product, labels.homogeneous) == (38, "MI300X", True)
    assert offer.defect is None and labels.defects == ()


def test_the_labels_the_device_plugin_writes_are_the_labels_the_extender_reads() -> None:
    shapes = [PartitionShape("MI300X", "CPX", "NPS4", 38, 24 * 2**30)] * 8
    written = {key: value for key, value in node_labels(shapes).items() if value is not None}
    offer = offer_of(written, "8")
    assert offer.partition_bytes == 24 * 2**30 and offer.labels.count == 8 and offer.labels.homogeneous is True
    assert offer.defect is None


def test_node_without_allocatable_or_labels_has_no_partitions() -> None:
    offer = read_node_offer(make_node("cpu", {"kubernetes.io/os": "linux"}, None))
    assert offer is not None and offer.allocatable == 0
    assert offer.partition_bytes is None and offer.defect is None


@pytest.mark.parametrize(
    ("memory", "allocatable", "fragment"),
    [
        ("24GiB", "8", f"label {LABEL_MEMORY_MIB}='24GiB': is not a whole number in ASCII digits"),
        ("0", "8", "is less than 1"),
        ("-1", "8", "is not a whole number"),
        ("1e999999", "8", "is not a whole number"),
        ("²", "8", "is not a whole number in ASCII digits"),
        ("١", "8", "is not a whole number in ASCII digits"),
        ("9" * 5000, "8", "is longer than 64 characters"),
        (None, "eight", f"allocatable {RESOURCE_NAME}='eight': is not a Kubernetes quantity"),
        (None, "1.5", "is not a whole number"),
        (None, "-2", "is negative"),
        (None, "1e999999", "is far too large"),
        (None, "inf", "is not a Kubernetes quantity"),
        (None, "NaN", "is not a Kubernetes quantity"),
        (None, "١", "is not a Kubernetes quantity"),
        (None, [[["8"]]], "must be a string, not list"),
    ],
)
def test_garbage_values_make_a_defect_naming_the_label_or_allocatable(
    memory: Any, allocatable: Any, fragment: str
) -> None:
    offer = offer_of({LABEL_MEMORY_MIB: memory} if memory is not None else {}, allocatable)
    assert offer.defect is not None and fragment in offer.defect, offer.defect
    assert len(offer.defect) < 200  # bounded: never echoes the value in full


def test_any_whole_quantity_within_bounds_is_a_count() -> None:
    assert (offer_of({}, "8e0").allocatable, offer_of({}, "8e0").defect) == (8, None)
    assert (offer_of({}, "8000m").allocatable, offer_of({}, 8).defect) == (8, None)
    too_many = offer_of({}, "2k")
    assert too_many.allocatable == 0 and too_many.defect is not None and "is not between 0 and 1024" in too_many.defect


def test_wrong_types_are_treated_as_absent() -> None:
    offer = read_node_offer({"metadata": {"name": "n", "labels": ["not", "a", "map"]}, "status": None})
    assert offer is not None and offer.allocatable == 0 and offer.partition_bytes is None


def test_node_object_reading_needs_only_name_labels_and_allocatable(nodes_request: dict[str, Any]) -> None:
    node = nodes_request["Nodes"]["items"][0]
    offer = read_node_offer(node)
    assert offer is not None and offer.name == "fake-gpu-node-2" and offer.allocatable == 8
    assert read_node_offer({"metadata": {}}) is None
    assert read_node_offer("node") is None
