"""AIM_REQUIRE_INTEGRATION=1 (set by .ci/run when the control plane is beside the clone) turns a skipped
test into a failure, so CI cannot go green while the control-plane tests quietly skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# One control-plane test: with AIM_K8S_BIN pointing nowhere its fixture skips.
TARGET = "tests/controlplane/test_controlplane_scheduling.py::test_fits_exactly_one_node[nodeCacheCapable]"


def _run(strict: bool, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AIM_REQUIRE_INTEGRATION"}
    env["AIM_K8S_BIN"] = str(tmp_path / "no-binaries-here")
    if strict:
        env["AIM_REQUIRE_INTEGRATION"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TARGET],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_a_skip_is_a_skip_without_the_flag(tmp_path: Path) -> None:
    result = _run(False, tmp_path)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout


def test_a_skip_fails_with_the_flag(tmp_path: Path) -> None:
    result = _run(True, tmp_path)
    assert result.returncode == 1, result.stdout
    assert "skipped while AIM_REQUIRE_INTEGRATION=1" in result.stdout
    assert "control plane binaries not found" in result.stdout
