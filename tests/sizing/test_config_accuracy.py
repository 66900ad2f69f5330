"""Real config.json files of models outside the catalogue, against transformers' meta-device truth.

tests/fixtures/configs/ holds the configs (SOURCES.md says where each came from);
tests/sizing/data/config_truth.json holds the numbers tools/truth/compute_truth.py measured with
transformers + PyTorch on the meta device. Parameters within 1 % (multimodal configs with their vision
tower and projector, which vLLM loads), KV bytes per token exact, cache bytes honouring the windows
transformers applies (Llama 4's attention chunks among them) and mllama's per-sequence image KV, quantized
weights within 3 % of the format's layout.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

import sizing
from sizing import SizingError, model_from_hf_config
from sizing.estimator import cross_attention_bytes, kv_bytes_per_token, kv_cache_bytes, state_bytes_per_sequence
from sizing.hf_config import read_layout

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "tests" / "fixtures" / "configs"
TRUTH: dict[str, Any] = json.loads((Path(__file__).parent / "data" / "config_truth.json").read_text())
MEASURED = sorted(TRUTH["configs"])


def _config(name: str) -> dict[str, Any]:
    return json.loads((CONFIGS / name).read_text(encoding="utf-8"))


def test_enough_real_configs_with_recorded_sources() -> None:
    sources = (CONFIGS / "SOURCES.md").read_text(encoding="utf-8")
    files = sorted(p.name for p in CONFIGS.glob("*.json"))
    assert len(files) >= 15
    assert all(name in sources for name in files)
    assert set(MEASURED) | set(TRUTH["skipped"]) == set(files)


@pytest.mark.parametrize("name", MEASURED)
def test_parameters_within_one_percent(name: str) -> None:
    arch = model_from_hf_config(_config(name), model_id=name)
    truth = TRUTH["configs"][name]["params"]
    assert abs(arch.params_total - truth) <= truth // 100, (arch.params_total, truth)


@pytest.mark.parametrize("name", MEASURED)
def test_kv_bytes_per_token_exact(name: str) -> None:
    arch = model_from_hf_config(_config(name), model_id=name)
    assert kv_bytes_per_token(arch) == TRUTH["configs"][name]["kv_bytes_per_token"]


@pytest.mark.parametrize("name", MEASURED)
def test_cache_honours_the_windows_transformers_applies(name: str) -> None:
    arch = model_from_hf_config(_config(name), model_id=name)
    t = TRUTH["configs"][name]
    kv_layers = t.get("kv_layers", t["num_layers"])  # hybrids: only their attention layers
    per_layer = t["kv_bytes_per_token"] // kv_layers
    tokens = min(arch.max_context, 32768)
    window = t["sliding_window"] or tokens
    full_layers = kv_layers - t["sliding_layers"]
    expected = per_layer * (full_layers * tokens + t["sliding_layers"] * min(tokens, window))
    expected += t.get("cross_attention", {}).get("bytes_per_sequence", 0)  # mllama: the image's keys/values
    block = _vllm_hybrid_block(t)
    if block:  # a hybrid's attention layers hold whole blocks
        expected = per_layer * kv_layers * math.ceil(tokens / block) * block
    assert kv_cache_bytes(arch, tokens, 1) == expected


def _vllm_hybrid_block(t: dict[str, Any]) -> int:
    """vLLM's attention block for a hybrid model: 16 x cdiv(one layer's state, 16 x KV bytes per token
    of one attention layer), from the truth numbers (0 for a model without state)."""
    if "state_layers" not in t:
        return 0
    page = math.ceil(t["state_bytes_per_sequence"] / t["state_layers"])
    return 16 * math.ceil(page / (16 * (t["kv_bytes_per_token"] // t["kv_layers"])))


@pytest.mark.parametrize("name", MEASURED)
def test_fixed_state_per_sequence_exact(name: str) -> None:
    """Hybrid models: one sequence's Mamba / gated-delta-net / short-conv state, as vLLM shapes it from
    the instantiated modules; 0 for every model without such layers."""
    arch = model_from_hf_config(_config(name), model_id=name)
    assert state_bytes_per_sequence(arch) == TRUTH["configs"][name].get("state_bytes_per_sequence", 0)


@pytest.mark.parametrize("name", [n for n in MEASURED if "state_bytes_per_sequence" in TRUTH["configs"][n]])
def test_hybrid_state_counts_per_sequence_not_per_token(name: str) -> None:
    arch = model_from_hf_config(_config(name), model_id=name)
    t = TRUTH["configs"][name]
    short = sizing.estimate(arch, "bf16", max_model_len=1024, concurrency=3)
    long = sizing.estimate(arch, "bf16", max_model_len=4096, concurrency=3)
    # one state page per sequence and state layer, padded to one attention block's KV (vLLM)
    page = _vllm_hybrid_block(t) * t["kv_bytes_per_token"] // t["kv_layers"]
    assert short.state_cache_bytes == long.state_cache_bytes == 3 * t["state_layers"] * page
    assert 3 * t["state_bytes_per_sequence"] <= long.state_cache_bytes
    assert long.total_bytes - long.kv_cache_bytes - long.state_cache_bytes == (
        long.weights_bytes + long.activation_bytes + long.overhead_bytes)


@pytest.mark.parametrize("name", [n for n in MEASURED if "vision_params" in TRUTH["configs"][n]])
def test_vision_tower_within_one_percent(name: str) -> None:
    """Multimodal configs: the vision tower and projector vLLM loads are in the weights (and in params,
    checked above), within the same 1 % as the whole model."""
    layout = read_layout(_config(name))
    truth = TRUTH["configs"][name]["vision_params"]
    assert abs(layout.vision_params - truth) <= truth // 100, (layout.vision_params, truth)


@pytest.mark.parametrize("name", [n for n in MEASURED if "cross_attention" in TRUTH["configs"][n]])
def test_cross_attention_caches_image_tokens_per_sequence(name: str) -> None:
    """mllama: cross-attention layers hold the image's keys/values, a fixed amount per sequence that
    does not grow with the text (and is not in the per-token KV)."""
    arch = model_from_hf_config(_config(name), model_id=name)
    cross = TRUTH["configs"][name]["cross_attention"]
    assert cross_attention_bytes(arch) == cross["bytes_per_sequence"]
    per_token = kv_bytes_per_token(arch)
    assert kv_cache_bytes(arch, 2048, 3) - kv_cache_bytes(arch, 1024, 3) == 3 * 1024 * per_token
    assert kv_cache_bytes(arch, 1024, 3) == 3 * (1024 * per_token + cross["bytes_per_sequence"])


@pytest.mark.parametrize("name", [n for n in MEASURED if "quantized" in TRUTH["configs"][n]])
def test_quantized_weights_within_three_percent_of_the_layout(name: str) -> None:
    arch = model_from_hf_config(_config(name), model_id=name)
    assert arch.quantization is not None
    truth = TRUTH["configs"][name]["quantized"]["total"]
    assert abs(arch.quantization.total_bytes - truth) <= truth * 3 // 100, (arch.quantization.total_bytes, truth)
    # the declared format is what the estimate uses, without a --precision
    need = sizing.estimate(arch, arch.quantization.scheme.precision)
    assert need.weights_bytes == arch.quantization.total_bytes


def test_quantized_checkpoint_with_contradicting_precision_names_both() -> None:
    arch = model_from_hf_config(_config("mistral-7b-awq.json"), model_id="mistral-awq")
    with pytest.raises(SizingError, match=r"awq int4.*fp16"):
        sizing.estimate(arch, "fp16")
    assert sizing.engine_args(sizing.estimate(arch, "int4"), 64 * sizing.GIB)["quantization"] == "awq"


def test_awq_is_two_to_three_times_smaller_than_fp16() -> None:
    config = _config("mistral-7b-awq.json")
    quantized = model_from_hf_config(config)
    plain = model_from_hf_config({k: v for k, v in config.items() if k != "quantization_config"})
    assert quantized.quantization is not None
    ratio = sizing.estimate(plain, "fp16").weights_bytes / quantized.quantization.total_bytes
    assert 2.5 < ratio < 4.0


@pytest.mark.parametrize("name", sorted(TRUTH["skipped"]))
def test_configs_transformers_cannot_build_are_refused_naming_field_and_type(name: str) -> None:
    with pytest.raises(SizingError, match=r"model_type '[^']+'.*field"):
        model_from_hf_config(_config(name))
