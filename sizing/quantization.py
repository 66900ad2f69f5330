"""Pre-quantized checkpoints: what a ``quantization_config`` declares, and the bytes its layout holds.

``read_quantization`` parses the config block (AWQ, GPTQ, compressed-tensors, FP8, MXFP4,
bitsandbytes) into a ``QuantScheme``; ``weight_breakdown`` walks a ``Layout``'s linear layers and
returns the resident weight bytes split into quantized weights, scales + zero points (and GPTQ group
indices), and modules left in 16 bit (embeddings, norms, biases, routers, ``lm_head``, and whatever
the checkpoint's ignore list names). The tensor shapes are each format's own checkpoint layout:

- AWQ (GEMM): qweight int32 [in, out*bits/32], qzeros int32 [in/g, out*bits/32], scales fp16 [in/g, out].
- GPTQ: qweight int32 [in*bits/32, out], qzeros int32 [in/g, out*bits/32], scales fp16 [in/g, out],
  g_idx int32 [in] (written with and without desc_act).
- compressed-tensors: pack-quantized int weights int32 [out, in*bits/32] + weight_shape; int-quantized
  and float-quantized 8-bit weights [out, in]; scales per tensor / channel / group / block; zero points
  when asymmetric; input_scale when activations are statically quantized.
- FP8 (``quant_method: fp8``): e4m3 weight [out, in] + fp32 weight_scale_inv per 128x128 block
  (``weight_block_size``), or one fp32 scale per tensor.
- MXFP4 (gpt-oss): expert weights as 4-bit blocks [.., in/32, 16] uint8 + one uint8 E8M0 scale per 32
  weights = 4.25 bits per weight; every other module stays bf16 (transformers converts only experts).
- bitsandbytes: 4-bit packed uint8 + absmax per 64-weight block (fp32, or uint8 + fp32 per 256 blocks
  with double quantization); 8-bit int8 weight + fp32 SCB per output row.

Ignore lists are matched by ``sizing.module_patterns`` (regex entries in linear time, the whole list's
work bounded, multimodal module names in every spelling); an entry it cannot match safely refuses
the config naming the entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sizing.bounded import shown
from sizing.errors import SizingError
from sizing.hf_config import Layout, Linear
from sizing.module_patterns import (
    MAX_LIST_PROGRAM,
    MAX_REGEX_ENTRIES,
    IgnoreMatcher,
    PatternError,
    entry_program,
    ignore_matcher,
)
from sizing.precision import Precision

HALF = 2  # bytes of a 16-bit value (fp16/bf16): unquantized weights, AWQ/GPTQ scales, biases
MXFP4_BLOCK = 32  # weights per E8M0 scale (OCP Microscaling spec; gpt-oss *_scales tensors)
BNB_BLOCK = 64  # bitsandbytes 4-bit blocksize (bitsandbytes quantize_4bit default)
BNB_NESTED_BLOCK = 256  # bitsandbytes double-quant block of absmax values
# Ignore lists longer than this are refused: real ones name at most every excluded module of a model
# (a few hundred to ~1,300 linear layers: 128 layers x 10).
MAX_PATTERNS = 4096

METHODS = ("awq", "gptq", "compressed-tensors", "fp8", "mxfp4", "bitsandbytes")


@dataclass(frozen=True)
class QuantScheme:
    """What one checkpoint's ``quantization_config`` declares (parsed and bounds-checked)."""

    method: str  # one of METHODS
    bits: int
    weight_type: str  # "int" | "float" | "mxfp4" | "nf4" | "fp4"
    group_size: int  # 0 = per output channel, -1 = per tensor
    zero_points: bool
    block: tuple[int, int] | None  # FP8 / compressed-tensors block-wise scales
    ignore: tuple[str, ...]
    lm_head: bool  # lm_head quantized too (GPTQ ``lm_head: true``)
    desc_act: bool = False
    double_quant: bool = False
    static_input_scale: bool = False
    pack: str = ""  # compressed-tensors format, e.g. "pack-quantized"
    multimodal: bool = False  # module names may carry language_model / model prefixes (module_patterns)

    @property
    def precision(self) -> Precision:
        """The serving precision class this checkpoint is (what ``--precision`` must agree with)."""
        if self.weight_type == "float" and self.bits == 8:
            return Precision.FP8
        return Precision.INT8 if self.bits == 8 else Precision.INT4

    @property
    def label(self) -> str:
        """A short human name, e.g. "awq int4 group 128 zero points" or "mxfp4 (4.25 bits, experts)"."""
        if self.weight_type == "mxfp4":
            return "mxfp4 (4.25 bits per expert weight; other modules bf16)"
        kind = {"float": f"fp{self.bits}", "nf4": "nf4", "fp4": "fp4"}.get(self.weight_type, f"int{self.bits}")
        parts = [self.method, kind]
        if self.group_size > 0:
            parts.append(f"group {self.group_size}")
        if self.block:
            parts.append(f"block {self.block[0]}x{self.block[1]}")
        if self.zero_points:
            parts.append("zero points")
        if self.desc_act:
            parts.append("desc_act")
        if self.double_quant:
            parts.append("double quant")
        return " ".join(parts)


