"""Quantization ignore lists (sizing.module_patterns): hostile entries are refused naming the entry,
entries that stall Python's backtracking ``re`` are matched in milliseconds by RE2 with the answers
Python gives, the whole list's work is bounded, and multimodal checkpoints' ``language_model`` /
``model.visual`` names match the layout's modules (issue 18)."""

from __future__ import annotations

import copy
import fnmatch
import json
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sizing import SizingError, model_from_hf_config
from sizing.hf_config import read_layout
from sizing.module_patterns import MAX_REGEX_ENTRIES, ignore_matcher, name_forms
from sizing.quantization import names_matched

CONFIGS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "configs"
SECONDS = 1.0  # each hostile config is sized or refused within this (they take < 0.3 s; a shared CI machine)


def _config(name: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((CONFIGS / name).read_text(encoding="utf-8"))
    return config


def _fp8(config: dict[str, Any], ignore: list[Any]) -> dict[str, Any]:
    out = copy.deepcopy(config)
    out.pop("quantization_config", None)
    out.get("text_config", {}).pop("quantization_config", None)
    out["quantization_config"] = {"quant_method": "fp8", "weight_block_size": [128, 128],
                                  "modules_to_not_convert": ignore}
    return out


def _w4a16(config: dict[str, Any], ignore: list[str]) -> dict[str, Any]:
    """llm-compressor's W4A16 compressed-tensors block with ``ignore``."""
    out = copy.deepcopy(config)
    out["quantization_config"] = {
        "quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ignore,
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
            "num_bits": 4, "type": "int", "symmetric": True, "strategy": "group", "group_size": 128}}}}
    return out


def _sized_or_refused(config: dict[str, Any]) -> tuple[object, float]:
    started = time.perf_counter()
    try:
        result: object = model_from_hf_config(config)
    except SizingError as exc:
        result = exc
    return result, time.perf_counter() - started


# Each once crashed aim-sizing (OverflowError), or would make RE2 or Python's compiler do unbounded work.
HOSTILE = [
    ("re:a{4294967296}", "repetition count above 64"),
    ("re:a{" + "9" * 400 + "}", "repetition count above 64"),
    ("re:a{65}", "repetition count above 64"),
    ("re:" + ".*" * 17 + "x", "17 repetition operators"),
    ("re:(?<=mlp)gate", "look-around and back-references are refused"),
    (r"re:(a)\1", "look-around and back-references are refused"),
    ("re:(?>atomic)", "look-around and back-references are refused"),
    ("re:(", "not a regex Python accepts"),
    ("re:(?:.{64}){4}", "RE2 instructions (limit 2,000)"),
    ("*a" * 17, "17 wildcards"),
    ("x" * 513, "longer than 512 characters"),
    (5, 'must be a module name or "re:" regex, got 5'),
    (["lm_head"], "must be a module name"),
]


@pytest.mark.parametrize(("entry", "problem"), HOSTILE, ids=lambda v: repr(v)[:30])
def test_a_hostile_entry_is_refused_naming_it(entry: object, problem: str) -> None:
    result, seconds = _sized_or_refused(_fp8(_config("mistral-7b-awq.json"), ["lm_head", entry]))
    assert isinstance(result, SizingError), result
    assert "field 'quantization_config.modules_to_not_convert[1]'" in str(result) and problem in str(result), result
    assert "\n" not in str(result) and len(str(result)) < 400
    assert seconds < SECONDS


def test_gptq_dynamic_rules_are_checked_too() -> None:
    config = copy.deepcopy(_config("mistral-7b-awq.json"))
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4, "group_size": 128,
                                     "dynamic": {"-:a{4294967296}": {}}}
    with pytest.raises(SizingError, match=r"field 'quantization_config\.dynamic' key '-:a\{4294967296\}' has a "
                                          r"repetition count above 64"):
        model_from_hf_config(config)


