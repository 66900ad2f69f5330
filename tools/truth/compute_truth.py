"""Truth numbers for tests/fixtures/configs/*.json, from transformers + PyTorch on the meta device.

Run in a separate venv (torch and transformers are not dependencies of this project):

    python3 -m venv /work/truthvenv && /work/truthvenv/bin/pip install torch transformers
    /work/truthvenv/bin/python tools/truth/compute_truth.py > tests/sizing/data/config_truth.json

For each config it instantiates the model on the meta device (no weights are allocated) and records:
- params: sum of numel over model.parameters() (tied weights counted once, as PyTorch does);
- kv_bytes_per_token: bf16 K and V widths of every attention layer, read from the instantiated
  k/v projection modules (or the fused QKV module minus its query part; for MLA the latent the
  kv_a_proj_with_mqa module produces);
- sliding_layers / sliding_window: which layers transformers' own config marks as sliding;
- quantized: for a config with a quantization_config, the checkpoint bytes of every nn.Linear under
  the declared format's tensor shapes (AWQ, GPTQ, bitsandbytes), walked over the real modules.
Configs whose modeling code is not in transformers (``trust_remote_code`` families): DeepSeek-MoE
(``deepseek``) is counted by the independent formula ``deepseek_v1_formula`` below (marked "method" in
the output); anything else transformers cannot build is listed under "skipped" with the reason (the
tests expect the sizing to refuse those).
"""

from __future__ import annotations

import inspect
import json
import math
import sys
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "tests" / "fixtures" / "configs"
# Modules the checkpoints keep in 16 bit whatever the format: routers, and DeepSeek-V3.2's indexer
# weights_proj (bf16 in the published FP8 checkpoint)
ROUTERS = ("gate", "router", "shared_expert_gate", "weights_proj")


def _packed(values: int, bits: int) -> int:
    return math.ceil(values * bits / 32) * 4


def _linear_layout(q: dict, i: int, o: int) -> tuple[int, int]:
    """(weight bytes, scale/zero bytes) of an in x out Linear stored as ``q`` declares."""
    method = q.get("quant_method")
    bits = q.get("bits", 4)
    group = q.get("group_size", 128)
    groups = math.ceil(i / group) if group and group > 0 else 1
    if method == "awq":  # qweight [in, out/8] int32, qzeros [in/g, out/8] int32, scales [in/g, out] fp16
        return i * _packed(o, bits), groups * o * 2 + groups * _packed(o, bits)
    if method == "gptq":  # qweight [in/8, out] int32, qzeros [in/g, out/8], scales [in/g, out] fp16, g_idx [in]
        return _packed(i, bits) * o, groups * o * 2 + groups * _packed(o, bits) + i * 4
    if method == "fp8":  # e4m3 weight [out, in] + fp32 weight_scale_inv per weight_block_size block (or per tensor)
        block = q.get("weight_block_size")
        return i * o, (math.ceil(o / block[0]) * math.ceil(i / block[1]) * 4) if block else 4
    if method == "mxfp4":  # *_blocks uint8 [.., out, in/32, 16] + *_scales uint8 [.., out, in/32]
        return o * i // 2, o * math.ceil(i / 32)
    if method == "bitsandbytes":
        if q.get("load_in_8bit"):
            return i * o, o * 4
        n = i * o
        blocks = math.ceil(n / 64)
        double = q.get("bnb_4bit_use_double_quant")
        absmax = blocks + math.ceil(blocks / 256) * 4 + 16 * 4 if double else blocks * 4
        return math.ceil(n / 2), absmax + 16 * 4
    raise SystemExit(f"no layout truth for {method}")


def _skip(name: str, q: dict) -> bool:
    """Modules the checkpoint keeps in 16 bit: lm_head, routers, and ignore-list entries matched as
    whole module-path components (the checkpoints here name experts w1/w2/w3 or gate_proj/up_proj,
    so an entry "gate" is the router; transformers 5 renames fused experts to gate_up_proj)."""
    ignore = q.get("modules_to_not_convert") or q.get("llm_int8_skip_modules") or []
    parts = name.split(".")
    return name.endswith("lm_head") or parts[-1] in ROUTERS or any(k in parts for k in ignore)


