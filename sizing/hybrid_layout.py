"""The shapes of hybrid models, read from their config.json (pure; used by ``sizing.hf_config``).

Hybrid models mix attention layers with layers that keep a fixed-size state instead of a KV cache:
gated delta nets (Qwen3-Next, Qwen3.5), Mamba-1 mixers (Jamba), Mamba-2 mixers (Granite-4.0-H,
Falcon-H1, whose layers run attention and Mamba side by side) and short convolutions (LFM2). Each
reader returns a ``Layout`` whose linears, norms and small tensors are those of the family's
transformers modeling code, whose ``kv_layers`` counts only the layers with a KV cache and whose
``state`` is the per-sequence state of the others (``sizing.recurrent_state``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sizing.hf_config import (
    MAX_CONTEXT,
    MAX_EXPERTS,
    MAX_HEADS,
    MAX_LAYERS,
    MAX_VOCAB,
    Layout,
    Linear,
    _Fields,
    _mlp,
)
from sizing.recurrent_state import RecurrentState

MAX_STATE = 1 << 16  # d_state, conv kernel, head dims of a state: real models use 4..256


def _layer_kinds(f: _Fields, key: str, layers: int, allowed: dict[str, str]) -> list[str] | None:
    """``config[key]`` as one kind per layer (mapped through ``allowed``), or None when absent."""
    raw = f.text.get(key)
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) != layers or not all(isinstance(t, str) for t in raw):
        raise f.error(key, f"must list {layers} layer type names")
    odd = sorted({t for t in raw if t not in allowed})
    if odd:
        raise f.error(key, f"names layer type {odd[0][:40]!r}; {f.model_type} layers are {sorted(set(allowed))}")
    return [allowed[t] for t in raw]


def _indices(f: _Fields, key: str, layers: int) -> list[int] | None:
    raw = f.text.get(key)
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) > layers or not all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x < layers for x in raw):
        raise f.error(key, f"must be a list of at most {layers} layer indices below {layers}")
    return list(raw)


@dataclass(frozen=True)
class _Trunk:
    """The widths and counts every hybrid family reads first: residual width, attention heads, layers, vocabulary."""

    hidden: int
    heads: int
    kv: int
    head_dim: int
    layers: int
    vocab: int


def _trunk(f: _Fields) -> _Trunk:
    hidden = f.int_("hidden_size")
    heads = f.int_("num_attention_heads", maximum=MAX_HEADS)
    kv = f.int_("num_key_value_heads", maximum=MAX_HEADS, default=heads)
    if heads % kv:
        raise f.error("num_key_value_heads", f"must be a positive divisor of num_attention_heads ({heads}), got {kv}")
    head_dim = f.int_("head_dim", default=hidden // heads if hidden >= heads else None)
    layers = f.int_("num_hidden_layers", maximum=MAX_LAYERS)
    vocab = f.int_("vocab_size", maximum=MAX_VOCAB)
    return _Trunk(hidden, heads, kv, head_dim, layers, vocab)


def _attention(f: _Fields, p: str, t: _Trunk, *, bias: bool = False, gated: bool = False, qk_norm: bool = False,
               out: str = "o_proj") -> tuple[list[Linear], int]:
    """Self-attention projections (q doubled when the output is gated) and its per-head q/k norms."""
    q_out = t.heads * t.head_dim
    lins = [Linear(f"{p}.q_proj", t.hidden, q_out * (2 if gated else 1), bias),
            Linear(f"{p}.k_proj", t.hidden, t.kv * t.head_dim, bias),
            Linear(f"{p}.v_proj", t.hidden, t.kv * t.head_dim, bias),
            Linear(f"{p}.{out}", q_out, t.hidden, bias)]
    return lins, (2 * t.head_dim if qk_norm else 0)


def _layout(f: _Fields, t: _Trunk, *, linears: Sequence[Linear], other: int, inter: int, kv_layers: int,
            state: RecurrentState | None, tied: bool | None = None, experts: int = 0, top_k: int = 0) -> Layout:
    """The ``Layout`` of a hybrid reader's parts; ``tied`` is tie_word_embeddings (default false) unless given."""
    if tied is None:
        tied = f.bool_("tie_word_embeddings", False)
    lins = list(linears)
    if not tied:
        lins.append(Linear("lm_head", t.hidden, t.vocab))
    context = f.int_("max_position_embeddings", maximum=MAX_CONTEXT, default=4096)
    return Layout(
        model_type=f.model_type, linears=tuple(lins), embedding_params=t.vocab * t.hidden, other_params=other,
        hidden_size=t.hidden, vocab_size=t.vocab, num_layers=t.layers, num_attention_heads=t.heads,
        num_kv_heads=t.kv, head_dim=t.head_dim, intermediate_size=inter, tied_embeddings=tied, max_context=context,
        layer_windows=(0,) * kv_layers, num_experts=experts, experts_per_token=top_k,
        kv_layers=kv_layers, state=state,
    )


