"""The shapes of a model, read from its Hugging Face ``config.json`` (pure; takes the parsed JSON).

``read_layout`` turns a config into a ``Layout``: every linear layer with its module name, input and
output width, bias and expert count, plus the parameters that are not linear layers (embeddings,
norms, attention sinks) and the per-layer attention facts the KV cache depends on (KV heads, MLA
latent, sliding windows). Parameter counts, quantized byte layouts (``sizing.quantization``) and
the KV cache all come from this one description. Every config value is bounds-checked; what cannot
be sized raises ``SizingError`` naming the field and the model type.

Family facts (which MLP is gated, where biases and norms are, how sliding windows are laid out) are
those of the transformers modeling code of each ``model_type``; a model type not in the tables is
read as a Llama-style decoder when its config has Llama-style fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sizing.errors import SizingError
from sizing.recurrent_state import RecurrentState

# Bounds for config.json numbers: generous enough for every published model (DeepSeek-V3: hidden 7168,
# vocab 129280, 256 experts; Llama-3.1-405B: 126 layers, 16384 hidden) and small enough that a
# hostile config cannot make the arithmetic or the per-layer tables absurd.
MAX_LAYERS = 1024
MAX_WIDTH = 1 << 20  # hidden / intermediate / vocab-sized widths
MAX_VOCAB = 1 << 24
MAX_HEADS = 4096
MAX_EXPERTS = 4096
MAX_CONTEXT = 1 << 26  # 64 Mi tokens

# model_type -> sliding-window semantics when the config has no ``layer_types`` (transformers
# modeling code of each family): every layer windowed, Qwen2-style (layers >= max_window_layers
# windowed when use_sliding_window), or Gemma 2 alternation (even layers local, odd layers global).
WINDOW_EVERY_LAYER = frozenset({"mistral", "mixtral", "starcoder2", "phi3", "phimoe"})
WINDOW_QWEN = frozenset({"qwen2", "qwen2_moe", "qwen3", "qwen3_moe"})
WINDOW_ALTERNATING = frozenset({"gemma2"})

# Two-matrix (non-gated) MLPs: up -> activation -> down (transformers modeling code).
PLAIN_MLP = frozenset({"starcoder2", "falcon", "gpt2", "gpt_bigcode", "phi", "gpt_neox"})
# LayerNorm (weight + bias) instead of RMSNorm (weight only).
LAYER_NORM = frozenset({"starcoder2", "falcon", "gpt2", "phimoe"})
# q_norm / k_norm over one head (head_dim each) or over the whole projection.
QK_NORM_PER_HEAD = frozenset({"qwen3", "qwen3_moe", "gemma3", "gemma3_text", "exaone4"})
QK_NORM_FULL = frozenset({"olmo2", "olmo3", "olmoe"})
# Norms per decoder layer where it is not 2 (Gemma 2/3: pre/post attention and pre/post MLP).
NORMS_PER_LAYER = {"gemma2": 4, "gemma3": 4, "gemma3_text": 4}
# Families whose q/k/v projections always carry a bias (o_proj does not).
QKV_BIAS = frozenset({"qwen2", "qwen2_moe"})
# Architectures whose layers are not attention + MLP and that no reader here knows (pure state-space
# models, other recurrent hybrids): refused. Hybrid families with a reader: sizing.hybrid_layout.
UNSUPPORTED_LAYER_TYPES = ("linear_attention", "mamba", "conv", "recurrent")
# Text model types that are another family's decoder under a new name (multimodal text_config types,
# remote-code renames): the tables in this module are looked up by the family. Kimi-K2 ships
# DeepseekV3ForCausalLM (its auto_map); Qwen2.5-VL / Qwen3-VL decoders are Qwen2 / Qwen3 (MoE) ones.
FAMILY_OF = {"kimi_k2": "deepseek_v3", "qwen2_vl": "qwen2", "qwen2_vl_text": "qwen2", "qwen2_5_vl": "qwen2",
             "qwen2_5_vl_text": "qwen2", "qwen3_vl_text": "qwen3", "qwen3_vl_moe_text": "qwen3_moe",
             "llama4_text": "llama4", "mllama_text_model": "mllama", "glm4v_moe_text": "glm4_moe"}
# Values a family's transformers config class supplies when config.json leaves the key out; the
# published Gemma 3 multimodal configs rely on them (google/gemma-3-12b-it has no vocab_size or
# head_dim). Gemma3TextConfig defaults: vocab 262,208, head_dim 256, 128 Ki positions, a 4096-token
# window on 5 of every 6 layers.
FAMILY_DEFAULTS: dict[str, dict[str, int]] = {
    "gemma3_text": {"vocab_size": 262_208, "head_dim": 256, "max_position_embeddings": 131_072,
                    "sliding_window": 4096, "sliding_window_pattern": 6},
}
FAMILY_DEFAULTS["gemma3"] = FAMILY_DEFAULTS["gemma3_text"]
# Families whose layers < first_k_dense_replace are dense MLPs (DeepSeek-V2/V3/V3.2, Kimi-K2, GLM-4.5,
# GLM-4.7-Flash's glm4_moe_lite: DeepSeek-style MLA with GLM routing).
FIRST_K_DENSE = frozenset({"deepseek", "deepseek_v2", "deepseek_v3", "deepseek_v32", "glm4_moe", "glm4_moe_lite"})
# Routers with a per-expert score-correction bias (e_score_correction_bias, fp32 in the checkpoint):
# DeepSeek-V3-style when topk_method is "noaux_tc" (their config default), GLM-4.5 / 4.7-Flash always.
ROUTER_BIAS_NOAUX = frozenset({"deepseek_v3", "deepseek_v32"})
ROUTER_BIAS_ALWAYS = frozenset({"glm4_moe", "glm4_moe_lite"})
# q/k/v carry attention_bias but o_proj never does (GLM-4.5: Glm4MoeAttention o_proj bias=False).
QKV_BIAS_ONLY = frozenset({"glm4_moe"})
# q_norm / k_norm over one head when the config says use_qk_norm (GLM-4.5; Llama 4's is weightless).
QK_NORM_IF_USED = frozenset({"glm4_moe"})
# tie_word_embeddings when the config does not say: transformers' default is True, these families' is False.
UNTIED_BY_DEFAULT = frozenset({"llama4", "mllama"})
# Extra embedding rows beyond vocab_size (mllama: 8 image-tile special tokens, MllamaTextModel embed_tokens).
EXTRA_EMBEDDING_ROWS = {"mllama": 8}
# DeepSeek-V3.2 indexer key cache per token and layer (vLLM DeepseekV32IndexerCache): an fp8 key of
# index_head_dim bytes plus one fp32 scale per 128 values, whatever --kv-cache-dtype is.
INDEX_QUANT_BLOCK = 128
UNSUPPORTED_MODEL_TYPES = frozenset({"mixformer-sequential", "mamba", "mamba2", "rwkv", "bamba", "zamba", "zamba2",
                                     "recurrent_gemma"})


@dataclass(frozen=True)
class Linear:
    """One linear layer (or ``experts`` identical ones): weight ``out x in``, optional bias."""

    name: str
    in_features: int
    out_features: int
    bias: bool = False
    experts: int = 1
    routed: bool = False  # a routed expert: only top-k of them work per token
    fused_experts: bool = False  # experts stored as one 3-D tensor (gpt-oss; the MXFP4 target)

    @property
    def params(self) -> int:
        return self.experts * (self.in_features * self.out_features + (self.out_features if self.bias else 0))


@dataclass(frozen=True)
class Layout:
    """Everything the sizing needs to know about a config's shapes."""

    model_type: str
    linears: tuple[Linear, ...]
    embedding_params: int  # input embedding (the lm_head is a Linear unless tied)
    other_params: int  # norms, position embeddings, attention sinks, router biases
    hidden_size: int
    vocab_size: int
    num_layers: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    tied_embeddings: bool
    max_context: int
    layer_windows: tuple[int, ...]  # per layer: sliding window in tokens, 0 = full attention
    mla: tuple[int, int] | None = None  # (kv_lora_rank, qk_rope_head_dim)
    num_experts: int = 0
    experts_per_token: int = 0
    index_key_bytes: int = 0  # per token and layer: DeepSeek-V3.2 indexer key cache (fixed fp8 layout)
    cross_attention_layers: int = 0  # mllama: layers attending to image tokens (not in kv_layers)
    cross_attention_tokens: int = 0  # image tokens each cross-attention layer caches per sequence
    vision_params: int = 0  # vision tower + projector parameters (included in the linears / other_params)
    kv_layers: int | None = None  # layers with a KV cache when not every layer has one (hybrids)
    state: RecurrentState | None = None  # hybrids: the fixed per-sequence state of the other layers

    @property
    def params_total(self) -> int:
        return self.embedding_params + self.other_params + sum(lin.params for lin in self.linears)

    @property
    def params_active(self) -> int:
        """Parameters one token touches: routed experts count top_k of num_experts."""
        routed = sum(lin.params for lin in self.linears if lin.routed)
        if not routed:
            return self.params_total
        return self.params_total - routed + routed * self.experts_per_token // self.num_experts


