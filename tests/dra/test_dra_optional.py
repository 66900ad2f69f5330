"""The DRA control-plane tests need binaries CI does not build (tests/dra/build_control_plane.sh):
without them they stay skipped, with the reason, even with AIM_REQUIRE_INTEGRATION=1, which turns
every other skip into a failure (tests/conftest.py). They run once per control plane listed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.dra.binaries import DEFAULT_PLANES, configured_planes, plane_name

REPO = Path(__file__).resolve().parents[2]
TARGET = "tests/dra/test_dra_controlplane.py::test_publisher_writes_valid_slices_once"


def test_absent_dra_binaries_skip_even_when_integration_is_required(tmp_path: Path) -> None:
    named = tmp_path / "k8s-dra-1.36"
    (named / "bin").mkdir(parents=True)
    (named / "VERSION").write_text("v1.36.2\n")
    listed = os.pathsep.join([str(tmp_path / "nothing-here"), str(named / "bin")])
    env = dict(os.environ, AIM_REQUIRE_INTEGRATION="1", AIM_K8S_DRA_BIN=listed)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", TARGET],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout
    assert "2 skipped" in result.stdout, result.stdout  # one test per control plane listed
    assert "DRA control plane v1.36.2: binaries not found in" in result.stdout
    assert f"DRA control plane {tmp_path / 'nothing-here'}: binaries not found in" in result.stdout


def test_planes_default_to_the_two_documented_caches() -> None:
    assert configured_planes("") == DEFAULT_PLANES
    assert [p.name for p in DEFAULT_PLANES] == ["v1.34", "v1.36"]
    assert [p.bin_dir.parent.name for p in DEFAULT_PLANES] == ["k8s-dra", "k8s-dra-1.36"]


def test_a_plane_is_named_by_its_version_file_only_when_it_is_a_version(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    assert plane_name(tmp_path / "bin") == str(tmp_path / "bin")  # no VERSION file
    (tmp_path / "VERSION").write_text("v1.34.9\n")
    assert plane_name(tmp_path / "bin") == "v1.34.9"
    (tmp_path / "VERSION").write_text("v1.34.9 ]; rm -rf / " + "x" * 100)
    assert plane_name(tmp_path / "bin") == str(tmp_path / "bin")
    (tmp_path / "VERSION").write_bytes(b"\xff\xfe")
    assert plane_name(tmp_path / "bin") == str(tmp_path / "bin")
