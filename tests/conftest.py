"""Suite-wide fixtures: the real control plane (tests/controlplane), started lazily by the first
test that asks for it, once per session, and always torn down."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controlplane.binaries import find_binaries
from tests.controlplane.harness import ControlPlane


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler for the whole session;
    skipped (with how to provide them) when the binaries are absent."""
    binaries = find_binaries()
    if isinstance(binaries, str):
        pytest.skip(binaries)
    with tempfile.TemporaryDirectory(prefix="aim-controlplane-") as workdir:
        plane = ControlPlane(binaries, Path(workdir))
        try:
            plane.start()
            yield plane
        finally:
            plane.stop()


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace for one test, deleted (in the background) afterwards."""
    name = control_plane.create_namespace("aim-t")
    yield name
    control_plane.delete_namespace(name)
