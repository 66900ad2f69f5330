"""JSON Pointer escaping, the draft and its patch (jsonpatch.make_patch), and reading vLLM flags a user
already wrote."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import jsonpatch
import pytest

from webhook.engine_flags import canonical, last_use, runs_vllm
from webhook.patching import Draft, UnpatchableError, dotted, lookup, pointer


@pytest.mark.parametrize("path, expected", [
    (("metadata", "annotations", "aim.amd.com/model"), "/metadata/annotations/aim.amd.com~1model"),
    (("a~b", "c/d~1"), "/a~0b/c~1d~01"),  # ~ first, then /: "~1" in a key must not turn into "/"
    (("spec", "containers", 0, "args"), "/spec/containers/0/args"),
    (("",), "/"),
])
def test_pointer_escapes_tilde_before_slash(path: tuple[Any, ...], expected: str) -> None:
    assert pointer(path) == expected
    document = {"a~b": {"c/d~1": 1}, "metadata": {"annotations": {"aim.amd.com/model": "m"}},
                "spec": {"containers": [{"args": []}]}, "": 2}
    assert jsonpatch.JsonPointer(expected).resolve(document) is not None


def test_draft_patch_replays_to_the_draft_and_leaves_the_original_alone() -> None:
    original: dict[str, Any] = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "args": ["a"]}]}}
    before = copy.deepcopy(original)
    draft = Draft(original)
    draft.put(("metadata", "annotations", "x/y~z"), "1")
    draft.put(("metadata", "annotations", "other"), "2")
    draft.put(("spec", "containers", 0, "resources", "limits", "amd.com/gpu-partition"), "2")
    draft.put(("spec", "containers", 0, "resources", "requests", "amd.com/gpu-partition"), "2")
    draft.append(("spec", "containers", 0, "args"), "--b=1")
    draft.append(("spec", "containers", 0, "env"), {"name": "E", "value": "v"})
    draft.replace_item(("spec", "containers", 0, "args"), 0, "A")
    assert original == before  # edits go to the draft only
    assert draft.root["spec"]["containers"][0]["args"] == ["A", "--b=1"]
    ops = draft.patch()
    assert jsonpatch.apply_patch(original, ops) == draft.root
    # A missing parent chain is one op, not one per level.
    assert {"op": "add", "path": "/metadata/annotations", "value": {"x/y~z": "1", "other": "2"}} in ops
    assert Draft(original).patch() == []


def test_a_value_written_twice_is_two_values() -> None:
    """The webhook writes one expression into every selector term: editing one must not edit both."""
    draft = Draft({"terms": [{"e": []}, {"e": []}]})
    expression = {"key": "k", "values": ["1"]}
    draft.append(("terms", 0, "e"), expression)
    draft.append(("terms", 1, "e"), expression)
    draft.replace_item(("terms", 0, "e"), 0, {"key": "k", "values": ["2"]})
    assert draft.root["terms"][1]["e"] == [{"key": "k", "values": ["1"]}]


@pytest.mark.parametrize("document, path, append", [
    ({"spec": {"containers": "oops"}}, ("spec", "containers", 0, "args"), False),
    ({"spec": "oops"}, ("spec", "affinity"), False),
    ({"spec": {"args": {"not": "a list"}}}, ("spec", "args"), True),
    ({"spec": {}}, ("spec", "containers", 0, "args"), False),  # a missing list cannot be made from an index
])
def test_draft_refuses_wrong_types_naming_the_path(document: dict[str, Any], path: tuple[Any, ...],
                                                   append: bool) -> None:
    draft = Draft(document)
    with pytest.raises(UnpatchableError) as caught:
        draft.append(path, "--x=1") if append else draft.put(path, "v")
    assert dotted(caught.value.path).startswith("spec")
    assert draft.patch() == []


def big_pod() -> dict[str, Any]:
    """A Pod at the webhook's bounds: 256 containers of 1,024 args (workload.MAX_CONTAINERS, MAX_TOKENS)."""
    return {"metadata": {"annotations": {"a": "1"}, "labels": {f"l{i}": str(i) for i in range(500)}},
            "spec": {"containers": [{"name": f"c{i}", "args": [f"--x{j}" for j in range(1024)]}
                                    for i in range(256)]}}


def test_the_diff_reads_only_what_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    """make_patch sees one level of what the webhook touched, never the untouched containers: a
    whole-object make_patch of this Pod serializes all 262,144 args (bench/bench_webhook.py "big")."""
    seen: list[int] = []
    real = jsonpatch.make_patch

    def recording(src: Any, dst: Any) -> jsonpatch.JsonPatch:
        seen.append(len(json.dumps(src)) + len(json.dumps(dst)))
        return real(src, dst)

    monkeypatch.setattr("webhook.patching.jsonpatch.make_patch", recording)
    original = big_pod()
    draft = Draft(original)
    draft.append(("spec", "containers", 255, "args"), "--max-model-len=8192")
    draft.remove_item(("spec", "containers", 255, "args"), 3)
    draft.put(("spec", "containers", 255, "resources", "limits", "amd.com/gpu-partition"), "1")
    draft.put(("spec", "affinity", "nodeAffinity"), {"x": [1]})
    draft.put(("metadata", "annotations", "b"), "2")
    ops = draft.patch()
    assert jsonpatch.apply_patch(original, ops) == draft.root
    assert seen and max(seen) < 40_000, seen  # the one args list (2 x ~8 kB) at most, not the ~2.5 MB Pod
    assert {"op": "remove", "path": "/spec/containers/255/args/3"} in ops  # one remove, not a shifted tail
    assert all(op["path"].startswith(("/spec/containers/255/", "/spec/affinity", "/metadata/annotations/"))
               for op in ops), ops


