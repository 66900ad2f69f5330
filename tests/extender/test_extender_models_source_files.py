"""The models directory's entries are read by kube.regular_file.read_regular_file (the one
non-blocking reader of the project): a FIFO, a device (/dev/zero linked in) or a directory named
like an entry is logged with its kind and skipped by the serving source, and refused naming the
entry by the one-shot reader (aim-extender plan --models-dir), without waiting or reading (issue 18)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from extender.models_source import ModelsSource, read_catalogue
from sizing import SizingError
from sizing.models_dir import entry_document

CONFIGS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "configs"


def _entry(model_id: str) -> str:
    config = json.loads((CONFIGS / "mistral-7b-awq.json").read_text(encoding="utf-8"))
    return json.dumps(entry_document(config, model_id, "https://example.test/config.json"))


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("make", "kind"), [
    (lambda path: os.mkfifo(path), "a FIFO"),
    (lambda path: path.symlink_to("/dev/zero"), "a device or socket"),
    (lambda path: path.mkdir(), "a directory"),
], ids=["fifo", "dev-zero", "directory"])
def test_an_entry_that_is_not_a_regular_file_is_named_with_its_kind(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, make: Callable[[Path], None], kind: str) -> None:
    (tmp_path / "good.json").write_text(_entry("acme/mistral-awq"))
    make(tmp_path / "bad.json")
    source = ModelsSource(tmp_path)
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="extender.models_source"):
        assert source.refresh()
    assert time.perf_counter() - started < 1.0
    lines = [r.getMessage() for r in caplog.records if "bad.json" in r.getMessage()]
    assert lines == [f"models directory entry bad.json skipped: not a regular file ({kind}); it is not served"], lines
    assert source.catalogue.get_model("acme/mistral-awq").family == "mistral"  # the rest is served
    refusal = rf"^models directory entry bad\.json cannot be read: not a regular file \({kind}\)$"
    with pytest.raises(SizingError, match=refusal):
        read_catalogue(tmp_path)