# model_type values whose checkpoints ship another family's modeling code (auto_map): built as that family
ALIASES = {"kimi_k2": "deepseek_v3"}  # Kimi-K2: DeepseekV3ForCausalLM with configuration_deepseek.py
# Per-token cache of one DeepSeek-V3.2 indexer key (vLLM DeepseekV32IndexerCache): fp8 key of
# index_head_dim bytes plus one fp32 scale per 128-value block, whatever --kv-cache-dtype says.
INDEX_QUANT_BLOCK = 128


def _build(raw: dict) -> tuple:
    """(config, model on the meta device, language model, multimodal?) of one raw config.json."""
    kwargs = {k: v for k, v in raw.items() if k not in ("quantization_config", "auto_map")}
    kwargs["model_type"] = ALIASES.get(raw.get("model_type"), raw.get("model_type"))
    cfg = AutoConfig.for_model(**kwargs)
    multimodal = "vision_config" in raw
    with torch.device("meta"):
        # vLLM loads the vision tower and projector of a multimodal checkpoint: build the whole model
        model = (AutoModelForImageTextToText if multimodal else AutoModelForCausalLM).from_config(cfg)
    inner = getattr(model, "model", model)  # Llama 4 keeps language_model on the outer module
    return cfg, model, getattr(inner, "language_model", inner), multimodal


def _params(model) -> int:
    """numel of every parameter (tied weights once) plus the router-bias buffers the checkpoint holds
    (e_score_correction_bias: an nn.Buffer in transformers, a loaded tensor in the checkpoint and vLLM)."""
    total = sum(p.numel() for p in model.parameters())
    return total + sum(b.numel() for n, b in model.named_buffers() if n.endswith("e_score_correction_bias"))


def _vision_params(model, lm) -> int:
    """Parameters outside the language model and lm_head: vision tower, projector/merger."""
    inside = {id(p) for p in lm.parameters()} | {id(p) for p in model.get_output_embeddings().parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in inside)


def _kv(lm, cfg) -> tuple[int, int, int]:
    """(bf16 bytes per token of every self-attention layer, cross-attention layers, bytes per image token
    of one cross-attention layer). Cross-attention layers (mllama) cache the image's keys and values, not
    the text tokens': they are counted apart."""
    kv = cross_layers = cross_width = 0
    for name, mod in lm.named_modules():
        if name.endswith("cross_attn") and hasattr(mod, "k_proj"):
            cross_layers += 1
            cross_width = (mod.k_proj.out_features + mod.v_proj.out_features) * 2
        elif hasattr(mod, "kv_a_proj_with_mqa"):
            # MLA: what is cached per token is the compressed latent plus the shared rope key, which is
            # exactly this projection's output (kv_lora_rank + qk_rope_head_dim); vLLM's MLA cache
            kv += mod.kv_a_proj_with_mqa.out_features * 2
            if hasattr(mod, "indexer"):  # DeepSeek-V3.2 sparse attention: the indexer's key per token
                width = mod.indexer.wk.out_features
                kv += width + math.ceil(width / INDEX_QUANT_BLOCK) * 4
        elif hasattr(mod, "k_proj") and hasattr(mod, "v_proj") and ".cross_attn" not in name:
            kv += (mod.k_proj.out_features + mod.v_proj.out_features) * 2
        elif name.endswith("self_attention") and hasattr(mod, "query_key_value"):
            kv += (mod.query_key_value.out_features - cfg.hidden_size) * 2
    return kv, cross_layers, cross_width