# Entries Python's backtracking re takes seconds to minutes (or forever) on, each with what it means
# written so Python answers at once: RE2 must give that answer, in microseconds.
SLOW_FOR_PYTHON: list[tuple[str, Callable[[str], bool]]] = [
    ("re:" + ".*" * 12 + "x", lambda name: "x" in name),
    ("re:(a+)+$", lambda name: set(name) == {"a"}),
    ("re:(.*e){10}$", lambda name: name.endswith("e") and name.count("e") >= 10),
    ("re:(.*e){3}", lambda name: name.count("e") >= 3),
    ("re:(x+x+)+y", lambda name: re.match("xx+y", name) is not None),
    ("re:(?:.*l){16}zz", lambda name: re.match("(?:[^l]*l){16}.*zz", name) is not None),
    ("re:(model|model.)*\\.$", lambda name: re.fullmatch("(model.?)*\\.", name) is not None),
]


@pytest.mark.parametrize(("entry", "meaning"), SLOW_FOR_PYTHON, ids=[e for e, _ in SLOW_FOR_PYTHON])
def test_entries_that_stall_python_are_sized_in_milliseconds(entry: str, meaning: Callable[[str], bool]) -> None:
    for name in ("mistral-7b-awq.json", "deepseek-v3.2.json"):
        config = _config(name)
        result, seconds = _sized_or_refused(_fp8(config, [entry]))
        assert not isinstance(result, Exception), result
        assert seconds < SECONDS, f"{entry}: {seconds:.2f} s"
        layout = read_layout(config)
        assert names_matched(layout, [entry], "fp8") == sum(meaning(lin.name) for lin in layout.linears)


def test_the_issue_s_stall_no_longer_stalls() -> None:
    """Chained ``.*`` entries took 25 s and held the GIL on a hot reload: a list of 200 now takes well under a
    second for the largest layout in the fixtures."""
    entries = ["re:" + ".*" * 12 + f"x{i}" for i in range(200)]
    result, seconds = _sized_or_refused(_fp8(_config("deepseek-v3.2.json"), entries))
    assert not isinstance(result, Exception), result
    assert seconds < SECONDS


def _random_regex(rng: random.Random) -> str:
    parts = [".*", r"\.", "layers", r"\d+", "mlp", "(gate|up)_proj", "[0-9]", "self_attn", "experts", "?",
             "lm_head", "model", r"\d{1,2}", "(q|k|v)_proj", "[a-z_]+", "$", "0", ".", "o_proj", r"\Z", "{,2}"]
    text = "".join(rng.choice(parts) for _ in range(rng.randint(1, 6)))
    try:
        re.compile(text)
    except re.error:
        return _random_regex(rng)
    return text


def test_regex_entries_match_what_python_matches() -> None:
    """A seeded differential test: RE2's answer for every module name equals Python's ``re.match``."""
    names = [lin.name for lin in read_layout(_config("olmoe-1b-7b-0924.json")).linears]
    names += ["model.layers.0.mlp.gate", "lm_head", "model.layers.12.self_attn.q_proj"]
    rng = random.Random(18)
    for _ in range(300):
        regex = _random_regex(rng)
        matcher = ignore_matcher([f"re:{regex}"], "compressed-tensors", False, names)
        for name in names:
            assert matcher.matches(name) == (re.match(regex, name) is not None), (regex, name)


@pytest.mark.parametrize("glob", ["model.layers.*.self_attn", "*.mlp.gate", "model.layers.1?.mlp.*", "*[0-3].mlp*",
                                  "*[!0-9].o_proj", "*lm_head*", "model.layers.[12].*", "[*", "*q_proj]"])
def test_glob_entries_match_what_fnmatch_matches(glob: str) -> None:
    names = [lin.name for lin in read_layout(_config("olmoe-1b-7b-0924.json")).linears]
    matcher = ignore_matcher([glob], "awq", False, names)
    for name in names:
        expected = fnmatch.fnmatchcase(name, glob) or fnmatch.fnmatchcase(name, glob + ".*")
        assert matcher.matches(name) == expected, (glob, name)