class _Fields:
    """Bounded reads of one config's fields; every error names the field and the model type."""

    def __init__(self, text: Mapping[str, Any], outer: Mapping[str, Any], model_type: str) -> None:
        self.text = text
        self.outer = outer
        self.model_type = model_type
        self.family = FAMILY_OF.get(model_type, model_type)  # the key of this module's family tables

    def error(self, field: str, problem: str) -> SizingError:
        return SizingError(f"config.json (model_type {self.model_type!r}): field {field!r} {problem}")

    def _raw(self, key: str) -> Any:
        value = self.text.get(key, self.outer.get(key) if self.outer is not self.text else None)
        return FAMILY_DEFAULTS.get(self.family, {}).get(key) if value is None and key not in self.text else value

    def int_(self, key: str, *alts: str, maximum: int = MAX_WIDTH, minimum: int = 1,
             default: int | None = None) -> int:
        """A required integer (the first of ``key, *alts`` present), ``minimum..maximum``."""
        for k in (key, *alts):
            value = self._raw(k)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.error(k, f"must be an integer, got {type(value).__name__}")
            if not minimum <= value <= maximum:
                raise self.error(k, f"must be between {minimum} and {maximum}, got {value}")
            return value
        if default is not None:
            return default
        raise self.error(key, "is missing (need a positive integer)")

    def opt_int(self, key: str, *alts: str, maximum: int = MAX_WIDTH, minimum: int = 0) -> int | None:
        """An optional integer: None when absent or null."""
        for k in (key, *alts):
            if self._raw(k) is not None:
                return self.int_(k, maximum=maximum, minimum=minimum)
        return None

    def bool_(self, key: str, default: bool) -> bool:
        value = self._raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {type(value).__name__}")
        return value

    def str_(self, key: str, default: str = "") -> str:
        value = self._raw(key)
        if value is None:
            return default
        if not isinstance(value, str) or len(value) > 256:
            raise self.error(key, "must be a short string")
        return value


