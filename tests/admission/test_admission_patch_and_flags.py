"""JSON Pointer escaping, the patch builder, and reading vLLM flags a user already wrote."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from webhook.engine_flags import canonical, last_use, runs_vllm
from webhook.patching import PatchBuilder, UnpatchableError, dotted, pointer


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


def test_builder_ops_replay_to_the_same_object() -> None:
    original: dict[str, Any] = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "args": ["a"]}]}}
    working = copy.deepcopy(original)
    builder = PatchBuilder(working)
    builder.put(("metadata", "annotations", "x/y~z"), "1")
    builder.put(("metadata", "annotations", "other"), "2")
    builder.put(("spec", "containers", 0, "resources", "limits", "amd.com/gpu-partition"), "2")
    builder.put(("spec", "containers", 0, "resources", "requests", "amd.com/gpu-partition"), "2")
    builder.append(("spec", "containers", 0, "args"), "--b=1")
    builder.append(("spec", "containers", 0, "env"), {"name": "E", "value": "v"})
    builder.replace_item(("spec", "containers", 0, "args"), 0, "A")
    assert jsonpatch.apply_patch(original, builder.ops) == working
    # A missing parent chain is one op, not one per level.
    assert [op["path"] for op in builder.ops[:2]] == ["/metadata/annotations", "/metadata/annotations/other"]
    assert builder.ops[0]["value"] == {"x/y~z": "1"}  # recorded as it was, not as later ops left it


@pytest.mark.parametrize("document, path, append", [
    ({"spec": {"containers": "oops"}}, ("spec", "containers", 0, "args"), False),
    ({"spec": "oops"}, ("spec", "affinity"), False),
    ({"spec": {"args": {"not": "a list"}}}, ("spec", "args"), True),
])
def test_builder_refuses_wrong_types_naming_the_path(document: dict[str, Any], path: tuple[Any, ...],
                                                     append: bool) -> None:
    builder = PatchBuilder(document)
    with pytest.raises(UnpatchableError) as caught:
        builder.append(path, "--x=1") if append else builder.put(path, "v")
    assert dotted(caught.value.path).startswith("spec")
    assert builder.ops == []


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