def _hybrid_state(lm, cfg) -> dict:
    """Hybrid models: the layers with a KV cache and the fixed state of one sequence in the others, from
    the instantiated modules, in vLLM's shapes (MambaStateShapeCalculator): every Conv1d keeps
    channels x (kernel - 1) values; a Mamba-1 mixer d_inner x d_state (its A_log), a Mamba-2 mixer
    n_heads x head_dim x d_state, a gated delta net num_v_heads x head_k_dim x head_v_dim. bf16, the
    recurrent state float32 where the config pins mamba_ssm_dtype. {} for a model without such layers."""
    conv = ssm = state_layers = 0
    for mod in lm.modules():
        if isinstance(mod, torch.nn.Conv1d):  # one per Mamba mixer, gated delta net or short conv
            conv += mod.weight.shape[0] * (mod.weight.shape[2] - 1)
            state_layers += 1
        a_log = getattr(mod, "A_log", None)
        if a_log is None:
            continue
        if a_log.dim() == 2:  # Mamba-1: A is d_inner x d_state
            ssm += a_log.numel()
        elif hasattr(mod, "head_k_dim"):  # gated delta net
            ssm += mod.num_v_heads * mod.head_k_dim * mod.head_v_dim
        else:  # Mamba-2
            ssm += a_log.numel() * mod.head_dim * mod.ssm_state_size
    if not conv:
        return {}
    kv_layers = sum(1 for name, mod in lm.named_modules()
                    if hasattr(mod, "k_proj") and hasattr(mod, "v_proj") and ".cross_attn" not in name)
    ssm_bytes = 4 if getattr(cfg, "mamba_ssm_dtype", None) == "float32" else 2
    return {"kv_layers": kv_layers, "state_layers": state_layers,
            "state_bytes_per_sequence": conv * 2 + ssm * ssm_bytes}