def _experts(f: _Fields, key: str, *alts: str) -> tuple[int, int]:
    experts = f.opt_int(key, *alts, maximum=MAX_EXPERTS) or 0
    top_k = f.opt_int("num_experts_per_tok", maximum=MAX_EXPERTS) or 0
    if experts and not 0 < top_k <= experts:
        raise f.error("num_experts_per_tok", f"must be between 1 and the number of experts ({experts})")
    return experts, top_k


def _ssm_fp32(f: _Fields) -> bool:
    return f.str_("mamba_ssm_dtype") == "float32"


def _qwen_next(f: _Fields) -> Layout:
    """Qwen3-Next and Qwen3.5: gated delta nets, with a gated full-attention layer every few layers."""
    t = _trunk(f)
    hidden, layers = t.hidden, t.layers
    kinds = _layer_kinds(f, "layer_types", layers, {"linear_attention": "linear", "full_attention": "attention"})
    if kinds is None:  # transformers: every full_attention_interval-th layer is full attention
        step = f.int_("full_attention_interval", maximum=MAX_LAYERS, default=4)
        kinds = ["attention" if (i + 1) % step == 0 else "linear" for i in range(layers)]
    nk = f.int_("linear_num_key_heads", maximum=MAX_HEADS)
    nv = f.int_("linear_num_value_heads", maximum=MAX_HEADS)
    dk = f.int_("linear_key_head_dim", maximum=MAX_STATE)
    dv = f.int_("linear_value_head_dim", maximum=MAX_STATE)
    kernel = f.int_("linear_conv_kernel_dim", maximum=MAX_STATE, default=4)
    inter = f.int_("intermediate_size")
    experts, top_k = _experts(f, "num_experts")
    moe_inter = f.opt_int("moe_intermediate_size") or inter
    shared_inter = f.opt_int("shared_expert_intermediate_size") or 0
    only = _indices(f, "mlp_only_layers", layers) or []
    sparse_step = f.int_("decoder_sparse_step", maximum=MAX_LAYERS, default=1)
    gated = f.bool_("attn_output_gate", True)  # Qwen3-Next always gates; Qwen3.5 says so in its config
    bias = f.bool_("attention_bias", False)
    key_dim, value_dim = nk * dk, nv * dv
    conv_dim = 2 * key_dim + value_dim
    split_proj = f.model_type.startswith("qwen3_5")  # Qwen3.5 splits in_proj_qkvz / in_proj_ba in four
    linears: list[Linear] = []
    other = hidden  # final norm
    for i, kind in enumerate(kinds):
        p = f"model.layers.{i}"
        other += 2 * hidden
        if kind == "attention":
            attn, extra = _attention(f, f"{p}.self_attn", t, bias=bias, gated=gated, qk_norm=True)
            linears += attn
            other += extra
        else:
            la = f"{p}.linear_attn"
            if split_proj:
                linears += [Linear(f"{la}.in_proj_qkv", hidden, conv_dim), Linear(f"{la}.in_proj_z", hidden, value_dim),
                            Linear(f"{la}.in_proj_b", hidden, nv), Linear(f"{la}.in_proj_a", hidden, nv)]
            else:
                linears += [Linear(f"{la}.in_proj_qkvz", hidden, 2 * key_dim + 2 * value_dim),
                            Linear(f"{la}.in_proj_ba", hidden, 2 * nv)]
            linears.append(Linear(f"{la}.out_proj", value_dim, hidden))
            other += conv_dim * kernel + dv + 2 * nv  # conv1d (no bias), gated norm, dt_bias, A_log
        if experts and i not in only and (i + 1) % sparse_step == 0:
            linears += [Linear(f"{p}.mlp.gate", hidden, experts),
                        *_mlp(f"{p}.mlp.experts.0", hidden, moe_inter, gated=True, experts=experts, routed=True)]
            if shared_inter:
                linears += [*_mlp(f"{p}.mlp.shared_expert", hidden, shared_inter, gated=True),
                            Linear(f"{p}.mlp.shared_expert_gate", hidden, 1)]
        else:
            linears += _mlp(f"{p}.mlp", hidden, inter, gated=True)
    linear_layers = kinds.count("linear")
    state = RecurrentState(layers=linear_layers, conv_elements=linear_layers * conv_dim * (kernel - 1),
                           ssm_elements=linear_layers * nv * dk * dv, ssm_fp32=_ssm_fp32(f))
    return _layout(f, t, linears=linears, other=other, inter=inter, kv_layers=kinds.count("attention"), state=state,
                   experts=experts, top_k=top_k)


