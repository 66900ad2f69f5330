"""Fixtures: a short temporary directory for unix sockets and a running test kubelet."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deviceplugin.dp_support import TestKubelet


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temporary directory: AF_UNIX socket paths must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="dp", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def test_kubelet(short_tmp: Path) -> Iterator[TestKubelet]:
    kubelet = TestKubelet(short_tmp / "kubelet")
    kubelet.start()
    yield kubelet
    kubelet.stop()