def _norm(f: _Fields, width: int) -> int:
    return width * (2 if f.family in LAYER_NORM else 1)


def _mlp(prefix: str, hidden: int, inter: int, *, gated: bool, bias: bool = False, experts: int = 1,
         routed: bool = False, names: tuple[str, str, str] = ("gate_proj", "up_proj", "down_proj")) -> list[Linear]:
    gate, up, down = names
    out = [Linear(f"{prefix}.{up}", hidden, inter, bias, experts, routed),
           Linear(f"{prefix}.{down}", inter, hidden, bias, experts, routed)]
    if gated:
        out.insert(0, Linear(f"{prefix}.{gate}", hidden, inter, bias, experts, routed))
    return out


def _layer_windows(f: _Fields, layers: int) -> tuple[int, ...]:
    """Per-layer sliding window (0 = full) with each family's own semantics."""
    full = (0,) * layers
    layer_types = f.text.get("layer_types")
    window = f.opt_int("sliding_window", maximum=MAX_CONTEXT)
    if isinstance(layer_types, list):
        if len(layer_types) != layers or not all(isinstance(t, str) for t in layer_types):
            raise f.error("layer_types", f"must list {layers} layer type names")
        odd = sorted({t for t in layer_types if t not in ("full_attention", "sliding_attention")})
        if odd:
            raise f.error("layer_types", f"names layer type {odd[0]!r}, which cannot be sized")
        if "sliding_attention" in layer_types and not window:
            raise f.error("sliding_window", "is missing although layer_types has sliding_attention layers")
        return tuple(window or 0 if t == "sliding_attention" else 0 for t in layer_types)
    pattern = f._raw("sliding_window_pattern")  # family default where the config omits it (Gemma 3)
    step = 0
    if isinstance(pattern, str):  # EXAONE 4: "LLLG" repeated (L local, G global)
        if not pattern or len(pattern) > 64 or set(pattern) - {"L", "G"}:
            raise f.error("sliding_window_pattern", "must be a string of L and G")
    elif pattern is not None:  # Gemma 3 / Cohere 2: every pattern-th layer is global
        step = f.int_("sliding_window_pattern", maximum=MAX_LAYERS)
    if not window:
        return full
    if isinstance(pattern, str):
        return tuple(window if pattern[i % len(pattern)] == "L" else 0 for i in range(layers))
    if step:
        return tuple(0 if (i + 1) % step == 0 else window for i in range(layers))
    if f.family in WINDOW_ALTERNATING:
        return tuple(window if (i + 1) % 2 else 0 for i in range(layers))
    if f.family in WINDOW_QWEN:
        if not f.bool_("use_sliding_window", False):
            return full
        first = f.int_("max_window_layers", maximum=MAX_LAYERS, minimum=0, default=layers)
        return tuple(window if i >= first else 0 for i in range(layers))
    if f.family in WINDOW_EVERY_LAYER:
        return (window,) * layers
    # A family whose window semantics are not known here: size every layer as full attention
    # (an over-estimate; under-estimating the cache is the dangerous direction).
    return full


