"""Pre-quantized checkpoints: each format's resident bytes, checked against its tensor shapes.

A tiny Llama-shaped config (2 layers, hidden 256, MLP 512, 4 heads / 2 KV heads, vocab 1000, untied)
has 7 linear layers per decoder layer; the expected byte counts below are the checkpoint tensors
each format writes for those shapes (shape arithmetic spelled out per format, not the library's).
"""

from __future__ import annotations

from typing import Any

import pytest

import sizing
from sizing import SizingError, model_from_hf_config

H, FF, L, HEADS, KV, V = 256, 512, 2, 4, 2, 1000
HD = H // HEADS
# (in, out) of every linear layer in one decoder layer: q, k, v, o, gate, up, down
LINEARS = [(H, H), (H, KV * HD), (H, KV * HD), (H, H), (H, FF), (H, FF), (FF, H)]
QUANT_PARAMS = L * sum(i * o for i, o in LINEARS)
# 16-bit parameters: embedding + lm_head + 2 RMSNorms per layer + final norm
PLAIN_PARAMS = 2 * V * H + (2 * L + 1) * H
BASE: dict[str, Any] = {"model_type": "llama", "hidden_size": H, "intermediate_size": FF, "num_hidden_layers": L,
                        "num_attention_heads": HEADS, "num_key_value_heads": KV, "vocab_size": V,
                        "tie_word_embeddings": False, "max_position_embeddings": 4096}


def _bytes(quantization_config: dict[str, Any]) -> tuple[int, int, int]:
    arch = model_from_hf_config({**BASE, "quantization_config": quantization_config})
    assert arch.quantization is not None
    q = arch.quantization
    return q.quantized_bytes, q.scale_bytes, q.unquantized_bytes


