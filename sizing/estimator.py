"""Memory a model needs on one partition: weights + KV cache + activation peak + runtime overhead.

The budget model is vLLM's (V1 engine, kserve-aim-sizing.md section 4.1):
``usable = partition_bytes x gpu_memory_utilization`` must hold
``weights + activation peak + non-torch + graphs + KV for the sized sequences``.
Everything here is pure arithmetic on catalogue facts and the documented constants below.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

from sizing.catalogue import ModelArch
from sizing.errors import SizingError
from sizing.geometry import Geometry, PartitionMode
from sizing.precision import (
    BODY_BYTES_PER_PARAM,
    EMBEDDING_BYTES_PER_PARAM,
    Precision,
    kv_element_bytes,
    parse_precision,
)

GIB = 1024**3

# Fraction of a partition vLLM may use. vLLM's default (0.9; docs.vllm.ai engine args) and the value
# AMD's AIM profiles ship (aim-build vllm-mi300x-fp16-tp1-latency.yaml). One number for estimator,
# profiles and extender: a partition's usable budget is its memory times this.
GPU_MEMORY_UTILIZATION = 0.90

# Sized context when none is given: one sequence of min(model max context, 8192) tokens. 8192 is
# the API server's max_num_batched_tokens on big devices and a common serving context; longer
# contexts are opt-in (--max-model-len / aim.amd.com/max-model-len).
DEFAULT_CONTEXT_CAP = 8192
DEFAULT_CONCURRENCY = 1

# Tokens of the profiling forward pass. vLLM picks 2048 batched tokens / 256 seqs on devices under
# 70 GiB (vllm/engine/arg_utils.py); we pin 2048 on every partition so the activation peak we
# sized is the one vLLM measures, whatever the partition size.
DEFAULT_MAX_NUM_BATCHED_TOKENS = 2048
DEFAULT_MAX_NUM_SEQS = 256  # vLLM's small-device default (vllm/engine/arg_utils.py)

# Activation peak at 8192 batched tokens, measured by llm-d on vLLM (empirical-vllm-memory-results.md:
# Llama-3.1-8B 4.76, Qwen3-32B 5.64, Qwen3-0.6B 5.56 GiB) and their planner constants (dense 5.5,
# MoE 8.0 GiB). The peak scales with max_num_batched_tokens (it does not depend on max_model_len),
# so we scale linearly from the 8192-token reference.
ACTIVATION_REF_TOKENS = 8192
ACTIVATION_DENSE_BYTES_AT_REF = int(5.5 * GIB)
ACTIVATION_MOE_BYTES_AT_REF = int(8.0 * GIB)

# Non-torch memory (HIP runtime, RCCL): 0.15 GiB at TP=1, 0.6 GiB with TP>=2 (llm-d planner
# constants, matching measured 0.13-0.14 / 0.55 GiB). Graph capture: 0.5 GiB (llm-d measured -0.9..+0.6
# GiB; the reference's worked fits use 0.5).
NON_TORCH_BYTES_TP1 = int(0.15 * GIB)
NON_TORCH_BYTES_TP_MULTI = int(0.60 * GIB)
GRAPH_BYTES = int(0.5 * GIB)

# Hybrid models: vLLM sets the attention block to 16 x cdiv(state page, 16 x attention bytes per token)
# so that one attention page holds one layer's state, and pads each state page to the attention page
# (vllm/model_executor/models/config.py HybridAttentionMambaModelConfig; 16 is the block alignment the
# attention kernels take). Startup logs agree: Qwen3.5-9B 528, Qwen3.5-0.8B 544 tokens.
HYBRID_BLOCK_ALIGNMENT = 16

CONTEXT_STEP = 256  # max_context answers are multiples of vLLM's usual block-aligned granularity


@dataclass(frozen=True)
class MemoryEstimate:
    """What one partition (one tensor-parallel rank) must hold. All sizes in bytes."""

    model_id: str
    precision: Precision
    tensor_parallel: int
    max_model_len: int
    concurrency: int
    kv_cache_dtype: str
    max_num_batched_tokens: int
    weights_bytes: int
    kv_bytes_per_token: int
    kv_cache_bytes: int
    activation_bytes: int
    overhead_bytes: int
    gpu_memory_utilization: float = GPU_MEMORY_UTILIZATION
    dtype: str = "auto"  # vLLM --dtype: activations/16-bit weights (auto = the checkpoint's)
    checkpoint_quantization: str = ""  # vLLM --quantization of a pre-quantized checkpoint ("" = none)
    state_bytes_per_sequence: int = 0  # hybrid models: the fixed state of one sequence (per rank)
    state_cache_bytes: int = 0  # that state for every sized sequence (in vLLM's KV cache pool)
    weights_source: str = "computed"  # "computed" from the config's shapes, or "checkpoint" (exact bytes)

    @property
    def total_bytes(self) -> int:
        return (self.weights_bytes + self.kv_cache_bytes + self.state_cache_bytes + self.activation_bytes
                + self.overhead_bytes)

    @property
    def required_partition_bytes(self) -> int:
        """Smallest partition whose usable budget holds ``total_bytes``."""
        return math.ceil(self.total_bytes / self.gpu_memory_utilization)

    def fits(self, partition_bytes: int) -> bool:
        return self.total_bytes <= usable_bytes(partition_bytes, self.gpu_memory_utilization)

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["precision"] = self.precision.value
        out["total_bytes"] = self.total_bytes
        out["required_partition_bytes"] = self.required_partition_bytes
        return out


def format_gib(n: int) -> str:
    """'24 GiB' for whole sizes, '42.7 GiB' otherwise (MI300A TPX partitions are 128/3 GiB)."""
    gib = n / GIB
    return f"{gib:.0f} GiB" if abs(gib - round(gib)) < 0.05 else f"{gib:.1f} GiB"


def usable_bytes(partition_bytes: int, utilization: float = GPU_MEMORY_UTILIZATION) -> int:
    return int(partition_bytes * utilization)


def default_context(model: ModelArch) -> int:
    return min(model.max_context, DEFAULT_CONTEXT_CAP)


def _check_tensor_parallel(model: ModelArch, tp: int) -> None:
    """vLLM's rule: heads split evenly; KV heads split evenly or replicated."""
    if tp < 1:
        raise SizingError(f"tensor-parallel size must be >= 1, got {tp}")
    if model.num_attention_heads % tp:
        raise SizingError(
            f"{model.id} cannot run with tensor-parallel size {tp}: "
            f"{model.num_attention_heads} attention heads do not divide by {tp}"
        )
    if model.attention != "mla" and model.num_kv_heads % tp and tp % model.num_kv_heads:
        raise SizingError(
            f"{model.id} cannot run with tensor-parallel size {tp}: "
            f"{model.num_kv_heads} KV heads neither divide by nor divide {tp}"
        )