def _attention(f: _Fields, prefix: str, hidden: int, heads: int, kv: int, head_dim: int) -> tuple[list[Linear], int]:
    """q/k/v/o projections (or the family's fused form) and the attention's own norm params."""
    mt = f.family
    qkv_bias = o_bias = f.bool_("attention_bias", False)
    if mt in QKV_BIAS:
        qkv_bias, o_bias = True, False
    if mt in QKV_BIAS_ONLY:
        o_bias = False
    if mt == "starcoder2":
        qkv_bias = o_bias = f.bool_("use_bias", True)
    q_out, kv_out = heads * head_dim, kv * head_dim
    if mt in ("phi3",):
        lins = [Linear(f"{prefix}.qkv_proj", hidden, q_out + 2 * kv_out, qkv_bias)]
    else:
        lins = [Linear(f"{prefix}.q_proj", hidden, q_out, qkv_bias),
                Linear(f"{prefix}.k_proj", hidden, kv_out, qkv_bias),
                Linear(f"{prefix}.v_proj", hidden, kv_out, qkv_bias)]
    lins.append(Linear(f"{prefix}.o_proj", q_out, hidden, o_bias))
    extra = 0
    if mt in QK_NORM_PER_HEAD or (mt in QK_NORM_IF_USED and f.bool_("use_qk_norm", False)):
        extra = 2 * head_dim
    elif mt in QK_NORM_FULL:
        extra = q_out + kv_out
    if mt == "gpt_oss":
        extra += heads  # attention sinks: one learned logit per head
    return lins, extra


def _mla(f: _Fields, prefix: str, hidden: int, heads: int) -> tuple[list[Linear], int, tuple[int, int]]:
    """DeepSeek multi-head latent attention: low-rank q (optional) and a compressed KV latent."""
    kv_rank = f.int_("kv_lora_rank")
    q_rank = f.opt_int("q_lora_rank")
    nope = f.int_("qk_nope_head_dim")
    rope = f.int_("qk_rope_head_dim")
    v_dim = f.int_("v_head_dim")
    bias = f.bool_("attention_bias", False)
    q_head = nope + rope
    lins: list[Linear] = []
    norms = kv_rank
    if q_rank:
        lins += [Linear(f"{prefix}.q_a_proj", hidden, q_rank, bias),
                 Linear(f"{prefix}.q_b_proj", q_rank, heads * q_head)]
        norms += q_rank
    else:
        lins.append(Linear(f"{prefix}.q_proj", hidden, heads * q_head))
    lins += [Linear(f"{prefix}.kv_a_proj_with_mqa", hidden, kv_rank + rope, bias),
             Linear(f"{prefix}.kv_b_proj", kv_rank, heads * (nope + v_dim)),
             Linear(f"{prefix}.o_proj", heads * v_dim, hidden, bias)]
    return lins, norms, (kv_rank, rope)


