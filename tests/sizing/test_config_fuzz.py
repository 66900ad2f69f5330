"""Seeded, bounded fuzzing of config.json reading: every mutation of a real config is either sized
or refused with a SizingError (never another exception), each within a second."""

from __future__ import annotations

import contextlib
import copy
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest

import sizing
from sizing import SizingError, model_from_hf_config

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "configs").glob("*.json"))
ROUNDS = 60  # per config: ~1,400 mutations in about 2 s
GARBAGE: list[Any] = [None, True, False, "x", "", -1, 0, 1, 3, 10**30, -(10**30), 1.5, float("nan"), [], {},
                      [1] * 5000, "a" * 10000, {"k": "v"}, ["sliding_attention"] * 3, "re:(a+)+$",
                      [["self_attn.q_proj"]], ["re:("], ["re:.*"] * 4096, ["re:a{4294967296}"],
                      ["re:" + ".*" * 12 + "x"], ["re:(?<=a)b"], ["*" * 600]]


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _mutate(config: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    out = copy.deepcopy(config)
    targets: list[dict[str, Any]] = [out]
    if isinstance(out.get("quantization_config"), dict):
        targets.append(out["quantization_config"])
    for _ in range(rng.randint(1, 3)):
        target = rng.choice(targets)
        key = rng.choice([*target, "layer_types", "sliding_window_pattern", "quantization_config", "text_config",
                          "kv_lora_rank", "n_routed_experts", "mlp_only_layers", "max_window_layers"])
        roll = rng.random()
        if roll < 0.15:
            target.pop(key, None)
        elif roll < 0.25:
            target[key] = _nested(rng.choice([10, 200, 900]))
        else:
            target[key] = rng.choice(GARBAGE)
    return out


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_mutated_configs_are_sized_or_refused_quickly(path: Path) -> None:
    config = json.loads(path.read_text(encoding="utf-8"))
    rng = random.Random(path.name)
    for _ in range(ROUNDS):
        mutated = _mutate(config, rng)
        started = time.perf_counter()
        try:
            arch = model_from_hf_config(mutated)
            precision = arch.quantization.scheme.precision if arch.quantization else "bf16"
            sizing.estimate(arch, precision, max_model_len=min(arch.max_context, 4096))
        except SizingError:
            pass
        assert time.perf_counter() - started < 1.0


# Regex atoms and repetitions, Python's and RE2's, the dangerous ones included (issue 18:
# re:a{4294967296} crashed aim-sizing, chained .* stalled 25 s), plus stray syntax.
ATOMS = ["a", "e", ".", "(a|e)", "[a-z]", "model", "\\.", "\\d", "(?:.*)", "(?<=a)", "\\1", "(?P<x>a)", "\\Z", "$",
         "^", "(?i)", "(?>a)", "\\p{L}", "\u00e9", "\x00", "(", ")", "[", "{", "|"]
REPEATS = ["", "", "*", "+", "?", "{4294967296}", "{1001}", "{65}", "{2,3}", "{,5}", "*+", "*?"]


def _random_regex(rng: random.Random, depth: int = 0) -> str:
    parts = []
    for _ in range(rng.randint(1, 5)):
        atom = f"({_random_regex(rng, depth + 1)})" if depth < 2 and rng.random() < 0.2 else rng.choice(ATOMS)
        parts.append(atom + rng.choice(REPEATS))
    return "".join(parts)


def test_random_ignore_entries_are_sized_or_refused_quickly() -> None:
    """Seeded random ignore entries (as a compressed-tensors ignore, an AWQ modules_to_not_convert and a
    GPTQModel dynamic rule): each config is sized or refused with a SizingError, within a second."""
    config = json.loads((CONFIGS[0].parent / "mistral-7b-awq.json").read_text(encoding="utf-8"))
    rng = random.Random(18)
    for _ in range(150):
        entry = _random_regex(rng)
        for quantization in ({"quant_method": "awq", "modules_to_not_convert": [f"re:{entry}", entry]},
                             {"quant_method": "gptq", "dynamic": {f"-:{entry}": {}}},
                             {"quant_method": "compressed-tensors", "ignore": [f"re:{entry}", entry],
                              "config_groups": {"g": {"targets": ["Linear"], "weights": {"num_bits": 4}}}}):
            mutated = {**config, "quantization_config": quantization}
            started = time.perf_counter()
            with contextlib.suppress(SizingError):
                model_from_hf_config(mutated)
            assert time.perf_counter() - started < 1.0, entry