def _jamba(f: _Fields) -> Layout:
    """Jamba: Mamba-1 mixers with an attention layer every attn_layer_period, MoE every expert_layer_period."""
    t = _trunk(f)
    hidden, layers = t.hidden, t.layers
    attn_period = f.int_("attn_layer_period", maximum=MAX_LAYERS, default=8)
    attn_offset = f.int_("attn_layer_offset", maximum=MAX_LAYERS, minimum=0, default=4)
    moe_period = f.int_("expert_layer_period", maximum=MAX_LAYERS, default=2)
    moe_offset = f.int_("expert_layer_offset", maximum=MAX_LAYERS, minimum=0, default=1)
    inter = f.int_("intermediate_size")
    experts, top_k = _experts(f, "num_experts")
    d_inner = f.int_("mamba_expand", maximum=64, default=2) * hidden
    d_state = f.int_("mamba_d_state", maximum=MAX_STATE, default=16)
    d_conv = f.int_("mamba_d_conv", maximum=MAX_STATE, default=4)
    dt_rank = math.ceil(hidden / 16) if f.text.get("mamba_dt_rank") in (None, "auto") else f.int_("mamba_dt_rank")
    conv_bias = f.bool_("mamba_conv_bias", True)
    proj_bias = f.bool_("mamba_proj_bias", False)
    linears: list[Linear] = []
    other = hidden  # final_layernorm
    mamba_layers = attn_layers = 0
    for i in range(layers):
        p = f"model.layers.{i}"
        other += 2 * hidden  # input_layernorm, pre_ff_layernorm
        if i % attn_period == attn_offset:
            attn_layers += 1
            linears += _attention(f, f"{p}.self_attn", t)[0]
        else:
            mamba_layers += 1
            m = f"{p}.mamba"
            linears += [Linear(f"{m}.in_proj", hidden, 2 * d_inner, proj_bias),
                        Linear(f"{m}.x_proj", d_inner, dt_rank + 2 * d_state),
                        Linear(f"{m}.dt_proj", dt_rank, d_inner, True),
                        Linear(f"{m}.out_proj", d_inner, hidden, proj_bias)]
            conv = d_inner * d_conv + (d_inner if conv_bias else 0)
            other += conv + d_inner * d_state + d_inner + dt_rank + 2 * d_state  # A_log, D, dt/b/c layernorms
        if experts > 1 and i % moe_period == moe_offset:
            linears += [Linear(f"{p}.feed_forward.router", hidden, experts),
                        *_mlp(f"{p}.feed_forward.experts.0", hidden, inter, gated=True, experts=experts, routed=True)]
        else:
            linears += _mlp(f"{p}.feed_forward", hidden, inter, gated=True)
    state = RecurrentState(layers=mamba_layers, conv_elements=mamba_layers * d_inner * (d_conv - 1),
                           ssm_elements=mamba_layers * d_inner * d_state)
    return _layout(f, t, linears=linears, other=other, inter=inter, kv_layers=attn_layers,
                   state=state, experts=experts if experts > 1 else 0, top_k=top_k if experts > 1 else 0)