def test_a_users_list_nested_1000_deep_is_never_walked() -> None:
    deep: Any = 1
    for _ in range(1000):
        deep = [deep]
    original = {"spec": {"containers": [{"args": [deep, "--port=1"], "env": deep}]}}
    draft = Draft(original)
    draft.append(("spec", "containers", 0, "args"), "--max-model-len=8192")
    draft.remove_item(("spec", "containers", 0, "args"), 1)
    ops = draft.patch()
    assert ops == [{"op": "replace", "path": "/spec/containers/0/args/1", "value": "--max-model-len=8192"}]
    patched = jsonpatch.apply_patch(original, ops, in_place=True)  # a copy would recurse 1,000 deep
    assert patched["spec"]["containers"][0]["args"][1:] == ["--max-model-len=8192"]


def _random_json(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return rng.choice(["a", "b", "", 1, 0, True, None, 2.5, "x/y", "~1"])
    if roll < 0.7:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(["a", "b", "c/d", "e~f", "g"]): _random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out += _paths(value, (*prefix, index))
    return out


def test_random_edits_give_patches_that_replay_exactly() -> None:
    rng = random.Random(20261205)
    for _ in range(400):
        original = {"root": _random_json(rng, 0), "keep": {"deep": [[1], {"x": 2}]}}
        before = copy.deepcopy(original)
        draft = Draft(original)
        for _ in range(rng.randrange(1, 6)):
            path = rng.choice(_paths(draft.root))
            value = _random_json(rng, 2)
            current = lookup(draft.root, path)
            try:
                if isinstance(current, list) and current and rng.random() < 0.5:
                    index = rng.randrange(len(current))
                    if rng.random() < 0.5:
                        draft.remove_item(path, index)
                    else:
                        draft.replace_item(path, index, value)
                elif isinstance(current, list) or current is None:
                    draft.append(path, value)
                else:
                    draft.put((*path, rng.choice(["n", "a", "c/d"])) if isinstance(current, dict) else path, value)
            except UnpatchableError:
                pass
        assert original == before
        ops = draft.patch()
        assert jsonpatch.apply_patch(copy.deepcopy(original), ops) == draft.root, (original, draft.root, ops)


def test_dotted_paths_read_like_kubectl_field_paths() -> None:
    assert dotted(("spec", "containers", 0, "resources", "limits", "amd.com/gpu-partition")) == \
        "spec.containers[0].resources.limits[amd.com/gpu-partition]"


@pytest.mark.parametrize("command, args, flag, value, index", [
    ([], ["--max-model-len=4096"], "--max-model-len", "4096", 0),
    ([], ["--max-model-len", "4096"], "--max-model-len", "4096", None),
    ([], ["--max_model_len=4096"], "--max-model-len", "4096", 0),
    ([], ["-tp", "2"], "--tensor-parallel-size", "2", None),
    ([], ["-tp=2"], "--tensor-parallel-size", "2", 0),
    ([], ["--max-model-len=1", "--max-model-len=2"], "--max-model-len", "2", 1),  # vLLM keeps the last
    (["vllm", "serve", "--max-model-len", "8"], ["--max-model-len=9"], "--max-model-len", "9", 0),
    (["vllm", "serve", "--max-model-len", "8"], ["--port=1"], "--max-model-len", "8", None),
    (["sh", "-c", "vllm serve m --max-model-len 4096 --dtype=half"], [], "--dtype", "half", None),
    (["sh", "-c", "vllm serve m --max-model-len 4096 --dtype=half"], [], "--max-model-len", "4096", None),
    ([], ["--enforce-eager"], "--enforce-eager", None, None),
])
def test_last_use_finds_the_value_vllm_will_use(command: list[str], args: list[str], flag: str,
                                                value: str | None, index: int | None) -> None:
    use = last_use(command, args, flag)
    assert use is not None
    assert (use.value, use.args_index) == (value, index)


def test_a_longer_flag_with_the_same_prefix_is_another_flag() -> None:
    assert last_use([], ["--max-model-len-x=1"], "--max-model-len") is None


def test_flag_reading_survives_hostile_tokens() -> None:
    tokens: list[object] = [None, 7, {"a": 1}, "-", "--", "=", "--=x", "-" * 10_000, "x " * 50_000]
    assert last_use(tokens, tokens, "--max-model-len") is None
    assert canonical("--a_b") == "--a-b" and canonical("-q") == "--quantization"


def test_runs_vllm_looks_at_image_command_and_args() -> None:
    assert runs_vllm("rocm/vllm:latest", [], [])
    assert runs_vllm("registry/x", ["python3", "-m", "vllm.entrypoints.openai.api_server"], [])
    assert not runs_vllm("amdenterpriseai/aim-base:0.8", [], ["--port=8000"])
    assert not runs_vllm(None, [None], [])