def uses_exact_weights(model: ModelArch, precision: Precision) -> bool:
    """Whether the checkpoint's recorded bytes are what vLLM loads at ``precision``: the checkpoint's
    own format (its declared quantization, or 16 bit for a 16-bit checkpoint). A 16-bit checkpoint
    served at fp8/int8/int4 is quantized on load, and a float32 checkpoint is cast to 16 bit: there
    the computed layout applies."""
    if model.exact_weights_bytes is None:
        return False
    declared = declared_precision(model)
    if declared is not None:
        return declared == precision
    return not precision.is_quantized and model.checkpoint_dtype in ("bfloat16", "float16")


def weights_bytes(model: ModelArch, precision: Precision, tensor_parallel: int = 1) -> int:
    """Resident weight bytes per rank: MoE keeps every expert; quantized formats keep embeddings and
    lm_head in 16 bit (kserve-aim-sizing.md 4.2). A pre-quantized checkpoint holds its declared
    format's own layout (``ModelArch.quantization``). Exact bytes read from the checkpoint's
    safetensors win where they apply (``uses_exact_weights``)."""
    if model.exact_weights_bytes is not None and uses_exact_weights(model, precision):
        return math.ceil(model.exact_weights_bytes / tensor_parallel)
    if model.quantization is not None:
        check_declared_precision(model, precision)
        return math.ceil(model.quantization.total_bytes / tensor_parallel)
    embedding = model.embedding_params_resident
    body = model.params_total - embedding
    if precision.is_quantized:
        total = body * BODY_BYTES_PER_PARAM[precision] + embedding * EMBEDDING_BYTES_PER_PARAM
    else:
        total = model.params_total * BODY_BYTES_PER_PARAM[precision]
    return math.ceil(total / tensor_parallel)


def declared_precision(model: ModelArch) -> Precision | None:
    """The precision a pre-quantized checkpoint declares (None for a 16-bit checkpoint)."""
    return model.quantization.scheme.precision if model.quantization is not None else None


