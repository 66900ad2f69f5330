"""Exact weights from the checkpoint itself: ``aim-sizing models add --weights`` reads a
model.safetensors.index.json or the safetensors headers, records the bytes, and the estimate uses them.

The safetensors files here are real ones, written byte for byte as the format describes (8-byte
little-endian header length, JSON header, then the tensor data), so the tests need no extra package.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import pytest

import sizing
from sizing import SizingError
from sizing.cli import main
from sizing.models_dir import parse_entry
from sizing.safetensors_header import DTYPE_BITS, MAX_HEADER_BYTES, header_length, parse_header, parse_index

CONFIGS = Path(__file__).resolve().parents[1] / "fixtures" / "configs"
LFM2 = CONFIGS / "lfm2-1.2b.json"

TENSORS: dict[str, tuple[str, list[int]]] = {
    "model.embed_tokens.weight": ("BF16", [64, 32]),
    "model.layers.0.self_attn.q_proj.weight": ("BF16", [32, 32]),
    "model.layers.0.mlp.experts.0.w1.weight_packed": ("U8", [16, 16]),
    "model.layers.0.mlp.experts.0.w1.weight_scale": ("F32", [16, 1]),
    "model.layers.0.router.weight": ("F8_E4M3", [3, 32]),
    "model.layers.0.mx.blocks": ("F4", [5, 3]),  # 15 values of 4 bits: 8 bytes
    "model.norm.weight": ("F16", [32]),
}


def tensor_bytes(dtype: str, shape: list[int]) -> int:
    return math.ceil(math.prod(shape) * DTYPE_BITS[dtype] / 8)


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]], metadata: dict[str, str] | None = None) -> bytes:
    """A complete safetensors file: header length, JSON header (offsets in order), zeroed tensor data."""
    header: dict[str, Any] = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = tensor_bytes(dtype, shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header to 8-byte alignment with spaces
    return struct.pack("<Q", len(text)) + text + bytes(offset)


def raw_file(header: bytes | str, data: bytes = b"", length: int | None = None) -> bytes:
    body = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(body) if length is None else length) + body + data


def add(capsys: pytest.CaptureFixture[str], out: Path, weights: Path, config: Path = LFM2,
        model_id: str = "LiquidAI/LFM2-1.2B") -> tuple[int, str, str]:
    try:
        code = main(["models", "add", "--config", str(config), "--id", model_id, "--source", "test",
                     "--out", str(out), "--weights", str(weights)])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    o, e = capsys.readouterr()
    return code, o, e


def test_recorded_total_is_the_sum_of_the_tensor_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shard = tmp_path / "model.safetensors"
    shard.write_bytes(safetensors_bytes(TENSORS))
    expected = sum(tensor_bytes(d, s) for d, s in TENSORS.values())
    assert expected == 64 * 32 * 2 + 32 * 32 * 2 + 256 + 64 + 96 + 8 + 64
    code, out, err = add(capsys, tmp_path / "models", shard)
    assert (code, err) == (0, "")
    assert f"weights {expected} bytes" in out
    doc = json.loads((tmp_path / "models" / "LiquidAI--LFM2-1.2B.json").read_text())
    assert doc["weights"] == {"total_bytes": expected, "from": "safetensors headers"}


def test_the_estimate_uses_the_recorded_bytes_where_they_are_what_vllm_loads(tmp_path: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    shard = tmp_path / "model.safetensors"
    shard.write_bytes(safetensors_bytes(TENSORS))
    assert add(capsys, tmp_path / "models", shard)[0] == 0
    entry = tmp_path / "models" / "LiquidAI--LFM2-1.2B.json"
    model = parse_entry(entry.read_bytes(), entry.name)
    exact = sum(tensor_bytes(d, s) for d, s in TENSORS.values())
    assert model.exact_weights_bytes == exact
    bf16 = sizing.estimate(model, "bf16")
    assert (bf16.weights_bytes, bf16.weights_source) == (exact, "checkpoint")
    assert sizing.estimate(model, "bf16", tensor_parallel=2).weights_bytes == math.ceil(exact / 2)
    # fp8 of a 16-bit checkpoint is quantized on load: the computed layout, not the file's bytes
    fp8 = sizing.estimate(model, "fp8")
    assert fp8.weights_source == "computed" and fp8.weights_bytes > 10**9
    # and without --weights the entry sizes from the config's shapes
    computed = sizing.estimate(sizing.model_from_hf_config(json.loads(LFM2.read_text())), "bf16")
    assert computed.weights_bytes == 2 * 1_170_340_608 and computed.weights_source == "computed"


def test_every_shard_of_a_directory_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    first = dict(list(TENSORS.items())[:3])
    second = dict(list(TENSORS.items())[3:])
    (ckpt / "model-00001-of-00002.safetensors").write_bytes(safetensors_bytes(first))
    (ckpt / "model-00002-of-00002.safetensors").write_bytes(safetensors_bytes(second))
    code, out, _ = add(capsys, tmp_path / "models", ckpt)
    assert code == 0 and "(2 file(s))" in out
    doc = json.loads((tmp_path / "models" / "LiquidAI--LFM2-1.2B.json").read_text())
    assert doc["weights"]["total_bytes"] == sum(tensor_bytes(d, s) for d, s in TENSORS.values())


def test_an_index_total_size_wins_in_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    index = {"metadata": {"total_size": 2340825088},
             "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                            "lm_head.weight": "model-00002-of-00002.safetensors"}}
    (ckpt / "model.safetensors.index.json").write_text(json.dumps(index))
    code, out, _ = add(capsys, tmp_path / "models", ckpt)
    assert code == 0 and "metadata.total_size (2 file(s))" in out
    doc = json.loads((tmp_path / "models" / "LiquidAI--LFM2-1.2B.json").read_text())
    assert doc["weights"] == {"total_bytes": 2340825088, "from": "model.safetensors.index.json metadata.total_size"}


@pytest.mark.parametrize(("content", "message"), [
    (raw_file("{}", length=1 << 40), "header length is 1099511627776 bytes, more than the format's 100000000"),
    (raw_file("{}", length=4096), "header length is 4096 bytes, more than the file holds"),
    (b"\x01\x00", "header length needs 8 bytes, the file has 2"),
    (raw_file("[1, 2]"), "header must be a JSON object, not list"),
    (raw_file("{\"a\": "), "header is not valid JSON"),
    (raw_file("[" * 100000 + "]" * 100000), "header is not valid JSON"),
    (raw_file(b"\xff\xfe{}"), "header is not valid JSON"),
    (raw_file(json.dumps({"w": {"dtype": "Q4_K", "shape": [2], "data_offsets": [0, 4]}}), bytes(4)),
     "tensor 'w' dtype 'Q4_K' is not a safetensors dtype"),
    (raw_file(json.dumps({"w": {"dtype": "F16", "shape": [2, -1], "data_offsets": [0, 4]}}), bytes(4)),
     "tensor 'w' shape must be between 0 and"),
    (raw_file(json.dumps({"w": {"dtype": "F16", "shape": "2x2", "data_offsets": [0, 8]}}), bytes(8)),
     "tensor 'w' shape must be a list of at most 8 sizes"),
    (raw_file(json.dumps({"w": {"dtype": "F16", "shape": [True], "data_offsets": [0, 2]}}), bytes(2)),
     "tensor 'w' shape must be an integer, not bool"),
    (raw_file(json.dumps({"w": {"dtype": "F16", "shape": [4], "data_offsets": [0, 4]}}), bytes(8)),
     "tensor 'w' data_offsets span 4 bytes, but F16 [4] needs 8"),
    (raw_file(json.dumps({"w": {"dtype": "F16", "shape": [4], "data_offsets": [0, 8]}}), bytes(2)),
     "tensor 'w' data_offsets end at 8, past the file's 2 data bytes"),
    (raw_file(json.dumps({"w": {"dtype": "F16", "shape": [10**30], "data_offsets": [0, 8]}})),
     "tensor 'w' shape must be between 0 and"),
    (raw_file(json.dumps({"w": {"dtype": "F16", "shape": [2**40, 2**40], "data_offsets": [0, 8]}})),
     "tensor 'w' shape describes more elements than any checkpoint holds"),
    (raw_file(json.dumps({"w": [1, 2]})), "tensor 'w' must be an object with dtype, shape and data_offsets"),
])
def test_hostile_safetensors_is_one_line_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          content: bytes, message: str) -> None:
    shard = tmp_path / "bad.safetensors"
    shard.write_bytes(content)
    code, out, err = add(capsys, tmp_path / "models", shard)
    assert code == 2 and out == ""
    assert err.startswith("aim-sizing: error: bad.safetensors: ") and message in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "models" / "LiquidAI--LFM2-1.2B.json").exists()


@pytest.mark.parametrize(("index", "message"), [
    ({"weight_map": {}}, "metadata.total_size is missing"),
    ({"metadata": {"total_size": "16 GB"}}, "metadata.total_size must be an integer, not str"),
    ({"metadata": {"total_size": True}}, "metadata.total_size must be an integer, not bool"),
    ({"metadata": {"total_size": -5}}, "metadata.total_size must be between 0 and"),
    ({"metadata": {"total_size": 0}}, "metadata.total_size is 0: no weights"),
    ({"metadata": {"total_size": 10**300}}, "metadata.total_size must be between 0 and"),
    ({"metadata": {"total_size": 7}, "weight_map": {"a": ["x"]}}, None),  # odd weight_map: total still read
    ({"metadata": {"total_size": 16060522496.0}}, None),  # a whole number written as a float
    ({"metadata": {"total_size": 1.5}}, "metadata.total_size must be an integer, not float"),
    ({"metadata": {"total_size": float("inf")}}, "metadata.total_size must be an integer, not float"),
])
def test_hostile_index_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str], index: dict[str, Any],
                                       message: str | None) -> None:
    path = tmp_path / "model.safetensors.index.json"
    path.write_text(json.dumps(index))
    code, _, err = add(capsys, tmp_path / "models", path)
    if message is None:
        assert code == 0
        return
    assert code == 2 and message in err and len(err.splitlines()) == 1, err


def test_a_fifo_or_a_missing_file_is_refused_without_blocking(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    code, _, err = add(capsys, tmp_path / "models", fifo)
    assert code == 2 and "is not a regular file" in err
    code, _, err = add(capsys, tmp_path / "models", tmp_path / "none.safetensors")
    assert code == 2 and "cannot read" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = add(capsys, tmp_path / "models", empty)
    assert code == 2 and "holds neither model.safetensors.index.json nor .safetensors files" in err
    code, _, err = add(capsys, tmp_path / "models", LFM2)
    assert code == 2 and "is not a .safetensors file" in err


def test_the_parsers_bound_before_they_parse() -> None:
    with pytest.raises(SizingError, match="larger than"):
        parse_header(b" " * (MAX_HEADER_BYTES + 1), "x.safetensors")
    with pytest.raises(SizingError, match="larger than"):
        parse_index(b" " * ((64 << 20) + 1), "model.safetensors.index.json")
    assert header_length(struct.pack("<Q", 16), 24, "x") == 16
    summary = parse_header(json.dumps({"a": {"dtype": "BF16", "shape": [], "data_offsets": [0, 2]}}).encode(), "x")
    assert (summary.total_bytes, summary.tensors) == (2, 1)  # a scalar is one element


def test_an_entry_with_a_bad_weights_record_is_refused_naming_it() -> None:
    doc = {"schema": "aim-gpu-sharing/model-entry/v1", "id": "a/b", "source": "s",
           "config": json.loads(LFM2.read_text()), "weights": {"total_bytes": "many"}}
    with pytest.raises(SizingError, match="weights"):
        parse_entry(json.dumps(doc), "a--b.json")
