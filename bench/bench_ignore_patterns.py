#!/usr/bin/env python3
"""Benchmark quantization ignore-list matching (sizing.module_patterns, sizing.quantization).

Every case is a real config from tests/fixtures/configs with a quantization block whose ignore list
is either realistic or hostile. Two timings per case, each the p50 and max of ``--runs`` runs:

  matcher  ``names_matched``: the list checked, compiled (RE2) and matched against every linear
           module of the layout, in every spelling a multimodal checkpoint may use;
  sizing   ``model_from_hf_config`` end to end (layout, quantization, estimate inputs), which is
           what ``aim-sizing --config``, ``models add`` and the extender's models-dir reload run.

The realistic lists: llm-compressor's published recipes (examples/quantization_w8a8_fp8/
llama4_fp8_block_example.py: six entries; examples/model_free_ptq/glm_4.6_fp8_block.py: three), and
two lists of 20 plain names composed the way Meta's fp8_mixed and DeepSeek's checkpoints keep modules
in 16 bits (attention, routers, the first dense and the last layers, embeddings, head, vision tower
and projector). The hostile ones are what issue 18's sweep sent (256 chained ``.*`` entries took
25 s with Python's ``re``) and each bound's first refusal.

    .venv/bin/python bench/bench_ignore_patterns.py [--runs 20]

Not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sizing import SizingError, model_from_hf_config
from sizing.hf_config import Layout, read_layout
from sizing.quantization import names_matched, read_quantization

CONFIGS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "configs"


def _config(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((CONFIGS / name).read_text(encoding="utf-8"))
    doc.pop("quantization_config", None)
    doc.get("text_config", {}).pop("quantization_config", None)
    return doc


def fp8(name: str, ignore: list[str]) -> dict[str, Any]:
    """An fp8 block checkpoint (DeepSeek's and Meta's key: modules_to_not_convert, substring matching)."""
    out = _config(name)
    out["quantization_config"] = {"quant_method": "fp8", "weight_block_size": [128, 128],
                                  "modules_to_not_convert": ignore}
    return out


def fp8_block_ct(name: str, ignore: list[str]) -> dict[str, Any]:
    """llm-compressor's FP8_BLOCK scheme saved as compressed-tensors (``ignore``: a module or a parent)."""
    out = _config(name)
    out["quantization_config"] = {
        "quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ignore,
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
            "num_bits": 8, "type": "float", "symmetric": True, "strategy": "block", "block_structure": [128, 128]}}}}
    return out


MAVERICK = "llama-4-maverick-17b-128e-instruct.json"
DEEPSEEK = "deepseek-v3.2.json"
GLM = "glm-4.6.transcribed.json"

LLAMA4_RECIPE = ["re:.*lm_head", "re:.*self_attn", "re:.*router", "re:.*vision_model.*",
                 "re:.*multi_modal_projector.*", "Llama4TextAttention"]
# 20 plain names: head, vision tower, projector, the first and last layers' feed-forward, attention of 15 layers.
MAVERICK_20 = ["language_model.lm_head", "vision_model", "multi_modal_projector",
               "language_model.model.layers.0.feed_forward", "language_model.model.layers.47.feed_forward",
               *(f"language_model.model.layers.{i}.self_attn" for i in range(0, 45, 3))]
# 20 entries: head, embeddings, routers, the indexer, the three dense layers' MLPs, 13 layers' kv_b_proj.
DEEPSEEK_20 = ["lm_head", "model.embed_tokens", "re:.*mlp\\.gate$", "re:.*self_attn\\.indexer\\..*",
               "model.layers.0.mlp", "model.layers.1.mlp", "model.layers.2.mlp",
               *(f"model.layers.{i}.self_attn.kv_b_proj" for i in range(12, 61, 4))]
GLM_RECIPE = ["re:.*gate$", "lm_head", "model.embed_tokens"]

CHAINED = ["re:" + ".*" * 12 + f"x{i}" for i in range(256)]  # issue 18: 25 s in Python's re, per reload

CASES: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
    ("realistic", "Maverick, llm-compressor FP8_BLOCK recipe (6)", lambda: fp8_block_ct(MAVERICK, LLAMA4_RECIPE)),
    ("realistic", "Maverick, 20 plain names (fp8)", lambda: fp8(MAVERICK, MAVERICK_20)),
    ("realistic", "DeepSeek-V3.2, 20 entries (fp8)", lambda: fp8(DEEPSEEK, DEEPSEEK_20)),
    ("realistic", "GLM-4.6, model_free_ptq FP8_BLOCK (3)", lambda: fp8_block_ct(GLM, GLM_RECIPE)),
    ("hostile", "DeepSeek-V3.2, 256 chained .* (12 each)", lambda: fp8(DEEPSEEK, CHAINED)),
    ("hostile", "Maverick, 256 chained .* (12 each)", lambda: fp8(MAVERICK, CHAINED)),
    ("hostile", "DeepSeek-V3.2, 256 x 16 .* (per-entry max)",
     lambda: fp8(DEEPSEEK, ["re:" + ".*" * 16 + f"x{i}" for i in range(256)])),
    ("hostile", "DeepSeek-V3.2, (a+)+$ and (?:.*l){16}zz", lambda: fp8(DEEPSEEK, ["re:(a+)+$", "re:(?:.*l){16}zz"])),
    ("hostile", "DeepSeek-V3.2, 257 regex entries", lambda: fp8(DEEPSEEK, [f"re:.*x{i}" for i in range(257)])),
    ("hostile", "DeepSeek-V3.2, re:a{4294967296}", lambda: fp8(DEEPSEEK, ["lm_head", "re:a{4294967296}"])),
    ("hostile", "DeepSeek-V3.2, 4,096 plain names",
     lambda: fp8(DEEPSEEK, [f"model.layers.{i}.mlp.gat" for i in range(4096)])),
]


def _timed(call: Callable[[], object]) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        result = call()
        outcome = f"{result}" if isinstance(result, int) else "sized"
    except SizingError as exc:
        outcome = "refused: " + str(exc).removeprefix("config.json: ")[:90]
    return time.perf_counter() - started, outcome


def _stats(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples) * 1e3:8.2f} ms  max {max(samples) * 1e3:8.2f} ms"


def _match(config: dict[str, Any], layout: Layout) -> int:
    scheme = read_quantization(config)  # the list's entries are checked here
    assert scheme is not None
    return names_matched(layout, scheme.ignore, scheme.method, scheme.multimodal)


def run_case(config: dict[str, Any], runs: int) -> str:
    layout = read_layout(copy.deepcopy(config))
    matcher: list[float] = []
    sizing_: list[float] = []
    outcome = ""
    for _ in range(runs):
        seconds, outcome = _timed(partial(_match, config, layout))
        matcher.append(seconds)
        seconds, _ = _timed(partial(model_from_hf_config, config))
        sizing_.append(seconds)
    what = f"{outcome} of {len(layout.linears)} linears ignored" if outcome.isdigit() else outcome
    return f"matcher {_stats(matcher)} | sizing {_stats(sizing_)} | {what}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    for kind, name, make in CASES:
        print(f"{kind:9s} {name:44s} {run_case(make(), args.runs)}", flush=True)


if __name__ == "__main__":
    main()
