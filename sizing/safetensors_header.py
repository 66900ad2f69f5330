"""Exact weight bytes of a checkpoint from its safetensors metadata (pure: bytes in, numbers out).

A safetensors file starts with an 8-byte little-endian header length ``N`` and ``N`` bytes of JSON:
``{"<tensor>": {"dtype": "BF16", "shape": [4096, 4096], "data_offsets": [begin, end]}, ...,
"__metadata__": {...}}`` (huggingface/safetensors, format description). A sharded checkpoint also
ships ``model.safetensors.index.json`` whose ``metadata.total_size`` is the bytes of every tensor.
The shell (``aim-sizing models add --weights``) reads at most the header of each file; everything
here checks bounds before any work and raises ``SizingError`` naming the file and the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from sizing.errors import SizingError

HEADER_LENGTH_BYTES = 8
# The safetensors library refuses headers over 100 MB (MAX_HEADER_SIZE in its Rust crate); the largest
# published shards have headers of a few MB (thousands of tensors). Same bound here.
MAX_HEADER_BYTES = 100_000_000
# model.safetensors.index.json lists every tensor's shard: about 10 MB for the largest MoE checkpoints.
MAX_INDEX_BYTES = 64 << 20
MAX_TOTAL_BYTES = 1 << 50  # 1 PiB: far above any checkpoint (DeepSeek-V3 is ~0.7 TB)
MAX_TENSOR_NAME = 1024
MAX_DIMS = 8

# Bits per element of every dtype the safetensors format defines.
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "F8_E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "I64": 64, "U64": 64,
    "F64": 64, "C64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}


@dataclass(frozen=True)
class WeightsSummary:
    """What the checkpoint's metadata says about its weights."""

    total_bytes: int
    tensors: int = 0  # 0 when only an index's total_size was read
    files: int = 1
    source: str = ""  # how it was read, for the entry's record

    def __add__(self, other: WeightsSummary) -> WeightsSummary:
        return WeightsSummary(self.total_bytes + other.total_bytes, self.tensors + other.tensors,
                              self.files + other.files, self.source or other.source)


def _error(name: str, field: str, problem: str) -> SizingError:
    return SizingError(f"{name}: {field} {problem}")


def header_length(prefix: bytes, file_size: int, name: str) -> int:
    """The JSON header length from a file's first 8 bytes, bounded by the format and the file's size."""
    if len(prefix) < HEADER_LENGTH_BYTES:
        raise _error(name, "header length", f"needs {HEADER_LENGTH_BYTES} bytes, the file has {len(prefix)}")
    length = int.from_bytes(prefix[:HEADER_LENGTH_BYTES], "little")
    if length < 2:
        raise _error(name, "header length", f"is {length}: too short for a JSON object")
    if length > MAX_HEADER_BYTES:
        raise _error(name, "header length", f"is {length} bytes, more than the format's {MAX_HEADER_BYTES}")
    if HEADER_LENGTH_BYTES + length > file_size:
        raise _error(name, "header length", f"is {length} bytes, more than the file holds ({file_size} bytes)")
    return length


def _json_object(raw: bytes, name: str, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _error(name, what, f"is not valid JSON ({str(exc).splitlines()[0][:80]})") from None
    if not isinstance(doc, dict):
        raise _error(name, what, f"must be a JSON object, not {type(doc).__name__}")
    return doc


def _int(value: object, name: str, field: str, maximum: int = MAX_TOTAL_BYTES) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _error(name, field, f"must be an integer, not {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise _error(name, field, f"must be between 0 and {maximum}, got {value}")
    return value


def parse_header(raw: bytes, name: str, data_bytes: int | None = None) -> WeightsSummary:
    """Bytes and count of the tensors a header describes. Every tensor's dtype, shape and offsets are
    checked: the offsets must span exactly ``numel x dtype size`` and, when ``data_bytes`` (the file
    size after the header) is given, lie inside the file."""
    if len(raw) > MAX_HEADER_BYTES:
        raise _error(name, "header", f"is larger than {MAX_HEADER_BYTES} bytes")
    doc = _json_object(raw, name, "header")
    total = tensors = 0
    for tensor, info in doc.items():
        if tensor == "__metadata__":
            if not isinstance(info, dict):
                raise _error(name, "__metadata__", "must be an object of strings")
            continue
        label = tensor if len(tensor) <= 80 else tensor[:80] + "…"
        if len(tensor) > MAX_TENSOR_NAME:
            raise _error(name, f"tensor {label!r}", f"has a name longer than {MAX_TENSOR_NAME} characters")
        if not isinstance(info, dict):
            raise _error(name, f"tensor {label!r}", "must be an object with dtype, shape and data_offsets")
        dtype = info.get("dtype")
        if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
            shown = dtype[:20] if isinstance(dtype, str) else type(dtype).__name__
            raise _error(name, f"tensor {label!r} dtype", f"{shown!r} is not a safetensors dtype")
        shape = info.get("shape")
        if not isinstance(shape, list) or len(shape) > MAX_DIMS:
            raise _error(name, f"tensor {label!r} shape", f"must be a list of at most {MAX_DIMS} sizes")
        numel = 1
        for dim in shape:
            numel *= _int(dim, name, f"tensor {label!r} shape", maximum=MAX_TOTAL_BYTES)
            if numel > MAX_TOTAL_BYTES * 8:
                raise _error(name, f"tensor {label!r} shape", "describes more elements than any checkpoint holds")
        offsets = info.get("data_offsets")
        if not isinstance(offsets, list) or len(offsets) != 2:
            raise _error(name, f"tensor {label!r} data_offsets", "must be [begin, end]")
        begin, end = (_int(o, name, f"tensor {label!r} data_offsets") for o in offsets)
        size = math.ceil(numel * DTYPE_BITS[dtype] / 8)
        if end - begin != size:
            raise _error(name, f"tensor {label!r} data_offsets",
                         f"span {end - begin} bytes, but {dtype} {shape} needs {size}")
        if data_bytes is not None and end > data_bytes:
            raise _error(name, f"tensor {label!r} data_offsets",
                         f"end at {end}, past the file's {data_bytes} data bytes")
        total += size
        tensors += 1
    if total > MAX_TOTAL_BYTES:
        raise _error(name, "header", f"describes {total} bytes, more than {MAX_TOTAL_BYTES}")
    return WeightsSummary(total, tensors, 1, "safetensors headers")


def parse_index(raw: bytes, name: str) -> WeightsSummary:
    """``metadata.total_size`` of a ``model.safetensors.index.json``: the bytes of every tensor."""
    if len(raw) > MAX_INDEX_BYTES:
        raise _error(name, "index", f"is larger than {MAX_INDEX_BYTES} bytes")
    doc = _json_object(raw, name, "index")
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or "total_size" not in metadata:
        raise _error(name, "metadata.total_size", "is missing")
    raw_total = metadata["total_size"]
    if isinstance(raw_total, float) and raw_total.is_integer() and 0 < raw_total <= MAX_TOTAL_BYTES:
        raw_total = int(raw_total)  # some converters write the total as a JSON float (16060522496.0)
    total = _int(raw_total, name, "metadata.total_size")
    if total == 0:
        raise _error(name, "metadata.total_size", "is 0: no weights")
    shards = doc.get("weight_map")
    files = len({v for v in shards.values() if isinstance(v, str)}) if isinstance(shards, dict) else 0
    return WeightsSummary(total, 0, files, "model.safetensors.index.json metadata.total_size")
