"""`aim-sizing estimate --config` on pre-quantized checkpoints: declared format without --precision,
contradicting --precision refused naming both, the byte breakdown and the ROCm note in both formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sizing.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "configs"


def test_table_names_the_quantization_and_splits_the_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "--config", str(CONFIGS / "mistral-7b-awq.json")]) == 0
    out = capsys.readouterr().out
    assert "at int4" in out and "awq int4 group 128 zero points (declared in config.json)" in out
    for part in ("quantized weights", "scales + zeros", "16-bit modules"):
        assert part in out
    assert "awq: served by vLLM on ROCm; through Triton AWQ kernels" in out


def test_json_breakdown_adds_up_to_the_weights(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "--config", str(CONFIGS / "gpt-oss-20b.mxfp4-composed.json"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    q = doc["quantization"]
    assert q["method"] == "mxfp4" and "served by vLLM on ROCm" in q["rocm"]
    assert q["quantized_bytes"] + q["scale_bytes"] + q["unquantized_bytes"] == q["total_bytes"] == doc["weights_bytes"]


def test_contradicting_precision_exits_2_naming_both(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["estimate", "--config", str(CONFIGS / "qwen1.5-moe-a2.7b-bnb-nf4.json"), "--precision", "fp8"])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert "bitsandbytes nf4" in err and "fp8" in err and "int4" in err


def test_rocm_table_names_products_that_do_not_serve_a_method() -> None:
    from sizing.errors import DataFileError
    from sizing.rocm_support import load_support, support_line

    doc = {"schema_version": 1, "data_version": "t", "sources": {"s": "a source"},
           "methods": {"gptq": {"status": "served", "source": "s", "products": {"MI300A": "not_served"}},
                       "awq": {"status": "not_served", "source": "s"}}}
    table = load_support(doc)
    assert support_line("gptq", table) == ("gptq: served by vLLM on ROCm, but NOT on MI300A (sized anyway); "
                                           "source: a source")
    assert support_line("awq", table).startswith("awq: NOT served by vLLM on ROCm (sized anyway)")
    with pytest.raises(DataFileError, match="status"):
        load_support({**doc, "methods": {"awq": {"status": "maybe", "source": "s"}}})
