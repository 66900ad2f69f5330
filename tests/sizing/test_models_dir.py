"""Models directory entries: written by `aim-sizing models add`, read by --models-dir and by the
extender's ModelsSource from a ConfigMap-style mount (``..data`` symlink swaps)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

import sizing
from extender.models_source import ModelsSource, read_catalogue
from sizing import SizingError
from sizing.cli import main
from sizing.models_dir import entry_document, entry_file_name, parse_entry

CONFIGS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "configs"


def _entry(model_id: str, config: str = "mistral-7b-awq.json", **facts: object) -> str:
    doc = entry_document(json.loads((CONFIGS / config).read_text()), model_id, "https://example.test/config.json")
    doc.update(facts)
    return json.dumps(doc)


def _configmap(root: Path, files: dict[str, str], stamp: str) -> None:
    """Lay files out as kubelet does: NAME -> ..data/NAME, ..data -> ..<stamp>/ (swapped atomically)."""
    data = root / f"..{stamp}"
    data.mkdir()
    for name, text in files.items():
        (data / name).write_text(text)
        if not (root / name).is_symlink():
            (root / name).symlink_to(Path("..data") / name)
    tmp = root / "..data_tmp"
    tmp.symlink_to(data.name)
    os.replace(tmp, root / "..data")


def test_entry_round_trip_and_bad_fields_name_file_and_field() -> None:
    model = parse_entry(_entry("acme/mistral-awq", max_context=4096), "a.json")
    assert model.id == "acme/mistral-awq" and model.max_context == 4096 and model.quantization is not None
    with pytest.raises(SizingError, match=r"b\.json: field 'max_context'"):
        parse_entry(_entry("acme/x", max_context=-1), "b.json")
    with pytest.raises(SizingError, match=r"c\.json: .*model_type 'mixformer-sequential'"):
        parse_entry(_entry("acme/x").replace('"model_type": "mistral"', '"model_type": "mixformer-sequential"'),
                    "c.json")
    with pytest.raises(SizingError, match=r"d\.json: not valid JSON"):
        parse_entry("[" * 100000, "d.json")


def test_cli_add_then_estimate_from_models_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "models"
    assert main(["models", "add", "--config", str(CONFIGS / "gemma-2-9b-it.json"), "--id", "google/gemma-2-9b-it",
                 "--source", "https://huggingface.co/google/gemma-2-9b-it", "--out", str(out)]) == 0
    assert (out / entry_file_name("google/gemma-2-9b-it")).is_file()
    capsys.readouterr()
    assert main(["estimate", "gemma-2-9b-it", "--models-dir", str(out), "--precision", "bf16", "--format", "json"]) == 0
    need = json.loads(capsys.readouterr().out)
    assert need["model_id"] == "google/gemma-2-9b-it" and need["weights_bytes"] == 9241705984 * 2


def test_models_source_follows_configmap_swaps_and_keeps_last_good(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "mount"
    root.mkdir()
    _configmap(root, {"a.json": _entry("acme/mistral-awq")}, "2026_01")
    source = ModelsSource(root, poll_seconds=0.05)
    assert source.refresh()
    assert source.catalogue.get_model("acme/mistral-awq").quantization is not None
    assert len(source.catalogue) == len(sizing.CATALOGUE) + 1
    assert not source.refresh()  # nothing changed: no re-read
    # an edit arrives as a new ..data directory; a broken version of a.json keeps the previous one
    with caplog.at_level(logging.WARNING, logger="extender.models_source"):
        _configmap(root, {"a.json": _entry("acme/mistral-awq", max_context="x"),
                          "b.json": _entry("acme/falcon", "falcon-7b.json")}, "2026_02")
        assert source.refresh()
    assert "a.json" in caplog.text and "max_context" in caplog.text
    assert source.catalogue.get_model("acme/falcon").family == "falcon"
    assert source.catalogue.get_model("acme/mistral-awq").max_context == 32768
    # a model id already built in is refused, not shadowed
    clash = {"a.json": _entry("meta-llama/Llama-3.1-8B-Instruct"), "b.json": _entry("acme/falcon", "falcon-7b.json")}
    _configmap(root, clash, "2026_03")
    source.refresh()
    assert source.catalogue.get_model("meta-llama/Llama-3.1-8B-Instruct").family != "mistral"


def test_read_catalogue_is_strict_for_one_shot_commands(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(_entry("acme/mistral-awq"))
    assert read_catalogue(tmp_path).get_model("acme/mistral-awq").quantization is not None
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(SizingError, match=r"b\.json: field 'schema'"):
        read_catalogue(tmp_path)
    with pytest.raises(SizingError, match="cannot be listed"):
        read_catalogue(tmp_path / "absent")


def test_fifo_and_link_loop_entries_are_reported_not_waited_on(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "good.json").write_text(_entry("acme/mistral-awq"))
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "loop.json").symlink_to("loop.json")
    source = ModelsSource(tmp_path)
    with caplog.at_level(logging.WARNING, logger="extender.models_source"):
        assert source.refresh()
    assert "fifo.json" in caplog.text and "loop.json" in caplog.text
    assert source.catalogue.get_model("acme/mistral-awq").family == "mistral"
    with pytest.raises(SizingError, match=r"fifo\.json cannot be read"):
        read_catalogue(tmp_path)


def test_extender_sizes_a_models_dir_pod_with_its_declared_precision(tmp_path: Path) -> None:
    from extender.pod_demand import read_pod_demand
    from extender.requirement import Sizer

    (tmp_path / "a.json").write_text(_entry("acme/mistral-awq"))
    pod = {"metadata": {"annotations": {"aim.amd.com/model": "acme/mistral-awq"}},
           "spec": {"containers": [{"resources": {"limits": {"amd.com/gpu-partition": "1"}}}]}}
    unknown = Sizer().requirement(read_pod_demand(pod))
    assert unknown.rejection is not None and "aim-sizing models add" in unknown.rejection.message
    sized = Sizer(read_catalogue(tmp_path)).requirement(read_pod_demand(pod))
    assert sized.rejection is None and sized.subject == "acme/mistral-awq int4"  # no precision annotation
    arch = read_catalogue(tmp_path).get_model("acme/mistral-awq")
    assert sized.model_bytes == sizing.estimate(arch, "int4").total_bytes


def test_plan_reads_a_models_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from extender.cli import main as extender_main

    models = tmp_path / "models"
    models.mkdir()
    (models / "a.json").write_text(_entry("acme/mistral-awq"))
    workloads = tmp_path / "w.yaml"
    workloads.write_text("workloads:\n  - {name: awq, model: acme/mistral-awq}\n")
    assert extender_main(["plan", "--workloads", str(workloads), "--policy", "best-fit", "--format", "json",
                          "--models-dir", str(models)], environ={}) == 0
    placed = json.loads(capsys.readouterr().out)
    assert "acme/mistral-awq int4" in json.dumps(placed) and "unknown model" not in json.dumps(placed)
    (models / "b.json").write_text("{}")
    assert extender_main(["plan", "--workloads", str(workloads), "--models-dir", str(models)], environ={}) == 2
    assert "b.json: field 'schema'" in capsys.readouterr().err
