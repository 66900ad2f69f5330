"""``aim-extender serve --models-dir`` with hostile entries (issue 18): ``re:a{4294967296}`` in an ignore
list crashed the models source and crash-looped the extender. Now each bad entry is one log line naming
the file and the field, and the extender serves the rest; a directory of more than 512 entries is
refused whole, keeping the models already loaded."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx

from sizing.models_dir import entry_document
from tests.extender.support import annotate
from tests.extender.test_extender_cli import free_port, start_serving, wait_for
from tests.fixtures import FIXTURES

GOOD, HOSTILE = "acme/mistral-awq", "acme/hostile"


def _entry(model_id: str, **quantization: object) -> dict[str, Any]:
    config = json.loads((FIXTURES / "configs" / "mistral-7b-awq.json").read_text(encoding="utf-8"))
    doc = entry_document(config, model_id, "https://example.test/config.json")
    doc["config"]["quantization_config"].update(quantization)
    return doc


def _filter(port: int, request: dict[str, Any], model: str) -> str:
    reply = httpx.post(f"http://127.0.0.1:{port}/filter", json=annotate(request, {"aim.amd.com/model": model}),
                       timeout=10)
    assert reply.status_code == 200, reply.text[:300]
    return reply.text


def test_serve_keeps_serving_the_rest_of_a_models_dir_with_hostile_entries(tmp_path: Path,
                                                                          nodes_request: dict[str, Any]) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "good.json").write_text(json.dumps(_entry(GOOD)))
    (models / "hostile.json").write_text(json.dumps(_entry(HOSTILE, modules_to_not_convert=["re:a{4294967296}"])))
    digits = json.dumps(_entry("acme/digits")).replace('"hidden_size": 4096', '"hidden_size": ' + "9" * 5000)
    (models / "digits.json").write_text(digits)
    port = free_port()
    process = start_serving(port, "--models-dir", str(models))
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz").text == "ok"
        assert "unknown model" not in _filter(port, nodes_request, GOOD)  # the good entry is served
        assert "unknown model" in _filter(port, nodes_request, HOSTILE)  # the hostile one is not
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).text == "ok"
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    hostile = [line for line in output.splitlines() if "hostile.json" in line]
    assert len(hostile) == 1, output
    assert "quantization_config.modules_to_not_convert[0]" in hostile[0] and "repetition count" in hostile[0]
    too_long = [line for line in output.splitlines() if "digits.json" in line]
    assert len(too_long) == 1 and "field 'config.hidden_size' is an integer of 5,000 digits" in too_long[0], output
    assert f"1 entries loaded ({GOOD})" in output
    assert "Traceback" not in output