def test_plain_names_keep_each_method_s_rule() -> None:
    names = ["model.layers.0.mlp.gate", "model.layers.0.mlp.gate_proj", "model.layers.1.mlp.gate"]
    ct = ignore_matcher(["model.layers.0.mlp.gate", "model.layers.1"], "compressed-tensors", False, names)
    assert [ct.matches(n) for n in names] == [True, False, True]  # the module itself or a parent
    awq = ignore_matcher(["mlp.gate"], "awq", False, names)
    assert [awq.matches(n) for n in names] == [True, True, True]  # AWQ tests substrings


def test_the_list_s_work_is_bounded() -> None:
    config = _config("deepseek-v3.2.json")
    too_many = [f"re:.*x{i}" for i in range(MAX_REGEX_ENTRIES + 1)]
    result, seconds = _sized_or_refused(_fp8(config, too_many))
    assert isinstance(result, SizingError) and f"more than {MAX_REGEX_ENTRIES} regex and glob entries" in str(result)
    assert seconds < SECONDS
    heavy = [f"re:(?:.*[a-z].{{9}}){{3}}{i}" for i in range(250)]  # ~250 RE2 instructions each
    result, seconds = _sized_or_refused(_fp8(config, heavy))
    assert isinstance(result, SizingError) and "RE2 instructions in all" in str(result), result
    assert seconds < SECONDS
    plain = [f"model.layers.{i}.mlp.gat" for i in range(4096)]  # 4,096 substrings x 904 module names
    result, seconds = _sized_or_refused(_fp8(config, plain))
    assert isinstance(result, SizingError) and "too many to look for" in str(result), result
    assert seconds < SECONDS


def test_language_model_names_of_multimodal_checkpoints_match() -> None:
    """Qwen3-VL checkpoints (transformers >= 4.52) and Llama 4 checkpoints name the text model
    ``model.language_model.layers.N`` / ``language_model.model.layers.N``; the layout says ``model.layers.N``."""
    qwen = _config("qwen3-vl-8b-instruct.json")
    layout = read_layout(qwen)
    plain = model_from_hf_config(_w4a16(qwen, ["lm_head"])).quantization
    assert plain is not None and plain.scheme.multimodal
    q_proj = next(lin for lin in layout.linears if lin.name == "model.layers.0.self_attn.q_proj")
    visual = [lin for lin in layout.linears if lin.name.startswith("model.visual.")]
    assert visual  # the vision tower is in the layout (F1's vision_tower)
    for ignore in (["lm_head", "model.language_model.layers.0.self_attn.q_proj", "re:model.visual.*"],
                   ["lm_head", "re:.*language_model\\.layers\\.0\\.self_attn\\.q_proj$", "re:visual.*"],
                   ["lm_head", "language_model.model.layers.0.self_attn.q_proj", "visual"]):
        ignored = model_from_hf_config(_w4a16(qwen, ignore)).quantization
        assert ignored is not None
        extra = ignored.unquantized_params - plain.unquantized_params  # biases are 16-bit either way
        assert extra == sum(lin.in_features * lin.out_features for lin in [q_proj, *visual]), ignore
    # Llama 4 spells the head language_model.lm_head and the tower vision_model (no model. prefix)
    scout = read_layout(_config("llama-4-scout-17b-16e-instruct.json"))
    assert names_matched(scout, ["re:language_model\\.lm_head", "re:model\\.vision_model\\."], "compressed-tensors",
                         multimodal=True) == 1 + sum(lin.name.startswith("vision_model.") for lin in scout.linears)


def test_a_text_only_checkpoint_is_not_given_multimodal_spellings() -> None:
    mistral = read_layout(_config("mistral-7b-awq.json"))
    assert names_matched(mistral, ["language_model.model.layers.0"], "compressed-tensors") == 0
    assert names_matched(mistral, ["model.layers.0.self_attn"], "compressed-tensors") == 4
    assert name_forms("model.layers.0.mlp.gate", False) == ("model.layers.0.mlp.gate",)
