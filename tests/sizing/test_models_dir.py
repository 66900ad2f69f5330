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
from sizing.models_dir import MAX_ENTRIES, entry_document, entry_file_name, parse_entry

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
    from decision.pod_demand import read_pod_demand
    from decision.requirement import Sizer

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


def _config_with_long_int(digits: int = 5000) -> str:
    text = (CONFIGS / "mistral-7b-awq.json").read_text()
    return text.replace('"hidden_size": 4096', '"hidden_size": ' + "9" * digits)


def test_a_5000_digit_integer_is_named_by_file_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """json.loads raised a bare ValueError past Python's 4,300-digit limit (a traceback from aim-sizing)."""
    entry = _entry("acme/digits").replace('"hidden_size": 4096', '"hidden_size": -' + "9" * 5000)
    with pytest.raises(SizingError, match=r"^a\.json: field 'config\.hidden_size' is an integer of 5,000 digits"):
        parse_entry(entry, "a.json")
    nested = '{"schema": "x", "config": {"layer_types": [1, 2, ' + "1" * 4301 + "]}}"
    with pytest.raises(SizingError, match=r"field 'config\.layer_types\[2\]' is an integer of 4,301 digits"):
        parse_entry(nested, "b.json")
    assert parse_entry(_entry("acme/ok"), "c.json").hidden_size == 4096  # 4,300 digits and fewer are left to the field
    config = tmp_path / "config.json"
    config.write_text(_config_with_long_int())
    for argv in (["estimate", "--config", str(config), "--precision", "int4"],
                 ["models", "add", "--config", str(config), "--id", "a/b", "--source", "s", "--out", str(tmp_path)]):
        assert _exit_code(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{config}: field 'hidden_size' is an integer of 5,000 digits" in err, err


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


@pytest.mark.timeout(20)
def test_a_fifo_or_dev_zero_as_config_is_refused_not_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero")):
        assert _exit_code(["estimate", "--config", str(path), "--precision", "int4"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{path} is not a regular file" in err, err
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (2 << 20) + b"{}")
    assert _exit_code(["estimate", "--config", str(big), "--precision", "int4"]) == 2
    assert "larger than 1048576 bytes" in capsys.readouterr().err


def test_a_hostile_ignore_entry_is_one_log_line_and_the_rest_loads(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """re:a{4294967296} raised OverflowError out of the models source (the extender crash-looped)."""
    hostile = json.loads(_entry("acme/hostile"))
    hostile["config"]["quantization_config"]["modules_to_not_convert"] = ["lm_head", "re:a{4294967296}"]
    (tmp_path / "good.json").write_text(_entry("acme/mistral-awq"))
    (tmp_path / "hostile.json").write_text(json.dumps(hostile))
    source = ModelsSource(tmp_path)
    with caplog.at_level(logging.WARNING, logger="extender.models_source"):
        assert source.refresh()
        assert not source.refresh()  # nothing changed: not read, not logged again
    lines = [r.getMessage() for r in caplog.records if "hostile.json" in r.getMessage()]
    assert len(lines) == 1 and "field 'quantization_config.modules_to_not_convert[1]'" in lines[0], lines
    assert source.catalogue.get_model("acme/mistral-awq").quantization is not None
    assert "acme/hostile" not in source.catalogue
    with pytest.raises(SizingError, match=r"hostile\.json: config\.json: field 'quantization_config\."):
        read_catalogue(tmp_path)


def test_more_than_512_entries_refuse_the_whole_update_keeping_the_loaded_set(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    """The source read the first 512 files in name order and dropped the rest: models in use vanished."""
    root = tmp_path / "mount"
    root.mkdir()
    # 600 other keys sort before the entry: they are passed over, not counted against it
    _configmap(root, {"z-mistral.json": _entry("acme/mistral-awq"), **{f"a{i:03}.txt": "x" for i in range(600)}},
               "2026_01")
    source = ModelsSource(root)
    assert source.refresh() and "acme/mistral-awq" in source.catalogue
    many = {"z-mistral.json": _entry("acme/mistral-awq"), **{f"m{i:03}.json": "{}" for i in range(MAX_ENTRIES)}}
    _configmap(root, many, "2026_02")
    with caplog.at_level(logging.WARNING, logger="extender.models_source"):
        for _ in range(3):
            assert not source.refresh()
    refusals = [r.getMessage() for r in caplog.records]
    assert len(refusals) == 1 and f"more than {MAX_ENTRIES} entries" in refusals[0], refusals
    assert "keeping the" in refusals[0] and "acme/mistral-awq" in source.catalogue  # nothing dropped
    with pytest.raises(SizingError, match=f"more than {MAX_ENTRIES} entries"):
        read_catalogue(root)
    assert _exit_code(["estimate", "acme/mistral-awq", "--models-dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"more than {MAX_ENTRIES} entries" in err
    (root / "m000.json").unlink()  # back to 512: loaded whole again (the bad "{}" entries are skipped)
    assert source.refresh() and "acme/mistral-awq" in source.catalogue
