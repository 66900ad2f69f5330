"""The DRA control-plane tests need binaries CI does not build (tests/dra/build_control_plane.sh):
without them they stay skipped, with the reason, even with AIM_REQUIRE_INTEGRATION=1, which turns
every other skip into a failure (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TARGET = "tests/dra/test_dra_controlplane.py::test_publisher_writes_valid_slices_once"


def test_absent_dra_binaries_skip_even_when_integration_is_required(tmp_path: Path) -> None:
    env = dict(os.environ, AIM_REQUIRE_INTEGRATION="1", AIM_K8S_DRA_BIN=str(tmp_path / "nothing-here"))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", TARGET],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout and "DRA control plane binaries not found" in result.stdout