def _mamba2(f: _Fields, m: str, hidden: int, d_inner: int) -> tuple[list[Linear], int, tuple[int, int, int]]:
    """One Mamba-2 mixer: (linears, other params, (conv elements, replicated conv elements, ssm elements))."""
    n_heads = f.int_("mamba_n_heads", maximum=MAX_HEADS)
    raw_head = f.text.get("mamba_d_head")
    head = d_inner // n_heads if raw_head in (None, "auto") else f.int_("mamba_d_head", maximum=MAX_STATE)
    if head * n_heads != d_inner:
        raise f.error("mamba_d_head", f"times mamba_n_heads ({n_heads}) must equal the Mamba width ({d_inner})")
    groups = f.int_("mamba_n_groups", maximum=MAX_HEADS, default=1)
    d_state = f.int_("mamba_d_state", maximum=MAX_STATE, default=128)
    d_conv = f.int_("mamba_d_conv", maximum=MAX_STATE, default=4)
    proj_bias = f.bool_("mamba_proj_bias", False)
    conv_dim = d_inner + 2 * groups * d_state
    lins = [Linear(f"{m}.in_proj", hidden, 2 * d_inner + 2 * groups * d_state + n_heads, proj_bias),
            Linear(f"{m}.out_proj", d_inner, hidden, proj_bias)]
    norm = d_inner if f.model_type != "falcon_h1" or f.bool_("mamba_rms_norm", False) else 0
    other = conv_dim * d_conv + (conv_dim if f.bool_("mamba_conv_bias", True) else 0) + 3 * n_heads + norm
    window = d_conv - 1
    return lins, other, (conv_dim * window, 2 * groups * d_state * window, n_heads * head * d_state)


def _granite_hybrid(f: _Fields) -> Layout:
    """Granite-4.0-H: Mamba-2 or attention per layer, each followed by MoE and a shared MLP."""
    t = _trunk(f)
    hidden, layers = t.hidden, t.layers
    allowed = {"mamba": "mamba", "attention": "attention", "linear_attention": "mamba"}
    kinds = _layer_kinds(f, "layer_types", layers, allowed) or _layer_kinds(f, "layers_block_type", layers, allowed)
    kinds = kinds or ["mamba"] * layers  # transformers' default: every layer a Mamba mixer
    inter = f.int_("intermediate_size")
    shared = f.opt_int("shared_intermediate_size") or 0
    experts, top_k = _experts(f, "num_local_experts")
    d_inner = f.int_("mamba_expand", maximum=64, default=2) * hidden
    bias = f.bool_("attention_bias", False)
    linears: list[Linear] = []
    other = hidden
    conv = replicated = ssm = 0
    for i, kind in enumerate(kinds):
        p = f"model.layers.{i}"
        other += 2 * hidden
        if kind == "attention":
            linears += _attention(f, f"{p}.self_attn", t, bias=bias)[0]
        else:
            lins, extra, (c, r, s) = _mamba2(f, f"{p}.mamba", hidden, d_inner)
            linears += lins
            other += extra
            conv, replicated, ssm = conv + c, replicated + r, ssm + s
        if experts:
            moe = f"{p}.block_sparse_moe"
            linears += [Linear(f"{moe}.router", hidden, experts),
                        Linear(f"{moe}.experts.gate_up_proj", hidden, 2 * inter, False, experts, True, True),
                        Linear(f"{moe}.experts.down_proj", inter, hidden, False, experts, True, True)]
        if shared:
            linears += [Linear(f"{p}.shared_mlp.input_linear", hidden, 2 * shared),
                        Linear(f"{p}.shared_mlp.output_linear", shared, hidden)]
    mamba_layers = kinds.count("mamba")
    state = RecurrentState(layers=mamba_layers, conv_elements=conv, ssm_elements=ssm, conv_replicated=replicated)
    return _layout(f, t, linears=linears, other=other, inter=inter, kv_layers=kinds.count("attention"), state=state,
                   experts=experts, top_k=top_k)


