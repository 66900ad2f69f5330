"""parse_node_facts: the device plugin's labels and allocatable -> NodeFacts; garbage never raises."""

from __future__ import annotations

from typing import Any

import pytest
from extender_support import partition_labels

from extender.nodefacts import MIB, facts_from_node_object, parse_node_facts


def test_well_formed_labels_are_read_in_full() -> None:
    facts = parse_node_facts("n1", partition_labels(memory_gib=24, count=8), {"amd.com/gpu-partition": "8"})
    assert facts.allocatable == 8
    assert facts.partition_bytes == 24 * 1024 * MIB
    assert (facts.partition_count, facts.compute_mode, facts.memory_mode) == (8, "CPX", "NPS4")
    assert (facts.cu_count, facts.product, facts.homogeneous) == (38, "MI300X", True)
    assert facts.defects == () and facts.has_partitions


def test_node_without_allocatable_or_labels_has_no_partitions() -> None:
    facts = parse_node_facts("cpu", {"kubernetes.io/os": "linux"}, {"cpu": "16"})
    assert facts.allocatable == 0 and not facts.has_partitions
    assert facts.partition_bytes is None and facts.defects == ()


@pytest.mark.parametrize(
    ("labels", "allocatable", "field", "expected", "defect"),
    [
        ({"amd.com/gpu-partition.memory-mib": "24GiB"}, "8", "partition_bytes", None, "memory-mib='24GiB' is not an integer"),
        ({"amd.com/gpu-partition.memory-mib": "0"}, "8", "partition_bytes", None, "is not positive"),
        ({"amd.com/gpu-partition.memory-mib": "-1"}, "8", "partition_bytes", None, "is not positive"),
        ({"amd.com/gpu-partition.homogeneous": "yes"}, "8", "homogeneous", None, "is not true/false"),
        ({}, "eight", "allocatable", 0, "allocatable amd.com/gpu-partition='eight' is not a quantity"),
        ({}, "1.5", "allocatable", 0, "not a whole non-negative count"),
        ({}, "-2", "allocatable", 0, "not a whole non-negative count"),
        ({}, "2k", "allocatable", 2000, None),
    ],
    ids=["memory with unit", "zero memory", "negative memory", "homogeneous not boolean",
         "allocatable word", "allocatable fraction", "allocatable negative", "allocatable with suffix"],
)
def test_garbage_values_become_unknown_and_are_named(
    labels: dict[str, str], allocatable: str, field: str, expected: Any, defect: str | None
) -> None:
    facts = parse_node_facts("n", labels, {"amd.com/gpu-partition": allocatable})
    assert getattr(facts, field) == expected
    if defect is None:
        assert facts.defects == ()
    else:
        assert any(defect in d for d in facts.defects), facts.defects


def test_wrong_types_are_treated_as_absent() -> None:
    facts = parse_node_facts("n", ["not", "a", "map"], None)  # type: ignore[arg-type]
    assert facts.allocatable == 0 and facts.partition_bytes is None


def test_node_object_reading_needs_only_name_labels_and_allocatable(nodes_request: dict[str, Any]) -> None:
    node = nodes_request["Nodes"]["items"][0]
    facts = facts_from_node_object(node)
    assert facts is not None and facts.name == "fake-gpu-node-2" and facts.allocatable == 8
    assert facts_from_node_object({"metadata": {}}) is None
    assert facts_from_node_object("node") is None
