"""The `aim-sizing` command line, run as a real subprocess (`python -m sizing`) and in-process.

Output numbers are checked against published facts (parameter counts, KV per token, partition
sizes), files against the packaged schemas, and every bad input against exit code 2 with a message
a person can act on.

"reference 4.x" in comments: the public sources listed in tests/sizing/__init__.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import sizing
from sizing import CATALOGUE, GEOMETRY, GIB
from sizing.cli import main

REPO = Path(__file__).resolve().parents[2]
B = 1_000_000_000

# meta-llama/Llama-3.1-8B-Instruct config.json (published values; reference 4.4)
LLAMA_31_8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
    "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1,
    "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                                            "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.42.3", "use_cache": True, "vocab_size": 128256,
}


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "sizing", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=cwd or REPO)


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """sizing.cli.main in-process: (exit code, stdout, stderr)."""
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _schema(name: str) -> dict[str, Any]:
    return json.loads((REPO / "sizing" / "data" / name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- models

def test_models_json_subprocess() -> None:
    proc = run_cli("models", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    models = json.loads(proc.stdout)
    assert len(models) == 38
    assert {m["id"] for m in models} == set(CATALOGUE)
    llama = next(m for m in models if m["id"] == "meta-llama/Llama-3.1-8B-Instruct")
    # config.json facts: 32 layers, 8 kv heads, head_dim 128, 131072 context; 8,030,261,248 params
    assert (llama["num_layers"], llama["num_kv_heads"], llama["head_dim"], llama["max_context"]) == (32, 8, 128, 131072)
    assert llama["params_total"] == 8_030_261_248 and llama["moe"] is False
    mixtral = next(m for m in models if m["id"] == "mistralai/Mixtral-8x7B-Instruct-v0.1")
    assert mixtral["moe"] is True


def test_models_table_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "models")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["model", "params"]
    rows = [line for line in lines[2:] if line and "/" in line.split()[0]]
    assert len(rows) == 38
    assert "38 models" in out
    row = next(line for line in rows if line.startswith("deepseek-ai/DeepSeek-V3 "))
    assert "671.03B" in row and "mla" in row


# --------------------------------------------------------------------------- estimate / fit

ESTIMATE_KEYS = {"weights_bytes", "kv_bytes_per_token", "kv_cache_bytes", "overhead_bytes", "total_bytes"}
FIT_KEYS = {"product", "compute_mode", "memory_mode", "partition_bytes", "fits", "max_context"}


def test_estimate_json_subprocess() -> None:
    proc = run_cli("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--precision", "bf16", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) >= ESTIMATE_KEYS
    assert out["weights_bytes"] == pytest.approx(2 * 8.03 * B, rel=0.01)  # HF card 8.03B at 2 bytes
    assert out["kv_bytes_per_token"] == 128 * 1024  # reference 4.5
    assert out["kv_cache_bytes"] == 8192 * 128 * 1024  # default context 8192
    assert out["total_bytes"] == (out["weights_bytes"] + out["kv_cache_bytes"] + out["activation_bytes"]
                                  + out["overhead_bytes"])
    assert len(out["fits"]) == len(GEOMETRY.partition_modes())
    for row in out["fits"]:
        assert set(row) >= FIT_KEYS, row
        assert row["fits"] == (out["total_bytes"] <= row["partition_bytes"] * 0.9)
    cpx = next(r for r in out["fits"]
               if (r["product"], r["compute_mode"], r["memory_mode"]) == ("MI300X", "CPX", "NPS4"))
    assert cpx["partition_bytes"] == 24 * GIB and cpx["fits"] is True
    assert cpx["max_context"] >= 32768  # reference 4.6: one 32k request fits a CPX partition
    spx = next(r for r in out["fits"] if (r["product"], r["compute_mode"]) == ("MI300X", "SPX"))
    assert spx["max_context"] == 131072


def test_estimate_table_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "estimate", "Qwen3-32B", "--precision", "bf16", "--max-model-len", "4096",
                            "--kv-cache-dtype", "fp8", "--tp", "2")
    assert code == 0
    assert out.startswith("Qwen/Qwen3-32B at bf16, tensor parallel 2, 1 x 4096 tokens, kv-cache fp8")
    # Qwen3-32B: 64 layers x 8 kv heads x 128 / 2 ranks x 1 byte x 2 (K and V) = 65536 B/token
    assert "(65536 B/token)" in out
    assert "MI300X" in out and "CPX" in out


def test_estimate_with_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_dir = tmp_path / "Llama-3.1-8B-Instruct"
    model_dir.mkdir()
    config = model_dir / "config.json"
    config.write_text(json.dumps(LLAMA_31_8B_CONFIG), encoding="utf-8")
    proc = run_cli("estimate", "--config", str(config), "--precision", "fp8", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["model_id"] == "Llama-3.1-8B-Instruct"  # named after the directory
    assert out["kv_bytes_per_token"] == 128 * 1024
    assert out["weights_bytes"] / GIB == pytest.approx(8.46, rel=0.02)  # reference 4.5 fp8 column
    # the same config in-process, with an explicit name
    code, text, _ = run_main(capsys, "estimate", "my-llama", "--config", str(config), "--precision", "fp16")
    assert code == 0 and text.startswith("my-llama at fp16")


def test_fit_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "fit", "mistralai/Mixtral-8x7B-Instruct-v0.1", "--precision", "fp8")
    assert code == 0
    total = len(GEOMETRY.partition_modes())
    fitting = [line for line in out.splitlines() if line.startswith("MI300X ") and " yes " in line]
    not_fitting = [line for line in out.splitlines() if line.startswith("MI300X ") and " no " in line]
    # reference 4.6: Mixtral fp8 does not fit a 48 GiB QPX partition, needs DPX 96 GiB
    assert {line.split()[1] for line in fitting} == {"SPX", "DPX"}
    assert {line.split()[1] for line in not_fitting} == {"QPX", "CPX"}
    assert f"of {total} product/mode combinations" in out


# --------------------------------------------------------------------------- profiles

def test_profiles_generate_is_reproducible_and_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = run_cli("profiles", "generate", "--out", str(tmp_path / "json1"))
    assert first.returncode == 0, first.stderr
    assert "wrote 114 profiles" in first.stdout
    # the second run in-process: same bytes whichever way the CLI is started
    assert run_main(capsys, "profiles", "generate", "--out", str(tmp_path / "json2"))[0] == 0
    h1, h2 = tree_hashes(tmp_path / "json1"), tree_hashes(tmp_path / "json2")
    assert h1 == h2
    profile_files = [k for k in h1 if k.startswith("profiles/")]
    assert len(profile_files) == 114 and all(k.endswith(".json") for k in profile_files)

    # file contents are the library's profiles and satisfy the schemas
    validator = jsonschema.Draft202012Validator(_schema("profile.schema.json"))
    expected = {p.id: p.to_dict() for p in sizing.generate_profiles()}
    for rel in profile_files:
        doc = json.loads((tmp_path / "json1" / rel).read_text(encoding="utf-8"))
        assert not list(validator.iter_errors(doc)), rel
        assert doc == expected[Path(rel).stem]
    aim_validator = jsonschema.Draft202012Validator(_schema("aim-profile.schema.json"))
    aim_files = [k for k in h1 if k.startswith("aim/")]
    assert aim_files
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: 8x faster
    for rel in aim_files[::7]:  # a sample: test_profiles validates every AIM export in memory
        doc = yaml.load((tmp_path / "json1" / rel).read_text(encoding="utf-8"), Loader=loader)
        assert not list(aim_validator.iter_errors(doc)), rel
    index = json.loads((tmp_path / "json1" / "index.json").read_text(encoding="utf-8"))
    assert index["count"] == 114 and len(index["profiles"]) == 114
    assert sorted(f for e in index["profiles"] for f in e["aim_profiles"]) == sorted(aim_files)

    # yaml, in-process, twice
    assert run_main(capsys, "profiles", "generate", "--out", str(tmp_path / "yaml1"), "--format", "yaml")[0] == 0
    assert run_main(capsys, "profiles", "generate", "--out", str(tmp_path / "yaml2"), "--format", "yaml")[0] == 0
    y1, y2 = tree_hashes(tmp_path / "yaml1"), tree_hashes(tmp_path / "yaml2")
    assert y1 == y2
    assert len([k for k in y1 if k.startswith("profiles/") and k.endswith(".yaml")]) == 114
    sample = yaml.safe_load((tmp_path / "yaml1" / "profiles" / "qwen--qwen3-8b--int4.yaml").read_text())
    assert sample == expected["qwen--qwen3-8b--int4"]

    ok = run_cli("profiles", "validate", str(tmp_path / "json1"))
    assert ok.returncode == 0, ok.stderr
    assert "114 profiles valid" in ok.stdout


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pristine") / "profiles"
    assert main(["profiles", "generate", "--out", str(out), "--format", "yaml"]) == 0  # json: tested above
    return out


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_validate_names_the_one_corrupted_file(pristine: Path, tmp_path: Path) -> None:
    out = _copy(pristine, tmp_path / "p")
    target = out / "profiles" / "meta-llama--llama-3.1-8b-instruct--fp16.yaml"
    doc = yaml.safe_load(target.read_text(encoding="utf-8"))
    doc["products"][0]["partition_count"] = 3  # not a partition count a pod can request
    target.write_text(yaml.safe_dump(doc), encoding="utf-8")
    proc = run_cli("profiles", "validate", str(out))
    assert proc.returncode != 0
    problems = [line for line in proc.stderr.splitlines() if not line.startswith("aim-sizing:")]
    assert problems and all(line.startswith(f"{target}: products/0") for line in problems), proc.stderr
    assert "1 problem" in proc.stderr


def test_validate_names_unparseable_broken_and_missing_files(pristine: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = _copy(pristine, tmp_path / "p")
    unparseable = out / "profiles" / "qwen--qwen3-32b--int8.yaml"
    unparseable.write_text("schema: [unclosed\n", encoding="utf-8")
    aim = sorted((out / "aim").rglob("*.yaml"))[0]
    doc = yaml.safe_load(aim.read_text(encoding="utf-8"))
    del doc["metadata"]["manual_selection_only"]
    aim.write_text(yaml.safe_dump(doc), encoding="utf-8")
    (out / "profiles" / "google--gemma-3-1b-it--int4.yaml").unlink()
    code, _, err = run_main(capsys, "profiles", "validate", str(out))
    assert code != 0
    assert f"{unparseable}: not parseable" in err
    assert str(aim) in err and "manual_selection_only" in err
    assert "found 113" in err


def test_validate_a_directory_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "profiles", "validate", str(tmp_path / "nope"))
    assert code == 2 and "nope" in err and "not a directory" in err


def test_generate_refuses_a_non_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me\n", encoding="utf-8")
    (out / "profiles").mkdir()
    (out / "profiles" / "old.json").write_text("{}", encoding="utf-8")
    before, siblings = tree_hashes(out), sorted(p.name for p in tmp_path.iterdir())
    proc = run_cli("profiles", "generate", "--out", str(out))
    assert proc.returncode == 2
    assert "--force" in proc.stderr and str(out) in proc.stderr
    assert tree_hashes(out) == before  # nothing written or changed
    assert sorted(p.name for p in tmp_path.iterdir()) == siblings  # no staging directory left behind
    # --force replaces it with exactly the generated tree
    assert run_main(capsys, "profiles", "generate", "--out", str(out), "--force")[0] == 0
    after = tree_hashes(out)
    assert "notes.txt" not in after and "profiles/old.json" not in after
    assert len([k for k in after if k.startswith("profiles/")]) == 114
    assert sorted(p.name for p in tmp_path.iterdir()) == siblings


# --------------------------------------------------------------------------- errors

def test_unknown_model_names_the_closest() -> None:
    proc = run_cli("estimate", "meta-llama/Llama-3.1-8B-Instrct", "--precision", "fp16")
    assert proc.returncode == 2
    assert "unknown model 'meta-llama/Llama-3.1-8B-Instrct'" in proc.stderr
    assert "meta-llama/Llama-3.1-8B-Instruct" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_unknown_model_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "fit", "qwen3-33b", "--precision", "int4")
    assert code == 2 and out == ""
    assert "Qwen/Qwen3-32B" in err


def test_unknown_precision_is_one_clear_line() -> None:
    proc = run_cli("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--precision", "fp3")
    assert proc.returncode == 2
    error_lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(error_lines) == 1
    assert "'fp3'" in error_lines[0] and "fp16" in error_lines[0] and "int4" in error_lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("content", "expected"), [
    (b'{"hidden_size": 4096,', "not valid JSON"),
    (b"\xff\xfe\x00\x01 not text", "not valid JSON"),
    (b"[1, 2, 3]", "JSON object"),
    (json.dumps({k: v for k, v in LLAMA_31_8B_CONFIG.items() if k != "hidden_size"}).encode(), "hidden_size"),
    (json.dumps({**LLAMA_31_8B_CONFIG, "num_key_value_heads": 3}).encode(), "num_key_value_heads"),
    (json.dumps({**LLAMA_31_8B_CONFIG, "max_position_embeddings": "long"}).encode(), "max_position_embeddings"),
])
def test_malformed_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes,
                                  expected: str) -> None:
    config = tmp_path / "config.json"
    config.write_bytes(content)
    code, out, err = run_main(capsys, "estimate", "--config", str(config), "--precision", "fp16")
    assert code == 2 and out == ""
    assert expected in err
    assert len(err.strip().splitlines()) == 1


def test_malformed_config_subprocess(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("{not json", encoding="utf-8")
    proc = run_cli("estimate", "--config", str(config), "--precision", "fp16")
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr and "Traceback" not in proc.stderr
    missing = run_cli("estimate", "--config", str(tmp_path / "absent.json"), "--precision", "fp16")
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_bad_flag_exits_2_with_usage() -> None:
    proc = run_cli("estimate", "meta-llama/Llama-3.1-8B-Instruct", "--precision", "fp16", "--bogus")
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: ") and "--bogus" in proc.stderr


@pytest.mark.parametrize("argv", [
    [],
    ["profiles"],
    ["estimate", "meta-llama/Llama-3.1-8B-Instruct", "--precision", "fp16", "--tp", "0"],
    ["estimate", "meta-llama/Llama-3.1-8B-Instruct", "--precision", "fp16", "--max-model-len", "lots"],
    ["estimate", "meta-llama/Llama-3.1-8B-Instruct", "--precision", "fp16", "--kv-cache-dtype", "int2"],
    ["models", "--format", "csv"],
])
def test_usage_errors_in_process(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run_main(capsys, *argv)
    assert code == 2 and out == ""
    assert "usage: " in err and "error:" in err


@pytest.mark.parametrize(("argv", "expected"), [
    (["estimate", "--precision", "fp16"], "MODEL"),
    # --precision may be omitted only for a pre-quantized checkpoint (issue 9)
    (["estimate", "meta-llama/Llama-3.1-8B-Instruct"], "give --precision"),
    (["estimate", "Qwen/Qwen2.5-0.5B-Instruct", "--precision", "fp16", "--tp", "4"], "14 attention heads"),
    (["estimate", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "--precision", "fp16", "--max-model-len", "4096"], "2048"),
])
def test_input_errors_exit_2_with_a_reason(capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    code, out, err = run_main(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("aim-sizing: error: ") and expected in err


def test_generate_onto_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "profiles.txt"
    target.write_text("not a directory\n", encoding="utf-8")
    code, _, err = run_main(capsys, "profiles", "generate", "--out", str(target))
    assert code == 2 and "--force" in err
    assert target.read_text(encoding="utf-8") == "not a directory\n"
    code, _, err = run_main(capsys, "profiles", "generate", "--out", str(target), "--force")
    assert code == 0, err
    assert target.is_dir() and len(list((target / "profiles").iterdir())) == 114


def test_generated_directory_is_readable_by_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the output is staged in a private temp dir; once swapped in it must be an ordinary directory
    out = tmp_path / "profiles"
    old = os.umask(0o022)
    try:
        code, _, err = run_main(capsys, "profiles", "generate", "--out", str(out))
    finally:
        os.umask(old)
    assert code == 0, err
    assert out.stat().st_mode & 0o777 == 0o755