def test_awq_gemm_layout() -> None:
    # qweight int32 [in, out/8], qzeros int32 [in/128, out/8], scales fp16 [in/128, out]
    weights = L * sum(i * (o // 8) * 4 for i, o in LINEARS)
    scales = L * sum((i // 128) * (o // 8) * 4 + (i // 128) * o * 2 for i, o in LINEARS)
    assert _bytes({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}) == (
        weights, scales, PLAIN_PARAMS * 2)


def test_gptq_layout_has_group_indices_and_honours_lm_head() -> None:
    # qweight int32 [in/8, out], qzeros int32 [in/g, out/8], scales fp16 [in/g, out], g_idx int32 [in]
    weights = L * sum((i // 8) * o * 4 for i, o in LINEARS)
    scales = L * sum((i // 64) * (o // 8) * 4 + (i // 64) * o * 2 + i * 4 for i, o in LINEARS)
    config = {"quant_method": "gptq", "bits": 4, "group_size": 64, "desc_act": True, "sym": True}
    assert _bytes(config) == (weights, scales, PLAIN_PARAMS * 2)
    with_head = _bytes({**config, "lm_head": True})
    assert with_head[0] == weights + (H // 8) * V * 4  # lm_head [H -> V] packed too
    assert with_head[2] == (PLAIN_PARAMS - V * H) * 2


def test_compressed_tensors_w4a16_with_ignore_list() -> None:
    group = {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128,
                                                "symmetric": True}}
    config = {"quant_method": "compressed-tensors", "format": "pack-quantized", "config_groups": {"group_0": group},
              "ignore": ["lm_head", "re:.*mlp.down_proj$"]}
    kept = [lin for lin in LINEARS if lin != (FF, H)]  # down_proj ignored by the regex
    # weight_packed int32 [out, in/8] + int64 weight_shape[2]; weight_scale [out, in/128] 16-bit
    weights = L * sum(o * (i // 8) * 4 + 16 for i, o in kept)
    scales = L * sum(o * (i // 128) * 2 for i, o in kept)
    assert _bytes(config) == (weights, scales, (PLAIN_PARAMS + L * FF * H) * 2)


def test_compressed_tensors_w8a8_channel_and_fp8_tensor() -> None:
    def ct(num_bits: int, kind: str, strategy: str, dynamic: bool) -> dict[str, Any]:
        return {"quant_method": "compressed-tensors", "ignore": ["lm_head"], "config_groups": {"group_0": {
            "targets": ["Linear"], "weights": {"num_bits": num_bits, "type": kind, "strategy": strategy},
            "input_activations": {"num_bits": 8, "type": kind, "dynamic": dynamic}}}}
    # int8 weight [out, in], one scale per output channel; dynamic activations: no input_scale
    assert _bytes(ct(8, "int", "channel", True))[:2] == (QUANT_PARAMS, L * sum(o * 2 for _, o in LINEARS))
    # fp8 weight [out, in], one scale per tensor, plus a static input_scale (fp32)
    assert _bytes(ct(8, "float", "tensor", False))[:2] == (QUANT_PARAMS, L * len(LINEARS) * (2 + 4))
    arch = model_from_hf_config({**BASE, "quantization_config": ct(8, "float", "tensor", False)})
    assert arch.quantization is not None and arch.quantization.scheme.precision.value == "fp8"


def test_fp8_block_scales() -> None:
    # e4m3 weight [out, in] + fp32 weight_scale_inv [ceil(out/128), ceil(in/128)]
    scales = L * sum(-(-o // 128) * -(-i // 128) * 4 for i, o in LINEARS)
    assert _bytes({"quant_method": "fp8", "weight_block_size": [128, 128], "activation_scheme": "dynamic",
                   "fmt": "e4m3"}) == (QUANT_PARAMS, scales, PLAIN_PARAMS * 2)


def test_bitsandbytes_8bit_and_skip_modules() -> None:
    config = {"quant_method": "bitsandbytes", "load_in_8bit": True, "llm_int8_skip_modules": ["o_proj"]}
    kept = [lin for n, lin in enumerate(LINEARS) if n != 3]
    assert _bytes(config) == (L * sum(i * o for i, o in kept), L * sum(o * 4 for _, o in kept),
                              (PLAIN_PARAMS + L * H * H) * 2)


def test_mxfp4_quantizes_only_gpt_oss_experts() -> None:
    config = {"model_type": "gpt_oss", "hidden_size": 64, "intermediate_size": 64, "num_hidden_layers": 1,
              "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 100,
              "num_local_experts": 4, "num_experts_per_tok": 2, "tie_word_embeddings": False,
              "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
                  "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}}
    q = model_from_hf_config(config).quantization
    assert q is not None
    expert_weights = 4 * (64 * 128 + 64 * 64)  # gate_up [64 -> 128] and down [64 -> 64] per expert
    assert q.quantized_params == expert_weights
    assert q.quantized_bytes == expert_weights // 2 and q.scale_bytes == expert_weights // 32  # 4.25 bits


@pytest.mark.parametrize(("config", "field"), [
    ({"quant_method": "awq", "bits": "4"}, "bits"),
    ({"quant_method": "gptq", "group_size": 10**9}, "group_size"),
    ({"quant_method": "squeezellm"}, "quant_method"),
    ({"quant_method": "fp8", "weight_block_size": [128]}, "weight_block_size"),
    ({"quant_method": "awq", "modules_to_not_convert": "lm_head"}, "modules_to_not_convert"),
    ({"quant_method": "compressed-tensors", "config_groups": {}}, "config_groups"),
    ({"quant_method": "compressed-tensors", "ignore": ["re:("], "config_groups": {"g": {
        "targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "strategy": "channel"}}}}, "regex"),
    ({"load_in_4bit": False}, "load_in_4bit"),
])
def test_garbage_quantization_config_names_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(SizingError, match=field):
        model_from_hf_config({**BASE, "quantization_config": config})


def test_tensor_parallel_splits_the_quantized_layout() -> None:
    arch = model_from_hf_config({**BASE, "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}})
    assert arch.quantization is not None
    one, two = (sizing.estimate(arch, "int4", tensor_parallel=tp).weights_bytes for tp in (1, 2))
    assert one == arch.quantization.total_bytes and two == -(-one // 2)


def test_older_compression_config_block_is_read_too() -> None:
    group = {"targets": ["Linear"], "weights": {"num_bits": 8, "type": "float", "strategy": "tensor"}}
    block = {"quant_method": "compressed-tensors", "ignore": ["lm_head"], "config_groups": {"group_0": group}}
    arch = model_from_hf_config({**BASE, "compression_config": block})
    assert arch.quantization is not None and arch.quantization.quantized_params == QUANT_PARAMS