def _indexer(f: _Fields, prefix: str, hidden: int) -> tuple[list[Linear], int, int]:
    """DeepSeek-V3.2 sparse-attention indexer of one layer: (linears, norm params, key cache bytes per
    token). wq_b reads the q latent, wk and weights_proj the hidden state; k_norm is a LayerNorm."""
    n_heads = f.int_("index_n_heads", maximum=MAX_HEADS)
    head_dim = f.int_("index_head_dim")
    if f.opt_int("q_lora_rank") is None:
        raise f.error("q_lora_rank", "is missing; the sparse-attention indexer reads the q latent")
    q_rank = f.int_("q_lora_rank")
    f.int_("index_topk", maximum=MAX_CONTEXT, default=1)  # bounds only: top-k does not change the sizes
    lins = [Linear(f"{prefix}.indexer.wq_b", q_rank, n_heads * head_dim),
            Linear(f"{prefix}.indexer.wk", hidden, head_dim),
            Linear(f"{prefix}.indexer.weights_proj", hidden, n_heads)]
    key_bytes = head_dim + -(-head_dim // INDEX_QUANT_BLOCK) * 4  # fp8 key + fp32 scale per 128 values
    return lins, 2 * head_dim, key_bytes


def _moe_layer(f: _Fields, i: int, layers: int, experts: int) -> bool:
    """Whether decoder layer ``i`` is a mixture-of-experts layer (each family's own rule)."""
    if not experts:
        return False
    if f.family in FIRST_K_DENSE:
        first = f.int_("first_k_dense_replace", maximum=MAX_LAYERS, minimum=0, default=0)
        freq = f.int_("moe_layer_freq", maximum=MAX_LAYERS, default=1)
        return i >= first and i % freq == 0
    if f.family == "llama4":  # an explicit moe_layers list, else every interleave_moe_layer_step-th layer
        listed = f.text.get("moe_layers")
        if listed is not None:
            if not isinstance(listed, list) or len(listed) > layers or not all(
                    isinstance(x, int) and not isinstance(x, bool) for x in listed):
                raise f.error("moe_layers", f"must be a list of at most {layers} layer indices")
            return i in listed
        step = f.int_("interleave_moe_layer_step", maximum=MAX_LAYERS, default=1)
        return (i + 1) % step == 0
    if f.family in ("qwen2_moe", "qwen3_moe"):
        only = f.text.get("mlp_only_layers") or []
        if not isinstance(only, list) or len(only) > layers or not all(
                isinstance(x, int) and not isinstance(x, bool) for x in only):
            raise f.error("mlp_only_layers", f"must be a list of at most {layers} layer indices")
        step = f.int_("decoder_sparse_step", maximum=MAX_LAYERS, default=1)
        return i not in only and (i + 1) % step == 0
    return True


def _head_dim(f: _Fields, hidden: int, heads: int, key: str = "head_dim") -> int:
    """``head_dim`` when the config gives it, else hidden / heads, which must divide evenly."""
    given = f.opt_int(key)
    if given is not None:
        return f.int_(key)
    if hidden % heads:
        raise f.error("hidden_size", f"({hidden}) must be divisible by num_attention_heads ({heads}) "
                      f"when {key} is not given")
    return hidden // heads


def _decoder(f: _Fields) -> Layout:
    """Llama-style decoders and their relatives (Qwen, Mistral, Gemma, Phi-3, OLMo, DeepSeek, gpt-oss, ...)."""
    mt = f.family
    hidden = f.int_("hidden_size", "d_model", "n_embd")
    layers = f.int_("num_hidden_layers", "n_layer", "num_layers", maximum=MAX_LAYERS)
    heads = f.int_("num_attention_heads", "n_head", maximum=MAX_HEADS)
    kv = f.int_("num_key_value_heads", maximum=MAX_HEADS, default=heads)
    if heads % kv:
        raise f.error("num_key_value_heads", f"must be a positive divisor of num_attention_heads ({heads}), got {kv}")
    vocab = f.int_("vocab_size", maximum=MAX_VOCAB)
    inter = f.int_("intermediate_size", "ffn_dim", "moe_intermediate_size")
    experts = f.opt_int("n_routed_experts", "num_local_experts", "num_experts", maximum=MAX_EXPERTS) or 0
    top_k = f.opt_int("num_experts_per_tok", "experts_per_token", maximum=MAX_EXPERTS) or 0
    if experts and not 0 < top_k <= experts:
        raise f.error("num_experts_per_tok", f"must be between 1 and the number of experts ({experts})")
    is_mla = f.text.get("kv_lora_rank") is not None
    # MLA heads are qk_nope + qk_rope wide, whatever hidden / heads is (GLM-4.7-Flash: 2048 / 20)
    head_dim = f.int_("qk_nope_head_dim") + f.int_("qk_rope_head_dim") if is_mla else _head_dim(f, hidden, heads)
    expert_inter = f.opt_int("moe_intermediate_size") or inter
    shared_inter = f.opt_int("shared_expert_intermediate_size") or 0
    n_shared = f.opt_int("n_shared_experts", maximum=MAX_EXPERTS) or 0
    gated = mt not in PLAIN_MLP
    mlp_bias = f.bool_("mlp_bias", False) or (mt == "starcoder2" and f.bool_("use_bias", True))
    has_indexer = is_mla and f.text.get("index_n_heads") is not None
    cross = _cross_attention_layers(f, layers)
    mla: tuple[int, int] | None = None
    index_key_bytes = 0
    linears: list[Linear] = []
    other = 0
    norms_per_layer = NORMS_PER_LAYER.get(mt, 2)
    for i in range(layers):
        p = f"model.layers.{i}"
        if i in cross:
            attn, extra = _cross_attention(f, f"{p}.cross_attn", hidden, heads, kv, head_dim)
        elif is_mla:
            attn, extra, mla = _mla(f, f"{p}.self_attn", hidden, heads)
            if has_indexer:
                index, index_norm, index_key_bytes = _indexer(f, f"{p}.self_attn", hidden)
                attn, extra = attn + index, extra + index_norm
        else:
            attn, extra = _attention(f, f"{p}.self_attn", hidden, heads, kv, head_dim)
        linears += attn
        other += extra + norms_per_layer * _norm(f, hidden)
        if mt == "llama4":
            linears += _llama4_feed_forward(f, p, hidden, inter, experts, moe=_moe_layer(f, i, layers, experts))
        elif _moe_layer(f, i, layers, experts):
            linears += _moe_block(f, p, hidden, experts, expert_inter, shared_inter, n_shared)
            other += _router_bias(f, experts)
        elif mt == "starcoder2":
            linears += _mlp(f"{p}.mlp", hidden, inter, gated=False, bias=mlp_bias, names=("", "c_fc", "c_proj"))
        elif mt == "phi3":
            linears += [Linear(f"{p}.mlp.gate_up_proj", hidden, 2 * inter), Linear(f"{p}.mlp.down_proj", inter, hidden)]
        else:
            linears += _mlp(f"{p}.mlp", hidden, inter, gated=gated, bias=mlp_bias)
    other += _norm(f, hidden)  # final norm
    tied = f.bool_("tie_word_embeddings", mt not in UNTIED_BY_DEFAULT)
    if not tied:
        linears.append(Linear("lm_head", hidden, vocab, f.bool_("lm_head_bias", False)))
    # Llama 4's chunked-attention layers keep every token's KV in vLLM: it disables its hybrid KV cache
    # manager for chunked local attention by default ("latency regression ... Disabling it, by default",
    # VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1 to enable; vllm/config/vllm.py), and without
    # it every layer's cache is a full-attention one. Sizing the chunks as windows would under-estimate.
    windows = (0,) * layers if mt == "llama4" else _layer_windows(f, layers)
    return Layout(
        model_type=f.model_type, linears=tuple(linears),
        embedding_params=(vocab + EXTRA_EMBEDDING_ROWS.get(mt, 0)) * hidden, other_params=other,
        hidden_size=hidden, vocab_size=vocab, num_layers=layers, num_attention_heads=heads,
        num_kv_heads=kv, head_dim=head_dim, intermediate_size=inter, tied_embeddings=tied,
        max_context=_max_context(f), layer_windows=tuple(w for i, w in enumerate(windows) if i not in cross),
        mla=mla, num_experts=experts, experts_per_token=top_k, index_key_bytes=index_key_bytes,
        cross_attention_layers=len(cross), kv_layers=layers - len(cross) if cross else None,
    )


def _router_bias(f: _Fields, experts: int) -> int:
    """Parameters of a MoE layer's e_score_correction_bias (one per expert), where the family has it."""
    if f.family in ROUTER_BIAS_ALWAYS:
        return experts
    if f.family in ROUTER_BIAS_NOAUX and f.str_("topk_method", "noaux_tc") == "noaux_tc":
        return experts
    return 0


def _llama4_feed_forward(f: _Fields, p: str, hidden: int, inter: int, experts: int, *, moe: bool) -> list[Linear]:
    """Llama 4's feed-forward: a MoE layer has a router, ``experts`` fused SwiGLU experts of
    intermediate_size and one shared expert of the same width; a dense layer (Maverick interleaves
    them) is a SwiGLU MLP of intermediate_size_mlp (transformers Llama4TextMoe / Llama4TextMLP)."""
    ff = f"{p}.feed_forward"
    if not moe:
        return _mlp(ff, hidden, f.int_("intermediate_size_mlp", default=inter), gated=True)
    return [Linear(f"{ff}.router", hidden, experts),
            Linear(f"{ff}.experts.gate_up_proj", hidden, 2 * inter, False, experts, True, True),
            Linear(f"{ff}.experts.down_proj", inter, hidden, False, experts, True, True),
            *_mlp(f"{ff}.shared_expert", hidden, inter, gated=True)]


def _cross_attention_layers(f: _Fields, layers: int) -> frozenset[int]:
    """mllama's cross_attention_layers: decoder layers attending to the image, not to earlier tokens."""
    listed = f.text.get("cross_attention_layers")
    if listed is None or f.family != "mllama":
        return frozenset()
    if not isinstance(listed, list) or len(listed) > layers or not all(
            isinstance(x, int) and not isinstance(x, bool) and 0 <= x < layers for x in listed):
        raise f.error("cross_attention_layers", f"must be a list of layer indices below {layers}")
    return frozenset(listed)


def _cross_attention(f: _Fields, prefix: str, hidden: int, heads: int, kv: int,
                     head_dim: int) -> tuple[list[Linear], int]:
    """One mllama cross-attention block: q/k/v/o without bias, per-head q/k RMSNorms and the two
    tanh gates of its decoder layer (MllamaTextCrossAttention / MllamaCrossAttentionDecoderLayer)."""
    lins = [Linear(f"{prefix}.q_proj", hidden, heads * head_dim), Linear(f"{prefix}.k_proj", hidden, kv * head_dim),
            Linear(f"{prefix}.v_proj", hidden, kv * head_dim), Linear(f"{prefix}.o_proj", heads * head_dim, hidden)]
    return lins, 2 * head_dim + 2


def _moe_block(f: _Fields, p: str, hidden: int, experts: int, expert_inter: int, shared_inter: int,
               n_shared: int) -> list[Linear]:
    mt = f.family
    if mt == "gpt_oss":  # fused 3-D expert tensors with biases; router with bias
        return [Linear(f"{p}.mlp.router", hidden, experts, bias=True),
                Linear(f"{p}.mlp.experts.gate_up_proj", hidden, 2 * expert_inter, True, experts, True, True),
                Linear(f"{p}.mlp.experts.down_proj", expert_inter, hidden, True, experts, True, True)]
    if mt in ("mixtral", "phimoe"):
        return [Linear(f"{p}.block_sparse_moe.gate", hidden, experts),
                *_mlp(f"{p}.block_sparse_moe.experts.0", hidden, expert_inter, gated=True, experts=experts,
                      routed=True, names=("w1", "w3", "w2"))]
    out = [Linear(f"{p}.mlp.gate", hidden, experts),
           *_mlp(f"{p}.mlp.experts.0", hidden, expert_inter, gated=True, experts=experts, routed=True)]
    if shared_inter:  # Qwen1.5/2-MoE: one shared expert with its own sigmoid gate
        out += _mlp(f"{p}.mlp.shared_expert", hidden, shared_inter, gated=True)
        out.append(Linear(f"{p}.mlp.shared_expert_gate", hidden, 1))
    elif n_shared:  # DeepSeek: n_shared experts fused into one MLP
        out += _mlp(f"{p}.mlp.shared_experts", hidden, expert_inter * n_shared, gated=True)
    return out


def _chatglm(f: _Fields) -> Layout:
    """ChatGLM2/3 and GLM-4 (trust_remote_code ``chatglm``): fused QKV, fused gate/up, RMSNorm."""
    if f.text.get("position_encoding_2d") is not None or f.text.get("inner_hidden_size") is not None:
        raise f.error("position_encoding_2d", "marks the first ChatGLM-6B layout, which cannot be sized "
                      "(ChatGLM2/3 and GLM-4 configs can)")
    hidden = f.int_("hidden_size")
    layers = f.int_("num_layers", "num_hidden_layers", maximum=MAX_LAYERS)
    heads = f.int_("num_attention_heads", maximum=MAX_HEADS)
    head_dim = _head_dim(f, hidden, heads, "kv_channels")
    kv = f.int_("multi_query_group_num", maximum=MAX_HEADS) if f.bool_("multi_query_attention", False) else heads
    if heads % kv:
        raise f.error("multi_query_group_num", f"must divide num_attention_heads ({heads})")
    vocab = f.int_("padded_vocab_size", "vocab_size", maximum=MAX_VOCAB)
    ffn = f.int_("ffn_hidden_size")
    qkv_bias = f.bool_("add_qkv_bias", False)
    bias = f.bool_("add_bias_linear", False)
    norm = hidden * (1 if f.bool_("rmsnorm", True) else 2)
    linears: list[Linear] = []
    for i in range(layers):
        p = f"transformer.encoder.layers.{i}"
        qkv_out = (heads + 2 * kv) * head_dim
        linears += [Linear(f"{p}.self_attention.query_key_value", hidden, qkv_out, qkv_bias or bias),
                    Linear(f"{p}.self_attention.dense", heads * head_dim, hidden, bias),
                    Linear(f"{p}.mlp.dense_h_to_4h", hidden, 2 * ffn, bias),
                    Linear(f"{p}.mlp.dense_4h_to_h", ffn, hidden, bias)]
    tied = f.bool_("tie_word_embeddings", False)
    if not tied:
        linears.append(Linear("transformer.output_layer", hidden, vocab))
    other = layers * 2 * norm + (norm if f.bool_("post_layer_norm", True) else 0)
    return Layout(
        model_type=f.model_type, linears=tuple(linears), embedding_params=vocab * hidden, other_params=other,
        hidden_size=hidden, vocab_size=vocab, num_layers=layers, num_attention_heads=heads, num_kv_heads=kv,
        head_dim=head_dim, intermediate_size=ffn, tied_embeddings=tied,
        max_context=f.int_("seq_length", "max_position_embeddings", maximum=MAX_CONTEXT, default=4096),
        layer_windows=(0,) * layers,
    )


def _falcon(f: _Fields) -> Layout:
    """Falcon (RW): fused QKV with multi-query or grouped KV, plain MLP, LayerNorm."""
    hidden = f.int_("hidden_size", "n_embed")
    layers = f.int_("num_hidden_layers", "n_layer", maximum=MAX_LAYERS)
    heads = f.int_("num_attention_heads", "n_head", maximum=MAX_HEADS)
    head_dim = _head_dim(f, hidden, heads)
    new_arch = f.bool_("new_decoder_architecture", False)
    if new_arch:
        kv = f.int_("num_kv_heads", "n_head_kv", maximum=MAX_HEADS, default=heads)
    else:
        kv = 1 if f.bool_("multi_query", True) else heads
    vocab = f.int_("vocab_size", maximum=MAX_VOCAB)
    ffn = f.int_("ffn_hidden_size", default=4 * hidden)
    bias = f.bool_("bias", False)
    parallel = f.bool_("parallel_attn", True)
    ln_per_layer = 2 if new_arch and f.int_("num_ln_in_parallel_attn", maximum=2, default=2) == 2 else (
        1 if parallel else 2)
    linears: list[Linear] = []
    for i in range(layers):
        p = f"transformer.h.{i}"
        linears += [Linear(f"{p}.self_attention.query_key_value", hidden, (heads + 2 * kv) * head_dim, bias),
                    Linear(f"{p}.self_attention.dense", hidden, hidden, bias),
                    Linear(f"{p}.mlp.dense_h_to_4h", hidden, ffn, bias),
                    Linear(f"{p}.mlp.dense_4h_to_h", ffn, hidden, bias)]
    tied = f.bool_("tie_word_embeddings", True)
    if not tied:
        linears.append(Linear("lm_head", hidden, vocab))
    return Layout(
        model_type=f.model_type, linears=tuple(linears), embedding_params=vocab * hidden,
        other_params=(layers * ln_per_layer + 1) * 2 * hidden, hidden_size=hidden, vocab_size=vocab,
        num_layers=layers, num_attention_heads=heads, num_kv_heads=kv, head_dim=head_dim, intermediate_size=ffn,
        tied_embeddings=tied, max_context=_max_context(f), layer_windows=(0,) * layers,
    )


def _gpt2(f: _Fields) -> Layout:
    """GPT-2: learned positions, fused c_attn, plain MLP, LayerNorm, all with biases (Conv1D)."""
    hidden = f.int_("n_embd", "hidden_size")
    layers = f.int_("n_layer", "num_hidden_layers", maximum=MAX_LAYERS)
    heads = f.int_("n_head", "num_attention_heads", maximum=MAX_HEADS)
    vocab = f.int_("vocab_size", maximum=MAX_VOCAB)
    positions = f.int_("n_positions", "max_position_embeddings", maximum=MAX_CONTEXT, default=1024)
    inner = f.opt_int("n_inner") or 4 * hidden
    linears: list[Linear] = []
    for i in range(layers):
        p = f"transformer.h.{i}"
        linears += [Linear(f"{p}.attn.c_attn", hidden, 3 * hidden, True),
                    Linear(f"{p}.attn.c_proj", hidden, hidden, True),
                    Linear(f"{p}.mlp.c_fc", hidden, inner, True), Linear(f"{p}.mlp.c_proj", inner, hidden, True)]
    return Layout(
        model_type=f.model_type, linears=tuple(linears), embedding_params=vocab * hidden,
        other_params=positions * hidden + (2 * layers + 1) * 2 * hidden, hidden_size=hidden, vocab_size=vocab,
        num_layers=layers, num_attention_heads=heads, num_kv_heads=heads, head_dim=_head_dim(f, hidden, heads),
        intermediate_size=inner, tied_embeddings=True, max_context=positions, layer_windows=(0,) * layers,
    )


def _max_context(f: _Fields) -> int:
    return f.int_("max_position_embeddings", "n_positions", "seq_length", maximum=MAX_CONTEXT, default=4096)


_READERS = {"chatglm": _chatglm, "glm": _chatglm, "falcon": _falcon, "RefinedWeb": _falcon, "RefinedWebModel": _falcon,
            "gpt2": _gpt2}
_SAFE_TYPE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The language-model part of a config (multimodal configs keep it in ``text_config``)."""
    inner = config.get("text_config")
    return inner if isinstance(inner, Mapping) else config


def read_layout(config: Mapping[str, Any]) -> Layout:
    """The ``Layout`` of a parsed config.json; SizingError naming field and model type otherwise.
    A multimodal config's vision tower and projector (``sizing.vision_tower``) are part of it: vLLM
    loads them beside the language model."""
    layout = _text_layout(config)
    from sizing.vision_tower import read_vision  # imports this module: bound at call time

    outer_type = config.get("model_type")
    tower = read_vision(config, outer_type if isinstance(outer_type, str) else "unknown", layout.hidden_size)
    if tower is None:
        return layout
    return replace(layout, linears=layout.linears + tower.linears,
                   other_params=layout.other_params + tower.other_params, vision_params=tower.params,
                   cross_attention_tokens=tower.cross_attention_tokens)


def _text_layout(config: Mapping[str, Any]) -> Layout:
    """The language model's ``Layout`` (the whole model for a text-only config)."""
    if not isinstance(config, Mapping):
        raise SizingError("config.json must be a JSON object")
    text = text_config(config)
    raw_type = text.get("model_type", config.get("model_type", "unspecified"))
    model_type = raw_type if isinstance(raw_type, str) and _SAFE_TYPE.fullmatch(raw_type) else "unknown"
    f = _Fields(text, config, model_type)
    from sizing.hybrid_layout import HYBRID_READERS  # imports this module: bound at call time

    if model_type in HYBRID_READERS:
        return HYBRID_READERS[model_type](f)
    if model_type in UNSUPPORTED_MODEL_TYPES:
        raise f.error("model_type", "names a layout this sizing does not read (state-space, linear-attention "
                      "or pre-transformers format); it cannot be sized")
    layer_types = text.get("layer_types")
    if isinstance(layer_types, list):
        for t in layer_types:
            if isinstance(t, str) and any(u in t for u in UNSUPPORTED_LAYER_TYPES):
                raise f.error("layer_types", f"has {t!r} layers, which cannot be sized")
    return _READERS.get(model_type, _decoder)(f)
