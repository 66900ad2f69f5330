"""The DRA control plane: etcd, kube-apiserver, kube-controller-manager and kube-scheduler of
Kubernetes 1.34+ (resource.k8s.io/v1 GA, the DRA feature gates on by default, DRAPrioritizedList
beta and on), started once per module by the same harness as tests/controlplane."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controlplane.harness import ControlPlane
from tests.dra.binaries import find_dra_binaries

# kube-scheduler 1.34 takes kubescheduler.config.k8s.io/v1 only (v1beta3 went in 1.29).
SCHEDULER_CONFIG = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
                    "profiles": [{"schedulerName": "default-scheduler"}]}


@pytest.fixture(scope="module")
def dra_plane() -> Iterator[ControlPlane]:
    binaries = find_dra_binaries()
    if isinstance(binaries, str):
        pytest.skip(binaries)
    with tempfile.TemporaryDirectory(prefix="aim-dra-") as workdir:
        plane = ControlPlane(binaries, Path(workdir))
        try:
            plane.start(default_scheduler=False)
            plane.start_scheduler(SCHEDULER_CONFIG, name="kube-scheduler")
            yield plane
        finally:
            plane.stop()
