"""The hot path's shortcuts agree with the plain code they stand in for.

The service reads request nodes with ``offer_fields`` (memoised, only what a decision needs)
instead of ``read_node_offer``, and accepts a well-shaped envelope without pydantic; both
must give the same answers as the full code, garbage included.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from decision.node_offer import offer_fields, read_node_offer
from extender.wire import BadRequestError, read_extender_args

MEMORY = "amd.com/gpu-partition.memory-mib"
COUNT = "amd.com/gpu-partition"


def node(
    name: Any = "n1", memory: Any = None, allocatable: Any = None, *, labels: Any = None, status: Any = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    metadata["labels"] = labels if labels is not None else ({} if memory is None else {MEMORY: memory})
    body: dict[str, Any] = {"metadata": metadata}
    body["status"] = (
        status if status is not None else {"allocatable": {} if allocatable is None else {COUNT: allocatable}}
    )
    return body


NODES = [
    node("good", "24576", "8"),
    node("unit", "24GiB", "8"),
    node("zero", "0", "8"),
    node("negative", "-1", "8"),
    node("padded", " 49152 ", " 4 "),
    node("quantity", "1024", "2k"),
    node("fraction", "1024", "1.5"),
    node("word", "1024", "eight"),
    node("int-label", 24576, 8),
    node("bool-label", True, True),  # True must not share a memo entry with 1
    node("one-label", 1, 1),
    node("float-label", 1.0, 2.0),
    node("list-label", ["24576"], ["8"]),
    node("no-labels", labels=["not", "a", "map"]),
    node("no-status", status="none"),
    node("nothing"),
    node("absurd", "1e999999", "1e999999"),
    node("superscript", "2²", "²"),
    node("arabic-indic", "١", "١"),
    node("huge", "9" * 5000, "9" * 5000),
    node("nested", [[["1"]]], {"a": {"b": "c"}}),
]


@pytest.mark.parametrize("item", NODES, ids=[n["metadata"]["name"] for n in NODES])
def test_offer_fields_match_the_full_node_offer(item: dict[str, Any]) -> None:
    offer = read_node_offer(item)
    assert offer is not None
    for _ in range(2):  # the second call is answered from the memo
        assert offer_fields(item) == (offer.name, offer.allocatable, offer.partition_bytes, offer.defect)


@pytest.mark.parametrize(
    "item",
    [{"metadata": {}}, {"metadata": {"name": ""}}, {"metadata": {"name": 7}}, {"metadata": "x"}, "node", None],
    ids=["no name", "empty name", "name not a string", "metadata not an object", "string", "null"],
)
def test_offer_fields_refuse_what_the_full_reader_refuses(item: Any) -> None:
    assert read_node_offer(item) is None
    assert offer_fields(item) is None


def test_a_well_shaped_envelope_is_kept_as_sent() -> None:
    nodes = [node("a", "24576", "8"), node("b")]
    body = {"pod": {"metadata": {"name": "p"}}, "Nodes": {"metadata": {}, "items": nodes}, "NodeNames": None}
    request = read_extender_args(json.dumps(body).encode())
    assert request.pod == {"metadata": {"name": "p"}}
    assert request.node_objects == nodes and request.node_names is None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"Pod": [], "NodeNames": ["a"]}', "Pod"),
        (b'{"Pod": {}, "NodeNames": "a"}', "NodeNames"),
        (b'{"Pod": {}, "NodeNames": ["a", null]}', "NodeNames.1"),
        (b'{"Pod": {}, "Nodes": {"items": null}}', "Nodes.items"),
        (b'{"Pod": {}, "Nodes": {"items": [1]}}', "Nodes.items.0"),
        (b'{"Pod": {}, "Nodes": []}', "Nodes"),
        (b"\xff\xfe", "not valid JSON"),
    ],
    ids=[
        "pod not an object",
        "names not a list",
        "null among names",
        "items null",
        "item not an object",
        "nodes not an object",
        "not UTF-8",
    ],
)
def test_a_misshapen_envelope_gets_the_validation_message(body: bytes, fragment: str) -> None:
    with pytest.raises(BadRequestError, match=fragment):
        read_extender_args(body)


def test_nodes_without_items_mean_no_nodes() -> None:
    request = read_extender_args(b'{"Pod": {}, "Nodes": {"metadata": {}}}')
    assert request.node_objects == [] and request.node_names is None


def test_names_under_the_python_field_name_are_still_read() -> None:
    request = read_extender_args(b'{"Pod": {}, "node_names": ["a", "b"]}')
    assert request.node_names == ["a", "b"] and request.node_objects is None