def truth(path: Path) -> dict:
    raw = json.loads(path.read_text())
    cfg, model, lm, multimodal = _build(raw)
    text = cfg.get_text_config()
    params = _params(model)
    kv, cross_layers, cross_width = _kv(lm, text)
    layer_types = getattr(text, "layer_types", None)
    window = getattr(text, "sliding_window", None)
    chunk = getattr(text, "attention_chunk_size", None)
    sliding = [i for i, t in enumerate(layer_types or []) if t == "sliding_attention"] if window else []
    chunked = [i for i, t in enumerate(layer_types or []) if t == "chunked_attention"] if chunk else []
    # Llama 4's chunked layers attend within attention_chunk_size tokens, but vLLM keeps every token's KV
    # for them: it disables its hybrid KV cache manager for chunked local attention by default
    # (vllm/config/vllm.py, VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE), so they are not windows.
    if window and layer_types is None:
        # no per-layer schedule: the model's forward builds one sliding-window mask for every layer
        forward = inspect.getsource(type(lm).forward)
        if "create_sliding_window_causal_mask" in forward:
            sliding = list(range(text.num_hidden_layers))
    out: dict = {"params": params, "kv_bytes_per_token": kv, "sliding_window": window if sliding else None,
                 "sliding_layers": len(sliding), "num_layers": text.num_hidden_layers}
    if chunked:
        out["chunked_layers"], out["attention_chunk_size"] = len(chunked), chunk
    if multimodal:
        out["vision_params"] = _vision_params(model, lm)
    if cross_layers:
        out["kv_layers"] = text.num_hidden_layers - cross_layers  # the self-attention layers
        vision = cfg.vision_config
        tokens = vision.max_num_tiles * ((vision.image_size // vision.patch_size) ** 2 + 1)  # tiles x (patches + CLS)
        out["cross_attention"] = {"layers": cross_layers, "bytes_per_image_token": cross_width,
                                  "image_tokens": tokens, "bytes_per_sequence": cross_layers * cross_width * tokens}
    out.update(_hybrid_state(lm, text))
    q = raw.get("quantization_config")
    if q:
        quant = scale = unquant = 0
        seen = set()
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear) and not _skip(name, q) and q.get("quant_method") != "mxfp4":
                w, s = _linear_layout(q, mod.in_features, mod.out_features)
                quant += w
                scale += s
                seen.update({id(mod.weight)})
        for name, p in model.named_parameters():
            if p.dim() == 3 and ".experts." in name and not _skip(name, q):
                # fused expert tensors [experts, out, in] (transformers 5): one Linear per expert
                w, s = _linear_layout(q, p.shape[2], p.shape[1])
                quant += p.shape[0] * w
                scale += p.shape[0] * s
                seen.add(id(p))
        for p in model.parameters():
            if id(p) not in seen:
                unquant += p.numel() * 2
        out["quantized"] = {"weights": quant, "scales": scale, "unquantized": unquant,
                            "total": quant + scale + unquant}
    return out


def deepseek_v1_formula(raw: dict) -> dict:
    """DeepSeek-MoE (model_type "deepseek", trust_remote_code; not in transformers): parameters by an
    independent formula from the published modeling_deepseek.py layout, written out here.

    embed [V, H]; per layer: q/k/v/o projections (no bias), input + post-attention RMSNorm; layers
    < first_k_dense_replace (or off the moe_layer_freq grid) a gated MLP of intermediate_size, the
    others a router [E, H], E gated experts of moe_intermediate_size and one gated MLP of
    n_shared_experts * moe_intermediate_size; final RMSNorm; untied lm_head [V, H].
    """
    h, v, n = raw["hidden_size"], raw["vocab_size"], raw["num_hidden_layers"]
    heads = raw["num_attention_heads"]
    kv = raw.get("num_key_value_heads", heads)
    d = raw.get("head_dim") or h // heads
    experts, inter, moe = raw["n_routed_experts"], raw["intermediate_size"], raw["moe_intermediate_size"]
    shared = (raw.get("n_shared_experts") or 0) * moe
    total = 2 * v * h + h
    for i in range(n):
        total += h * heads * d * 2 + h * kv * d * 2 + 2 * h
        if i >= raw.get("first_k_dense_replace", 0) and i % raw.get("moe_layer_freq", 1) == 0:
            total += experts * h + experts * 3 * h * moe + 3 * h * shared
        else:
            total += 3 * h * inter
    return {"params": total, "kv_bytes_per_token": n * 2 * kv * d * 2, "sliding_window": None,
            "sliding_layers": 0, "num_layers": n, "method": "independent formula (deepseek_v1_formula)"}


def chatglm_formula(raw: dict) -> dict:
    """ChatGLM2/3 and GLM-4 (model_type "chatglm", trust_remote_code): the published
    modeling_chatglm.py layout, written out. word_embeddings [V, H]; per layer: query_key_value
    [H -> (heads + 2 * groups) * kv_channels] (bias when add_qkv_bias), dense [heads * kv_channels -> H],
    dense_h_to_4h [H -> 2 * ffn] (SwiGLU), dense_4h_to_h [ffn -> H] (biases when add_bias_linear), two
    RMSNorms; final RMSNorm; output_layer [H -> V]. The first ChatGLM-6B layout (no ffn_hidden_size)
    raises KeyError and is recorded as skipped.
    """
    h, v, n = raw["hidden_size"], raw["padded_vocab_size"], raw["num_layers"]
    heads, d, ffn = raw["num_attention_heads"], raw["kv_channels"], raw["ffn_hidden_size"]
    groups = raw["multi_query_group_num"] if raw.get("multi_query_attention") else heads
    qkv = (heads + 2 * groups) * d
    bias = raw.get("add_bias_linear", False)
    per_layer = (h * qkv + (qkv if raw.get("add_qkv_bias") or bias else 0) + heads * d * h + (h if bias else 0)
                 + h * 2 * ffn + (2 * ffn if bias else 0) + ffn * h + (h if bias else 0) + 2 * h)
    total = v * h + n * per_layer + h + v * h
    return {"params": total, "kv_bytes_per_token": n * 2 * groups * d * 2, "sliding_window": None,
            "sliding_layers": 0, "num_layers": n, "method": "independent formula (chatglm_formula)"}


FORMULAS = {"deepseek": deepseek_v1_formula, "chatglm": chatglm_formula}


def main() -> None:
    result: dict = {"tool": "tools/truth/compute_truth.py", "torch": torch.__version__,
                    "transformers": transformers.__version__, "configs": {}, "skipped": {}}
    for path in sorted(CONFIGS.glob("*.json")):
        raw = json.loads(path.read_text())
        if raw.get("model_type") in FORMULAS:
            try:
                result["configs"][path.name] = FORMULAS[raw["model_type"]](raw)
            except KeyError as exc:
                result["skipped"][path.name] = f"layout without field {exc} (no formula)"
            continue
        try:
            result["configs"][path.name] = truth(path)
        except Exception as exc:  # noqa: BLE001 - a family transformers cannot build: recorded, not hidden
            result["skipped"][path.name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