def _falcon_h1(f: _Fields) -> Layout:
    """Falcon-H1: every layer runs attention and a Mamba-2 mixer side by side, then a gated MLP."""
    t = _trunk(f)
    hidden, layers = t.hidden, t.layers
    inter = f.int_("intermediate_size")
    d_inner = f.opt_int("mamba_d_ssm") or f.int_("mamba_expand", maximum=64, default=2) * hidden
    attn_bias = f.bool_("attention_bias", False)
    mlp_bias = f.bool_("mlp_bias", False)
    linears: list[Linear] = []
    other = hidden
    conv = replicated = ssm = 0
    for i in range(layers):
        p = f"model.layers.{i}"
        other += 2 * hidden  # input_layernorm, pre_ff_layernorm
        linears += _attention(f, f"{p}.self_attn", t, bias=attn_bias)[0]
        lins, extra, (c, r, s) = _mamba2(f, f"{p}.mamba", hidden, d_inner)
        linears += lins + _mlp(f"{p}.feed_forward", hidden, inter, gated=True, bias=mlp_bias)
        other += extra
        conv, replicated, ssm = conv + c, replicated + r, ssm + s
    state = RecurrentState(layers=layers, conv_elements=conv, ssm_elements=ssm, conv_replicated=replicated)
    return _layout(f, t, linears=linears, other=other, inter=inter, kv_layers=layers, state=state)


def _lfm2_ffn(f: _Fields) -> int:
    """LFM2's MLP width: block_ff_dim, cut to 2/3 and scaled when auto-adjusted, rounded up to block_multiple_of."""
    inter = f.int_("block_ff_dim", "intermediate_size", default=12288)
    if f.bool_("block_auto_adjust_ff_dim", True):
        inter = 2 * inter // 3
        raw = f.text.get("block_ffn_dim_multiplier", 1.0)
        if raw is not None:
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw <= 64:
                raise f.error("block_ffn_dim_multiplier", "must be a number between 0 and 64")
            inter = int(raw * inter)
        multiple = f.int_("block_multiple_of", maximum=1 << 16, default=256)
        inter = multiple * math.ceil(inter / multiple)
    return inter


def _lfm2(f: _Fields) -> Layout:
    """LFM2: gated short-convolution blocks and GQA attention blocks (q/k layernorm), SwiGLU MLP."""
    t = _trunk(f)
    hidden, layers = t.hidden, t.layers
    kinds = _layer_kinds(f, "layer_types", layers, {"conv": "conv", "full_attention": "attention"})
    if kinds is None:
        attn = _indices(f, "full_attn_idxs", layers)
        kinds = ["attention" if attn is None or i in attn else "conv" for i in range(layers)]
    cache = f.int_("conv_L_cache", maximum=MAX_STATE, default=3)
    bias = f.bool_("conv_bias", False)
    inter = _lfm2_ffn(f)
    linears: list[Linear] = []
    other = hidden  # embedding_norm
    for i, kind in enumerate(kinds):
        p = f"model.layers.{i}"
        other += 2 * hidden  # operator_norm, ffn_norm
        if kind == "attention":
            attn_lins, extra = _attention(f, f"{p}.self_attn", t, qk_norm=True, out="out_proj")
            linears += attn_lins
            other += extra
        else:
            linears += [Linear(f"{p}.conv.in_proj", hidden, 3 * hidden, bias),
                        Linear(f"{p}.conv.out_proj", hidden, hidden, bias)]
            other += hidden * cache + (hidden if bias else 0)
        linears += _mlp(f"{p}.feed_forward", hidden, inter, gated=True, names=("w1", "w3", "w2"))
    conv_layers = kinds.count("conv")
    state = RecurrentState(layers=conv_layers, conv_elements=conv_layers * hidden * (cache - 1), ssm_elements=0)
    tied = f.bool_("tie_embedding", f.bool_("tie_word_embeddings", True))
    return _layout(f, t, linears=linears, other=other, inter=inter, kv_layers=kinds.count("attention"), state=state,
                   tied=tied)


HYBRID_READERS: dict[str, Callable[[_Fields], Layout]] = {
    "qwen3_next": _qwen_next, "qwen3_5": _qwen_next, "qwen3_5_text": _qwen_next, "qwen3_5_moe": _qwen_next,
    "qwen3_5_moe_text": _qwen_next, "jamba": _jamba, "granitemoehybrid": _granite_hybrid,
    "falcon_h1": _falcon_h1, "lfm2": _lfm2,
}
