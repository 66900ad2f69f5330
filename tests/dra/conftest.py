"""The DRA control planes: etcd, kube-apiserver, kube-controller-manager and kube-scheduler of
Kubernetes 1.34+ (resource.k8s.io/v1 GA, the DRA feature gates on by default, DRAPrioritizedList
beta and on in 1.34, GA in 1.36), started once per module and per control plane by the same harness
as tests/controlplane. Every test that uses ``dra_plane`` runs against each plane of
tests/dra/binaries.py (v1.34 and v1.36 by default), each skipped with a reason when absent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.controlplane.harness import ControlPlane, running_plane
from tests.dra.binaries import DraPlane, configured_planes, find_dra_binaries

# kube-scheduler 1.34 and 1.36 take kubescheduler.config.k8s.io/v1 only (v1beta3 went in 1.29).
SCHEDULER_CONFIG = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration",
                    "profiles": [{"schedulerName": "default-scheduler"}]}


@pytest.fixture(scope="module", params=configured_planes(), ids=lambda plane: plane.name)
def dra_plane(request: pytest.FixtureRequest) -> Iterator[ControlPlane]:
    plane_spec: DraPlane = request.param
    binaries = find_dra_binaries(plane_spec)
    if isinstance(binaries, str):
        pytest.skip(binaries)
    with running_plane(binaries, "aim-dra-", default_scheduler=False) as plane:
        plane.start_scheduler(SCHEDULER_CONFIG, name="kube-scheduler")
        yield plane
