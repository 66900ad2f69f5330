"""Hybrid models (attention + Mamba / gated delta net / short conv): sized, not refused (issue 18).

The meta-device truth for the real configs is in test_config_accuracy.py; here: the per-rank state
under tensor parallelism in vLLM's shapes, vLLM's hybrid block layout, the CLI, and refusals that
name the field.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import sizing
from sizing import SizingError, model_from_hf_config
from sizing.cli import main
from sizing.estimator import hybrid_block_tokens, kv_cache_bytes, state_bytes_per_sequence, state_cache_bytes

CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "configs"
HYBRIDS = ("qwen3-next-80b-a3b-instruct.json", "qwen3.5-9b.json", "jamba-1.5-mini.json", "granite-4.0-h-tiny.json",
           "granite-4.0-h-1b.json", "falcon-h1-7b.json", "lfm2-1.2b.json")


def _config(name: str) -> dict[str, Any]:
    return json.loads((CONFIGS / name).read_text(encoding="utf-8"))


def test_state_per_rank_follows_vllm_shapes_under_tensor_parallel() -> None:
    # Qwen3-Next: 36 gated delta nets, conv 2 x 16 x 128 + 32 x 128 channels x 3, state 32 x 128 x 128, bf16
    qnext = model_from_hf_config(_config("qwen3-next-80b-a3b-instruct.json"))
    assert state_bytes_per_sequence(qnext) == 36 * (8192 * 3 + 32 * 128 * 128) * 2
    assert state_bytes_per_sequence(qnext, 2) == 36 * (4096 * 3 + 16 * 128 * 128) * 2
    # Granite-4.0-H-Tiny at TP 2: vLLM extends the one B/C group to two, so each rank keeps
    # 3072 / 2 + 2 x 128 conv channels; 48 / 2 heads of 64 x 128 state
    granite = model_from_hf_config(_config("granite-4.0-h-tiny.json"))
    assert state_bytes_per_sequence(granite, 2) == 36 * ((1536 + 256) * 3 + 24 * 64 * 128) * 2
    # Qwen3.5 pins mamba_ssm_dtype float32: the recurrent state in 4 bytes, the conv window in 2
    qwen35 = model_from_hf_config(_config("qwen3.5-9b.json"))
    assert state_bytes_per_sequence(qwen35) == 24 * (8192 * 3 * 2 + 32 * 128 * 128 * 4)
    # LFM2: a short conv keeps hidden x (L_cache - 1) values and nothing else
    lfm2 = model_from_hf_config(_config("lfm2-1.2b.json"))
    assert state_bytes_per_sequence(lfm2) == 10 * 2048 * 2 * 2


def test_hybrid_block_and_page_padding_are_vllms() -> None:
    # Qwen3.5-9B: one layer's state 2,146,304 B, attention 2 x 4 x 256 x 2 = 4,096 B per token and layer:
    # 16 x cdiv(2146304, 65536) = 528 tokens, the block vLLM logs for this model
    qwen35 = model_from_hf_config(_config("qwen3.5-9b.json"))
    assert hybrid_block_tokens(qwen35) == 528
    # the KV of a sequence is whole blocks: 1 token costs one block on each of the 8 attention layers
    assert kv_cache_bytes(qwen35, 1, 1) == kv_cache_bytes(qwen35, 528, 1) == 8 * 528 * 4096
    assert kv_cache_bytes(qwen35, 529, 1) == 8 * 1056 * 4096
    # each state page padded to one attention page
    assert state_cache_bytes(qwen35, 2) == 2 * 24 * 528 * 4096
    # fp8 KV halves the attention bytes per token, so the block doubles; the state keeps its bf16/fp32 size
    assert hybrid_block_tokens(qwen35, "fp8") == 1056
    assert state_cache_bytes(qwen35, 1, "fp8") == state_cache_bytes(qwen35, 1)
    # a model without state has no hybrid block and an unrounded cache
    plain = model_from_hf_config(_config("olmoe-1b-7b-0924.json"))
    assert hybrid_block_tokens(plain) == 0 and state_cache_bytes(plain, 4) == 0
    assert kv_cache_bytes(plain, 1, 1) == sizing.estimator.kv_bytes_per_token(plain)


@pytest.mark.parametrize("name", HYBRIDS)
def test_hybrid_estimate_holds_kv_of_attention_layers_and_state_per_sequence(name: str) -> None:
    model = model_from_hf_config(_config(name))
    assert model.recurrent_state is not None and 0 < model.kv_layers <= model.num_layers
    one = sizing.estimate(model, "bf16", concurrency=1)
    four = sizing.estimate(model, "bf16", concurrency=4)
    assert one.state_cache_bytes > 0 and four.state_cache_bytes == 4 * one.state_cache_bytes
    assert four.total_bytes - one.total_bytes == 3 * (one.kv_cache_bytes + one.state_cache_bytes)
    # attention layers only: every other layer's KV would be a multiple of this
    per_layer = sizing.estimator.kv_bytes_per_token_per_layer(model, "auto")
    assert one.kv_bytes_per_token == model.kv_layers * per_layer


def test_falcon_h1_runs_attention_and_mamba_in_every_layer() -> None:
    model = model_from_hf_config(_config("falcon-h1-7b.json"))
    assert model.kv_layers == model.num_layers == 44
    assert model.recurrent_state is not None and model.recurrent_state.layers == 44


@pytest.mark.parametrize("name", HYBRIDS)
def test_cli_estimates_a_hybrid_config(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["estimate", "--config", str(CONFIGS / name), "--precision", "bf16", "--concurrency", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "state " in out and "B/sequence" in out


def _broken(name: str, path: tuple[str, ...], value: Any) -> dict[str, Any]:
    config = copy.deepcopy(_config(name))
    target = config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return config


@pytest.mark.parametrize(("name", "path", "value", "message"), [
    ("qwen3-next-80b-a3b-instruct.json", ("layer_types",), ["linear_attention"] * 47 + ["mamba"],
     r"field 'layer_types' names layer type 'mamba'"),
    ("qwen3-next-80b-a3b-instruct.json", ("layer_types",), ["full_attention"] * 3, r"'layer_types' must list 48"),
    ("qwen3-next-80b-a3b-instruct.json", ("linear_num_value_heads",), "32", r"'linear_num_value_heads' must be an"),
    ("qwen3-next-80b-a3b-instruct.json", ("mlp_only_layers",), [99], r"'mlp_only_layers' must be a list"),
    ("qwen3.5-9b.json", ("text_config", "linear_conv_kernel_dim"), 10**9, r"'linear_conv_kernel_dim' must be between"),
    ("jamba-1.5-mini.json", ("mamba_d_state",), -4, r"'mamba_d_state' must be between"),
    ("jamba-1.5-mini.json", ("attn_layer_period",), 0, r"'attn_layer_period' must be between"),
    ("granite-4.0-h-tiny.json", ("mamba_d_head",), 100, r"'mamba_d_head' times mamba_n_heads"),
    ("granite-4.0-h-tiny.json", ("layer_types",), ["mamba"] * 39 + ["moe"], r"'layer_types' names layer type 'moe'"),
    ("falcon-h1-7b.json", ("mamba_n_heads",), None, r"'mamba_n_heads' is missing"),
    ("lfm2-1.2b.json", ("full_attn_idxs",), [2, 99], r"'full_attn_idxs' must be a list"),
    ("lfm2-1.2b.json", ("block_ffn_dim_multiplier",), float("nan"), r"'block_ffn_dim_multiplier' must be a number"),
])
def test_bad_hybrid_fields_are_refused_naming_them(name: str, path: tuple[str, ...], value: Any, message: str) -> None:
    with pytest.raises(SizingError, match=message):
        model_from_hf_config(_broken(name, path, value))


@pytest.mark.parametrize("model_type", ["mamba", "mamba2", "rwkv", "bamba", "zamba2", "recurrent_gemma"])
def test_families_without_a_reader_are_still_refused(model_type: str) -> None:
    config = {"model_type": model_type, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "vocab_size": 100, "intermediate_size": 128}
    with pytest.raises(SizingError, match=rf"model_type '{model_type}'.*cannot be sized"):
        model_from_hf_config(config)