def check_declared_precision(model: ModelArch, precision: Precision) -> None:
    """SizingError naming both when ``precision`` contradicts the checkpoint's own quantization."""
    declared = declared_precision(model)
    if declared is not None and declared != precision and model.quantization is not None:
        raise SizingError(
            f"{model.id} is a pre-quantized {model.quantization.scheme.label} checkpoint ({declared.value}); "
            f"precision {precision.value} contradicts it (omit --precision or give {declared.value})")


def kv_bytes_per_token_per_layer(model: ModelArch, kv_cache_dtype: str, tensor_parallel: int = 1) -> int:
    element = kv_element_bytes(kv_cache_dtype)
    if model.mla is not None:  # one compressed latent + rope key per layer, replicated on every rank
        # (+ DeepSeek-V3.2's indexer key, kept in its own fp8 layout whatever the KV dtype)
        return (model.mla.kv_lora_rank + model.mla.qk_rope_head_dim) * element + model.index_key_bytes
    heads_per_rank = max(1, model.num_kv_heads // tensor_parallel)
    return 2 * heads_per_rank * model.head_dim * element


def kv_bytes_per_token(model: ModelArch, kv_cache_dtype: str = "auto", tensor_parallel: int = 1) -> int:
    """2 x layers x kv_heads x head_dim x bytes (per rank), counting every layer with a KV cache
    (all of them, except the state-holding layers of hybrid models)."""
    return model.kv_layers * kv_bytes_per_token_per_layer(model, kv_cache_dtype, tensor_parallel)


def kv_cache_bytes(model: ModelArch, tokens: int, sequences: int, kv_cache_dtype: str = "auto",
                   tensor_parallel: int = 1) -> int:
    """KV for ``sequences`` sequences of ``tokens`` each; sliding-window layers hold only the window.
    A hybrid model's attention layers hold whole blocks of ``hybrid_block_tokens``."""
    per_layer = kv_bytes_per_token_per_layer(model, kv_cache_dtype, tensor_parallel)
    block = hybrid_block_tokens(model, kv_cache_dtype, tensor_parallel)
    if block:
        tokens = math.ceil(tokens / block) * block
    if model.attention == "sliding_mix" and model.sliding_window and model.num_global_layers is not None:
        local_layers = model.kv_layers - model.num_global_layers
        per_sequence = per_layer * (model.num_global_layers * tokens + local_layers * min(tokens, model.sliding_window))
    else:
        per_sequence = per_layer * model.kv_layers * tokens
    return (per_sequence + cross_attention_bytes(model, kv_cache_dtype, tensor_parallel)) * sequences


def cross_attention_bytes(model: ModelArch, kv_cache_dtype: str = "auto", tensor_parallel: int = 1) -> int:
    """The image keys/values one sequence's cross-attention layers cache (mllama), per rank: fixed by
    the image tokens, whatever the text length (0 for a model without cross-attention layers)."""
    if not model.cross_attention_layers:
        return 0
    heads_per_rank = max(1, model.num_kv_heads // tensor_parallel)
    per_token = 2 * heads_per_rank * model.head_dim * kv_element_bytes(kv_cache_dtype)
    return model.cross_attention_layers * model.cross_attention_tokens * per_token


def state_bytes_per_sequence(model: ModelArch, tensor_parallel: int = 1) -> int:
    """The fixed state one sequence holds in a hybrid model's Mamba / gated-delta-net / short-conv
    layers, per rank (0 for a model without such layers). It does not grow with the context."""
    state = model.recurrent_state
    return 0 if state is None else state.bytes_per_sequence(tensor_parallel)


def state_page_bytes(model: ModelArch, tensor_parallel: int = 1) -> int:
    """One state-holding layer's state for one sequence, per rank (vLLM's mamba page before padding)."""
    state = model.recurrent_state
    if state is None or not state.layers:
        return 0
    return math.ceil(state.bytes_per_sequence(tensor_parallel) / state.layers)


def hybrid_block_tokens(model: ModelArch, kv_cache_dtype: str = "auto", tensor_parallel: int = 1) -> int:
    """Tokens per attention block vLLM sets for a hybrid model so that one attention page holds one
    layer's state (0 for a model without state or without attention layers)."""
    page = state_page_bytes(model, tensor_parallel)
    if not page or not model.kv_layers:
        return 0
    per_token = kv_bytes_per_token_per_layer(model, kv_cache_dtype, tensor_parallel)
    return HYBRID_BLOCK_ALIGNMENT * math.ceil(page / (HYBRID_BLOCK_ALIGNMENT * per_token))


def state_cache_bytes(model: ModelArch, sequences: int, kv_cache_dtype: str = "auto", tensor_parallel: int = 1) -> int:
    """The state of ``sequences`` concurrent sequences. vLLM keeps one state page per running request
    in each state-holding layer (V1 ``MambaSpec``, one block per request without prefix caching), in
    the same pool as the KV cache, each page padded to the attention page (``hybrid_block_tokens``
    tokens of one attention layer's KV): every sized sequence holds one state beside its KV."""
    block = hybrid_block_tokens(model, kv_cache_dtype, tensor_parallel)
    if not block:
        return state_bytes_per_sequence(model, tensor_parallel) * sequences
    page = block * kv_bytes_per_token_per_layer(model, kv_cache_dtype, tensor_parallel)
    layers = model.recurrent_state.layers if model.recurrent_state is not None else 0
    return page * layers * sequences


def activation_bytes(model: ModelArch, max_num_batched_tokens: int) -> int:
    ref = ACTIVATION_MOE_BYTES_AT_REF if model.is_moe else ACTIVATION_DENSE_BYTES_AT_REF
    return math.ceil(ref * max_num_batched_tokens / ACTIVATION_REF_TOKENS)


def overhead_bytes(tensor_parallel: int) -> int:
    return (NON_TORCH_BYTES_TP1 if tensor_parallel == 1 else NON_TORCH_BYTES_TP_MULTI) + GRAPH_BYTES


def serving_dtype(model: ModelArch, precision: Precision) -> str:
    """vLLM ``--dtype``; fp16 becomes bfloat16 where vLLM refuses float16 (same bytes per weight)."""
    if precision == Precision.FP16:
        return "float16" if model.float16_supported else "bfloat16"
    return "bfloat16" if precision == Precision.BF16 else "auto"


def estimate(model: ModelArch, precision: Precision | str, *, tensor_parallel: int = 1,
             max_model_len: int | None = None, concurrency: int = DEFAULT_CONCURRENCY,
             kv_cache_dtype: str = "auto", max_num_batched_tokens: int | None = None) -> MemoryEstimate:
    """Bytes one partition must hold to serve ``model`` at ``precision`` (see module doc)."""
    prec = parse_precision(precision)
    _check_tensor_parallel(model, tensor_parallel)
    context = default_context(model) if max_model_len is None else max_model_len
    if context < 1:
        raise SizingError(f"max-model-len must be >= 1, got {context}")
    if context > model.max_context:
        raise SizingError(f"max-model-len {context} exceeds {model.id}'s maximum context of {model.max_context} tokens")
    if concurrency < 1:
        raise SizingError(f"concurrency must be >= 1, got {concurrency}")
    batched = DEFAULT_MAX_NUM_BATCHED_TOKENS if max_num_batched_tokens is None else max_num_batched_tokens
    if batched < 1:
        raise SizingError(f"max-num-batched-tokens must be >= 1, got {batched}")
    kv_dtype = kv_cache_dtype.strip().lower()
    check_declared_precision(model, prec)
    return MemoryEstimate(
        dtype=serving_dtype(model, prec), model_id=model.id, precision=prec, tensor_parallel=tensor_parallel,
        max_model_len=context,
        concurrency=concurrency, kv_cache_dtype=kv_dtype, max_num_batched_tokens=batched,
        weights_bytes=weights_bytes(model, prec, tensor_parallel),
        kv_bytes_per_token=kv_bytes_per_token(model, kv_dtype, tensor_parallel),
        kv_cache_bytes=kv_cache_bytes(model, context, concurrency, kv_dtype, tensor_parallel),
        activation_bytes=activation_bytes(model, batched),
        overhead_bytes=overhead_bytes(tensor_parallel),
        checkpoint_quantization=model.quantization.scheme.method if model.quantization is not None else "",
        state_bytes_per_sequence=state_bytes_per_sequence(model, tensor_parallel),
        state_cache_bytes=state_cache_bytes(model, concurrency, kv_dtype, tensor_parallel),
        weights_source="checkpoint" if uses_exact_weights(model, prec) else "computed",
    )


def max_context(model: ModelArch, precision: Precision | str, partition_bytes: int, *,
                tensor_parallel: int = 1, concurrency: int = DEFAULT_CONCURRENCY,
                kv_cache_dtype: str = "auto", max_num_batched_tokens: int | None = None) -> int:
    """Largest max_model_len (multiple of 256, or the model's own maximum) that fits; 0 if none."""
    def fits(tokens: int) -> bool:
        return estimate(model, precision, tensor_parallel=tensor_parallel, max_model_len=tokens,
                        concurrency=concurrency, kv_cache_dtype=kv_cache_dtype,
                        max_num_batched_tokens=max_num_batched_tokens).fits(partition_bytes)

    if fits(model.max_context):
        return model.max_context
    lo, hi = 0, model.max_context // CONTEXT_STEP  # invariant: lo*STEP fits (or lo == 0), hi*STEP does not
    if fits(hi * CONTEXT_STEP):
        return hi * CONTEXT_STEP
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid * CONTEXT_STEP):
            lo = mid
        else:
            hi = mid
    return lo * CONTEXT_STEP


@dataclass(frozen=True)
class FitResult:
    mode: PartitionMode
    fits: bool
    max_context: int
    headroom_bytes: int  # usable budget minus total need (negative when it does not fit)

    def to_dict(self) -> dict[str, object]:
        return {
            "product": self.mode.product, "compute_mode": self.mode.compute_mode,
            "memory_mode": self.mode.memory_mode, "partitions_per_gpu": self.mode.partitions,
            "partition_bytes": self.mode.memory_bytes, "status": self.mode.status,
            "fits": self.fits, "max_context": self.max_context, "headroom_bytes": self.headroom_bytes,
        }


def fit_table(model: ModelArch, precision: Precision | str, geometry: Geometry, *,
              tensor_parallel: int = 1, max_model_len: int | None = None,
              concurrency: int = DEFAULT_CONCURRENCY, kv_cache_dtype: str = "auto") -> tuple[FitResult, ...]:
    need = estimate(model, precision, tensor_parallel=tensor_parallel, max_model_len=max_model_len,
                    concurrency=concurrency, kv_cache_dtype=kv_cache_dtype)
    rows = []
    for mode in geometry.partition_modes():
        ctx = max_context(model, precision, mode.memory_bytes, tensor_parallel=tensor_parallel,
                          concurrency=concurrency, kv_cache_dtype=kv_cache_dtype)
        rows.append(FitResult(mode, need.fits(mode.memory_bytes), ctx,
                              usable_bytes(mode.memory_bytes) - need.total_bytes))
    return tuple(rows)


def engine_args(need: MemoryEstimate, partition_bytes: int) -> dict[str, str | int | float]:
    """vLLM engine arguments that start the sized model on a partition of ``partition_bytes``.

    ``max-model-len`` is the context that was sized, never more; ``max-num-batched-tokens`` is the
    value the activation peak was sized for. Raises SizingError if the need does not fit.
    """
    if not need.fits(partition_bytes):
        raise SizingError(
            f"{need.model_id} at {need.precision.value} needs {need.total_bytes / GIB:.1f} GiB per partition, "
            f"more than the {usable_bytes(partition_bytes) / GIB:.1f} GiB usable on a "
            f"{partition_bytes / GIB:.0f} GiB partition"
        )
    args: dict[str, str | int | float] = {
        "dtype": need.dtype,
        "tensor-parallel-size": need.tensor_parallel,
        "max-model-len": need.max_model_len,
        "max-num-batched-tokens": need.max_num_batched_tokens,
        "max-num-seqs": DEFAULT_MAX_NUM_SEQS,
        "gpu-memory-utilization": need.gpu_memory_utilization,
        "kv-cache-dtype": need.kv_cache_dtype,
    }
    # fp8: vLLM quantizes a 16-bit checkpoint on load. int8/int4 expect a pre-quantized
    # compressed-tensors checkpoint (W8A8 / W4A16 group 128, as llm-compressor writes them).
    quantization = {Precision.FP8: "fp8", Precision.INT8: "compressed-tensors", Precision.INT4: "compressed-tensors"}
    if need.checkpoint_quantization:  # a pre-quantized checkpoint: vLLM loads its declared method
        args["quantization"] = need.checkpoint_quantization
    elif need.precision in quantization:
        args["quantization"] = quantization[need.precision]
    return dict(sorted(args.items()))


@lru_cache(maxsize=4096)
def cached_estimate(model: ModelArch, precision: Precision, tensor_parallel: int,
                    max_model_len: int | None, concurrency: int, kv_cache_dtype: str) -> MemoryEstimate:
    """``estimate`` memoised on its (hashable) arguments, for the scheduling hot path."""
    return estimate(model, precision, tensor_parallel=tensor_parallel, max_model_len=max_model_len,
                    concurrency=concurrency, kv_cache_dtype=kv_cache_dtype)