@dataclass(frozen=True)
class WeightBreakdown:
    """Resident weight bytes of a pre-quantized checkpoint (whole model, before tensor parallel)."""

    scheme: QuantScheme
    quantized_bytes: int
    scale_bytes: int  # scales, zero points, group indices, packed-shape records
    unquantized_bytes: int  # 16-bit modules: embeddings, norms, biases, routers, ignored modules
    quantized_params: int
    unquantized_params: int

    @property
    def total_bytes(self) -> int:
        return self.quantized_bytes + self.scale_bytes + self.unquantized_bytes

    def to_dict(self) -> dict[str, object]:
        return {"method": self.scheme.method, "label": self.scheme.label, "precision": self.scheme.precision.value,
                "quantized_bytes": self.quantized_bytes, "scale_bytes": self.scale_bytes,
                "unquantized_bytes": self.unquantized_bytes, "total_bytes": self.total_bytes,
                "quantized_params": self.quantized_params, "unquantized_params": self.unquantized_params}


def _err(field: str, problem: str) -> SizingError:
    return SizingError(f"config.json: field 'quantization_config.{field}' {problem}")


def _int(q: Mapping[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = q.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _err(key, f"must be an integer between {lo} and {hi}, got {value!r:.40}")
    return value


def _bool(q: Mapping[str, Any], key: str, default: bool) -> bool:
    value = q.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _err(key, f"must be true or false, got {value!r:.40}")
    return value


def _patterns(q: Mapping[str, Any], *keys: str) -> tuple[str, ...]:
    """The ignore entries under ``keys``, each checked (``module_patterns.entry_program``) and named when bad."""
    out: list[str] = []
    regexes = program = 0
    for key in keys:
        value = q.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or len(value) > MAX_PATTERNS:
            raise _err(key, f"must be a list of at most {MAX_PATTERNS} module names")
        for i, entry in enumerate(value):
            try:
                size = entry_program(entry)
            except PatternError as exc:
                raise _err(f"{key}[{i}]", f"{shown(entry)} {exc}" if isinstance(entry, str) else str(exc)) from None
            regexes, program = regexes + (size > 0), program + size
            if regexes > MAX_REGEX_ENTRIES:
                raise _err(key, f"has more than {MAX_REGEX_ENTRIES} regex and glob entries")
            if program > MAX_LIST_PROGRAM:
                raise _err(key, f"has regex and glob entries of more than {MAX_LIST_PROGRAM:,} RE2 instructions in all")
        out += value
    return tuple(out)


def _dynamic_skips(q: Mapping[str, Any]) -> list[str]:
    """GPTQModel's ``dynamic`` rules whose key is ``-:REGEX``: the modules they match are not quantized."""
    dynamic = q.get("dynamic")
    if not isinstance(dynamic, Mapping):
        return []
    out = []
    program = 0
    for key in dynamic:
        if isinstance(key, str) and key.startswith("-:"):
            try:
                program += entry_program(f"re:{key[2:]}")
            except PatternError as exc:
                raise _err("dynamic", f"key {shown(key)} {exc}") from None
            out.append(f"re:{key[2:]}")
            if len(out) > MAX_REGEX_ENTRIES:
                raise _err("dynamic", f"has more than {MAX_REGEX_ENTRIES} \"-:\" rules")
            if program > MAX_LIST_PROGRAM:
                raise _err("dynamic", f"has \"-:\" rules of more than {MAX_LIST_PROGRAM:,} RE2 instructions in all")
    return out


def _ct_scheme(q: Mapping[str, Any]) -> QuantScheme:
    groups = q.get("config_groups")
    if not isinstance(groups, Mapping) or not groups or len(groups) > 64:
        raise _err("config_groups", "must be a non-empty object of quantization groups")
    # the group that targets Linear layers (llm-compressor writes one: "group_0")
    chosen: Mapping[str, Any] | None = None
    for group in groups.values():
        if isinstance(group, Mapping) and isinstance(group.get("targets"), list) and "Linear" in group["targets"]:
            chosen = group
            break
    if chosen is None:
        raise _err("config_groups", "has no group targeting Linear layers; this layout cannot be sized")
    weights = chosen.get("weights")
    if not isinstance(weights, Mapping):
        raise _err("config_groups.weights", "must be an object")
    bits = _int(weights, "num_bits", 8, 2, 8)
    wtype = weights.get("type", "int")
    if wtype not in ("int", "float"):
        raise _err("config_groups.weights.type", f"must be int or float, got {wtype!r:.40}")
    strategy = weights.get("strategy", "tensor")
    if strategy not in ("tensor", "channel", "group", "block", "tensor_group"):
        raise _err("config_groups.weights.strategy", f"is not a known strategy: {strategy!r:.40}")
    group = _int(weights, "group_size", 0, 0, 1 << 20) if strategy in ("group", "tensor_group") else (
        -1 if strategy == "tensor" else 0)
    block = None
    if strategy == "block":
        raw = weights.get("block_structure")
        if not (isinstance(raw, list) and len(raw) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                               and 0 < v <= 1 << 16 for v in raw)):
            raise _err("config_groups.weights.block_structure", "must be two positive integers")
        block = (raw[0], raw[1])
    acts = chosen.get("input_activations")
    static = isinstance(acts, Mapping) and acts.get("dynamic") is False
    fmt = chosen.get("format") or q.get("format") or ""
    if not isinstance(fmt, str):
        raise _err("format", "must be a string")
    return QuantScheme("compressed-tensors", bits, wtype, group, not _bool(weights, "symmetric", True), block,
                       _patterns(q, "ignore"), False, static_input_scale=static, pack=fmt)


def read_quantization(config: Mapping[str, Any]) -> QuantScheme | None:
    """The checkpoint's declared quantization, or None when the config declares none."""
    scheme = _read_scheme(config)
    if scheme is None or not any(isinstance(config.get(k), Mapping) for k in ("text_config", "vision_config")):
        return scheme
    return replace(scheme, multimodal=True)


def _read_scheme(config: Mapping[str, Any]) -> QuantScheme | None:
    q = None
    text = config.get("text_config")
    # compressed-tensors checkpoints written before 2024-08 name the block "compression_config"
    for source in (config, text if isinstance(text, Mapping) else {}):
        for key in ("quantization_config", "compression_config"):
            if q is None and source.get(key) is not None:
                q = source[key]
    if q is None:
        return None
    if not isinstance(q, Mapping):
        raise SizingError("config.json: field 'quantization_config' must be an object")
    method = q.get("quant_method")
    if method is None and ("load_in_4bit" in q or "load_in_8bit" in q):
        method = "bitsandbytes"
    if not isinstance(method, str) or method.lower() not in METHODS:
        raise _err("quant_method", f"{method!r:.40} cannot be sized (known: {', '.join(METHODS)})")
    method = method.lower()
    if method == "awq":
        group = _int(q, "group_size", 128, -1, 1 << 20)
        return QuantScheme("awq", _int(q, "bits", 4, 2, 8), "int", group if group > 0 else 0,
                           _bool(q, "zero_point", True), None, _patterns(q, "modules_to_not_convert"), False)
    if method == "gptq":
        group = _int(q, "group_size", 128, -1, 1 << 20)
        ignore = [*_patterns(q, "modules_to_not_convert"), *_dynamic_skips(q)]
        return QuantScheme("gptq", _int(q, "bits", 4, 2, 8), "int", group if group > 0 else 0,
                           True, None, tuple(ignore), _bool(q, "lm_head", False), desc_act=_bool(q, "desc_act", False))
    if method == "compressed-tensors":
        return _ct_scheme(q)
    if method == "fp8":
        raw = q.get("weight_block_size")
        block = None
        if raw is not None:
            if not (isinstance(raw, list) and len(raw) == 2 and all(
                    isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 1 << 16 for v in raw)):
                raise _err("weight_block_size", "must be two positive integers")
            block = (raw[0], raw[1])
        return QuantScheme("fp8", 8, "float", -1 if block is None else 0, False, block,
                           _patterns(q, "modules_to_not_convert", "ignored_layers"), False,
                           static_input_scale=q.get("activation_scheme") == "static")
    if method == "mxfp4":
        return QuantScheme("mxfp4", 4, "mxfp4", MXFP4_BLOCK, False, None, _patterns(q, "modules_to_not_convert"), False)
    four = _bool(q, "load_in_4bit", False)
    if not four and not _bool(q, "load_in_8bit", False):
        raise _err("load_in_4bit", "bitsandbytes config loads neither 4-bit nor 8-bit weights")
    kind = q.get("bnb_4bit_quant_type", "nf4")
    return QuantScheme("bitsandbytes", 4 if four else 8, (kind if kind in ("nf4", "fp4") else "nf4") if four else "int",
                       BNB_BLOCK if four else 0, False, None, _patterns(q, "llm_int8_skip_modules"), False,
                       double_quant=four and _bool(q, "bnb_4bit_use_double_quant", False))


def _is_router(lin: Linear) -> bool:
    last = lin.name.rsplit(".", 1)[-1]
    return last in ("gate", "router", "shared_expert_gate")


def _quantized(lin: Linear, scheme: QuantScheme, ignored: IgnoreMatcher) -> bool:
    if lin.name in ("lm_head", "transformer.output_layer"):
        return scheme.lm_head and not ignored.matches(lin.name)
    if _is_router(lin):
        return False  # routers stay 16-bit in every format vLLM loads (ReplicatedLinear without quant)
    if scheme.method == "mxfp4" and not lin.fused_experts:
        return False
    return not ignored.matches(lin.name)


def _matcher(layout: Layout, patterns: Sequence[str], method: str, multimodal: bool) -> IgnoreMatcher:
    try:
        return ignore_matcher(patterns, method, multimodal, (lin.name for lin in layout.linears))
    except ValueError as exc:
        raise SizingError(f"config.json: quantization ignore list {exc}") from None


def _packed_int32(values: int, bits: int) -> int:
    """Bytes of ``values`` ``bits``-bit numbers packed into int32 words."""
    return math.ceil(values * bits / 32) * 4


def _linear_bytes(lin: Linear, s: QuantScheme) -> tuple[int, int]:
    """(quantized weight bytes, scale/zero bytes) of one weight matrix (one expert)."""
    i, o = lin.in_features, lin.out_features
    groups = 1 if s.group_size < 0 else (i if s.group_size == 0 else math.ceil(i / s.group_size))
    if s.method == "awq":
        g = math.ceil(i / s.group_size) if s.group_size else 1
        return i * _packed_int32(o, s.bits), g * o * HALF + (g * _packed_int32(o, s.bits) if s.zero_points else 0)
    if s.method == "gptq":
        g = math.ceil(i / s.group_size) if s.group_size else 1
        return _packed_int32(i, s.bits) * o, g * o * HALF + g * _packed_int32(o, s.bits) + i * 4
    if s.method == "mxfp4":
        return o * i // 2, o * math.ceil(i / MXFP4_BLOCK)
    if s.method == "bitsandbytes":
        if s.bits == 8:
            return i * o, o * 4
        blocks = math.ceil(i * o / BNB_BLOCK)
        absmax = blocks + math.ceil(blocks / BNB_NESTED_BLOCK) * 4 + 16 * 4 if s.double_quant else blocks * 4
        return math.ceil(i * o / 2), absmax + 16 * 4
    if s.method == "fp8":
        scale = (math.ceil(o / s.block[0]) * math.ceil(i / s.block[1]) * 4) if s.block else 4
        return i * o, scale + (4 if s.static_input_scale else 0)
    # compressed-tensors
    packed = s.bits < 8 or s.pack == "pack-quantized"  # weight_packed int32 + int64 weight_shape[2]
    weight = o * _packed_int32(i, s.bits) + 2 * 8 if packed else o * i * s.bits // 8
    if s.block:
        n_scales = math.ceil(o / s.block[0]) * math.ceil(i / s.block[1])
    elif s.group_size < 0:
        n_scales = 1
    elif s.group_size == 0:
        n_scales = o
    else:
        n_scales = o * groups
    scales = n_scales * HALF
    if s.zero_points:
        scales += _packed_int32(n_scales, s.bits) if s.bits < 8 else n_scales
    return weight, scales + (4 if s.static_input_scale else 0)


def weight_breakdown(layout: Layout, scheme: QuantScheme) -> WeightBreakdown:
    """The resident bytes of ``layout`` stored as ``scheme`` declares (see the module doc)."""
    ignored = _matcher(layout, scheme.ignore, scheme.method, scheme.multimodal)
    q_bytes = s_bytes = q_params = 0
    u_params = layout.embedding_params + layout.other_params
    for lin in layout.linears:
        weight_params = lin.experts * lin.in_features * lin.out_features
        bias_params = lin.experts * lin.out_features if lin.bias else 0
        u_params += bias_params
        if _quantized(lin, scheme, ignored):
            w, s = _linear_bytes(lin, scheme)
            q_bytes += lin.experts * w
            s_bytes += lin.experts * s
            q_params += weight_params
        else:
            u_params += weight_params
    return WeightBreakdown(scheme, q_bytes, s_bytes, u_params * HALF, q_params, u_params)


def names_matched(layout: Layout, patterns: Sequence[str], method: str, multimodal: bool = False) -> int:
    """How many linear layers of ``layout`` the ignore ``patterns`` name (for reports and tests)."""
    ignored = _matcher(layout, patterns, method, multimodal)
    return sum(1 for lin in layout.linears if ignored.matches(lin.name))
