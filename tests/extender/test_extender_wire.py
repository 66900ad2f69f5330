"""Reply encoding: the fast string-joined JSON equals what json.dumps would say, for any name."""

from __future__ import annotations

import json

import pytest

from extender.wire import encode_filter_result, encode_scored_hosts

NAME_SETS = [
    ["gpu-node-1", "gpu-node-2.rack-a", "n3"],
    ['odd"name', "back\\slash", "ünïcode", "tab\tname"],
    [],
]


@pytest.mark.parametrize("names", NAME_SETS, ids=["dns names", "names needing escapes", "no names"])
def test_host_priorities_decode_to_the_same_list(names: list[str]) -> None:
    scores = [i % 11 for i in range(len(names))]
    keys = [f"key-{i}" for i in range(len(names))]  # one distinct key per host, as the cache gives
    decoded = json.loads(encode_scored_hosts(names, keys, dict(zip(keys, scores, strict=False))))
    assert decoded == [{"Host": n, "Score": s} for n, s in zip(names, scores, strict=False)]


@pytest.mark.parametrize("names", NAME_SETS, ids=["dns names", "names needing escapes", "no names"])
def test_filter_result_decodes_to_the_same_maps(names: list[str]) -> None:
    failed = {n: f'reason "{i % 2}" \\ é' for i, n in enumerate(names)}
    unresolvable = {n + "-u": "node has no gpu partitions" for n in names}
    decoded = json.loads(encode_filter_result(node_names=names, nodes=None, failed=failed, unresolvable=unresolvable))
    assert decoded == {
        "Nodes": None,
        "NodeNames": names,
        "FailedNodes": failed,
        "FailedAndUnresolvableNodes": unresolvable,
        "Error": "",
    }
