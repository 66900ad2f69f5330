"""Numeric precisions a model can be served in, and what each costs per parameter."""

from __future__ import annotations

from enum import Enum

from sizing.errors import SizingError


class Precision(str, Enum):
    FP16 = "fp16"
    BF16 = "bf16"
    FP8 = "fp8"
    INT8 = "int8"
    INT4 = "int4"

    def __str__(self) -> str:
        return self.value

    @property
    def bits(self) -> int:
        return {"fp16": 16, "bf16": 16, "fp8": 8, "int8": 8, "int4": 4}[self.value]

    @property
    def is_quantized(self) -> bool:
        return self in (Precision.FP8, Precision.INT8, Precision.INT4)


# The three precisions every model gets an AIM profile for (issue #2: 38 models x fp16/int8/int4).
PROFILE_PRECISIONS: tuple[Precision, ...] = (Precision.FP16, Precision.INT8, Precision.INT4)

_ALIASES: dict[str, Precision] = {
    "fp16": Precision.FP16, "float16": Precision.FP16, "half": Precision.FP16, "f16": Precision.FP16,
    "bf16": Precision.BF16, "bfloat16": Precision.BF16,
    "fp8": Precision.FP8, "float8": Precision.FP8, "f8": Precision.FP8,
    "int8": Precision.INT8, "w8a8": Precision.INT8, "i8": Precision.INT8,
    "int4": Precision.INT4, "w4a16": Precision.INT4, "i4": Precision.INT4,
}


def parse_precision(text: str | Precision) -> Precision:
    """Return the Precision for ``text`` (case-insensitive, common aliases accepted)."""
    if isinstance(text, Precision):
        return text
    found = _ALIASES.get(str(text).strip().lower())
    if found is None:
        choices = ", ".join(p.value for p in Precision)
        raise SizingError(f"unknown precision {text!r}: expected one of {choices}")
    return found


# Bytes per weight of the quantized body of the model (embeddings and lm_head stay 16-bit).
# int4 is W4A16 with one fp16 scale per group of 128 weights: 0.5 + 2/128 bytes
# (llm-compressor / GPTQ group_size 128; kserve-aim-sizing.md section 4.2, "+0.016 B/param").
INT4_GROUP_SIZE = 128
BODY_BYTES_PER_PARAM: dict[Precision, float] = {
    Precision.FP16: 2.0,
    Precision.BF16: 2.0,
    Precision.FP8: 1.0,
    Precision.INT8: 1.0,
    Precision.INT4: 0.5 + 2.0 / INT4_GROUP_SIZE,
}
EMBEDDING_BYTES_PER_PARAM = 2.0  # quantized checkpoints keep embeddings/lm_head in bf16 (reference 4.2)

KV_CACHE_DTYPES: dict[str, int] = {"auto": 2, "fp8": 1}  # bytes per KV element (auto = model dtype, 16-bit)


def kv_element_bytes(kv_cache_dtype: str) -> int:
    try:
        return KV_CACHE_DTYPES[kv_cache_dtype.strip().lower()]
    except KeyError:
        raise SizingError(
            f"unknown kv-cache dtype {kv_cache_dtype!r}: expected one of {', '.join(KV_CACHE_DTYPES)}"
        ) from None
