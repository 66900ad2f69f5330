"""Finding the control-plane binaries (no control plane started): AIM_K8S_BIN wins, a directory
missing any binary is not used, and the skip message says how to provide them."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.controlplane import binaries


def fake_bin(directory: Path, names: tuple[str, ...] = binaries.KUBE_BINARIES) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = directory / name
        path.write_text("#!/bin/sh\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return directory


def test_env_var_points_at_a_complete_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(binaries.ENV_VAR, str(fake_bin(tmp_path / "bin")))
    found = binaries.find_binaries()
    if binaries.etcd_binary() is None:
        assert found == binaries.ETCD_SKIP_MESSAGE
    else:
        assert isinstance(found, binaries.Binaries)
        assert found.bin_dir == (tmp_path / "bin").resolve()
        assert found.crds_dir == (tmp_path / "crds").resolve()


@pytest.mark.parametrize("missing", binaries.KUBE_BINARIES)
def test_a_directory_missing_one_binary_is_not_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    present = tuple(n for n in binaries.KUBE_BINARIES if n != missing)
    monkeypatch.setenv(binaries.ENV_VAR, str(fake_bin(tmp_path / "bin", present)))
    assert binaries.kube_bin_dir() is None
    message = binaries.find_binaries()
    assert message == binaries.SKIP_MESSAGE
    assert "AIM_K8S_BIN" in message and "tests/controlplane/README.md" in message


def test_non_executable_files_do_not_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = fake_bin(tmp_path / "bin")
    (directory / "kube-apiserver").chmod(0o644)
    monkeypatch.setenv(binaries.ENV_VAR, str(directory))
    assert binaries.kube_bin_dir() is None
