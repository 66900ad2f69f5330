"""The controller on a real MI300X CPX node (issue 16), against the real control plane.

The node's labels are the device plugin's own, computed by discovery of the real capture
tests/fixtures/sysfs/mi300x-cpx: 8 GPUs in CPX/NPS4 that advertise **63** partitions (the eighth GPU
lacks one, the known 63-of-64 quirk). A DCM stand-in advertises that capture whenever it applies
CPX/NPS4 to an 8-GPU node, and can let kubelet's allocatable lag the labels, as on a real node
(the plugin patches its labels at once; kubelet reports allocatable with its next node status).

- CPX (63) -> SPX: the controller reads the node's layout from its GPU count, not from 63/8, and a
  pod that binds while the node is still being verified (stale allocatable) counts as unblocked.
- SPX -> CPX (63): pods that kube-scheduler finds ``Insufficient amd.com/gpu-partition`` on a node
  whose partitions are big enough for them are layout demand; the repartition is verified with
  63 partitions on 8 GPUs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from deviceplugin.discovery import discover
from deviceplugin.labels import desired_labels
from partitioner.controller import keys
from sizing.contract import LABEL_COMPUTE_MODE, LABEL_COUNT, LABEL_GPU_COUNT, LABEL_KEYS, RESOURCE_NAME
from tests.controlplane.gpu_cluster import POOL_LABEL
from tests.controlplane.nodes import delete_nodes
from tests.controlplane.processes import wait_until
from tests.deviceplugin.dp_support import lay_capture
from tests.partitioner_controller.controller_process import stop_controllers
from tests.partitioner_controller.dcm_standin import DcmStandIn, _Node
from tests.partitioner_controller.objects import LLAMA_8B, LLAMA_70B, partition_labels
from tests.partitioner_controller.test_controller_controlplane import (  # noqa: F401 - the fixture is used by name
    BIND_TIMEOUT,
    Cluster,
    Scheduling,
    scheduling,
)

INSUFFICIENT = f"Insufficient {RESOURCE_NAME}"  # kube-scheduler's NodeResourcesFit reason
# How long kubelet's allocatable lags the plugin's labels in the stale-allocatable case: longer
# than the scheduler's retry after a node update (1 s backoff here), far below the advertise timeout.
ALLOCATABLE_LAG = 4.0


@pytest.fixture(scope="module")
def real_cpx(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The device plugin's labels on the real MI300X CPX capture (with the PCI mode files a live
    system has: CPX, NPS4)."""
    root: Path = lay_capture(tmp_path_factory.mktemp("mi300x-cpx"), "mi300x-cpx", compute_mode="CPX",
                             memory_mode="NPS4")
    inventory = discover(root)
    labels = desired_labels(inventory.partitions, (gpu.address for gpu in inventory.gpus))
    assert (labels[LABEL_COUNT], labels[LABEL_GPU_COUNT]) == ("63", "8"), labels
    return {key: value for key, value in labels.items() if value is not None}


class RealNodeStandIn(DcmStandIn):
    """The DCM stand-in, advertising CPX/NPS4 on an 8-GPU MI300X as the real capture (63
    partitions); with ``allocatable_lag`` the labels come first and allocatable that many seconds later."""

    def __init__(self, core: client.CoreV1Api, namespace: str, name: str, cpx: dict[str, str]) -> None:
        super().__init__(core, namespace, name)
        self._cpx = cpx
        self.allocatable_lag = 0.0
        self._timers: list[threading.Timer] = []

    def _advertise(self, name: str, node: _Node) -> None:
        compute, memory = (node.applied or "").split("/")
        real = (node.product, compute, memory, node.gpus) == ("MI300X", "CPX", "NPS4", 8)
        labels = self._cpx if real else partition_labels(node.product, compute, memory, node.gpus)
        status = {"status": {"capacity": {RESOURCE_NAME: labels[LABEL_COUNT]},
                             "allocatable": {RESOURCE_NAME: labels[LABEL_COUNT]}}}
        node.applied = None
        if self.allocatable_lag <= 0:
            self._core.patch_node_status(name, status)
        self._label(name, {key: labels.get(key) for key in LABEL_KEYS})
        if self.allocatable_lag > 0:
            timer = threading.Timer(self.allocatable_lag, self._core.patch_node_status, (name, status))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        super().stop()


@pytest.fixture
def cluster(request: pytest.FixtureRequest, scheduling: Scheduling,  # noqa: F811 - the imported fixture
            namespace: str, real_cpx: dict[str, str]) -> Iterator[Cluster]:
    plane = scheduling.plane
    prefix = "pl-" + request.node.name.removeprefix("test_")[:18].replace("_", "-").rstrip("-")
    dcm = RealNodeStandIn(plane.core, namespace, f"dcm-{prefix}", real_cpx).start()
    made = Cluster(plane, namespace, prefix, dcm, [])
    yield made
    stop_controllers(plane, made.controllers)
    dcm.stop()
    delete_nodes(plane.core, made.nodes)


def _real_cpx_node(cluster: Cluster, suffix: str, labels: dict[str, str]) -> str:
    """An opted-in node with the real capture's labels and 63 allocatable partitions."""
    name = f"{cluster.prefix}-{suffix}"
    cluster.plane.create_node(name, partitions=int(labels[LABEL_COUNT]), labels={
        **labels, POOL_LABEL: cluster.prefix, keys.OPT_IN_LABEL: keys.OPT_IN_VALUE})
    cluster.nodes.append(name)
    cluster.dcm.manage(name, "MI300X", 8)
    return name


def _state(cluster: Cluster, node: str) -> str | None:
    return cluster.annotations(node).get(keys.STATE)


def test_real_63_partition_cpx_node_becomes_spx_and_a_pod_bound_while_verifying_counts(
        cluster: Cluster, real_cpx: dict[str, str]) -> None:
    assert isinstance(cluster.dcm, RealNodeStandIn)
    cluster.dcm.allocatable_lag = ALLOCATABLE_LAG
    node = _real_cpx_node(cluster, "b", real_cpx)
    cluster.pod("llama-70b", LLAMA_70B)
    cluster.pending_for_size("llama-70b")
    controller = cluster.controller("cpx-spx")
    assert cluster.bound("llama-70b", controller) == node
    # Bound on the new labels while kubelet's allocatable is still the old 63: before the
    # controller has seen the node advertise SPX (the case the unblocked count missed).
    found: Any = cluster.read(node)
    assert (found.status.allocatable[RESOURCE_NAME], _state(cluster, node)) == ("63", "verifying")
    wait_until(lambda: cluster.condition(node).get("status") == "True", BIND_TIMEOUT, f"{node} to be verified")
    found = cluster.read(node)
    assert (found.metadata.labels[LABEL_COMPUTE_MODE], found.metadata.labels[LABEL_COUNT]) == ("SPX", "8")
    assert found.status.allocatable[RESOURCE_NAME] == "8" and cluster.is_clean(node)
    assert cluster.dcm.requests(node) == ["spx_nps1_8gpu"]  # all 8 GPUs, from the gpu-count label
    wait_until(lambda: controller.metric("aim_partitioner_pods_unblocked_total") == 1, 10, "the unblocked count")
    metrics = controller.metrics()
    assert metrics["aim_partitioner_unblock_seconds_count"] == 1
    assert metrics['aim_partitioner_repartitions_total{result="succeeded"}'] == 1
    assert metrics['aim_partitioner_repartitions_total{result="failed"}'] == 0
    assert not cluster.dcm.errors


def test_pods_insufficient_on_a_big_enough_spx_node_make_it_the_real_63_partition_cpx(cluster: Cluster) -> None:
    node = cluster.node("b", "SPX", "NPS1", gpus=8)
    # Three 8B replicas at tensor-parallel 16: 8 SPX partitions are too few for any of them, so
    # kube-scheduler's own filter rejects the node before the extender is asked. QPX (32) would
    # hold two, CPX (63 here) all three.
    pods = [f"llama-8b-{i}" for i in (1, 2, 3)]
    for name in pods:
        cluster.pod(name, LLAMA_8B, partitions=16)
    for name in pods:
        cluster.pending_for_size(name, reason=INSUFFICIENT)
    controller = cluster.controller("spx-cpx")
    assert {cluster.bound(name, controller) for name in pods} == {node}
    wait_until(lambda: cluster.condition(node).get("status") == "True", BIND_TIMEOUT,
               f"{node} to be verified with 63 partitions on 8 GPUs")
    found: Any = cluster.read(node)
    labels = found.metadata.labels
    assert (labels[LABEL_COMPUTE_MODE], labels[LABEL_COUNT], labels[LABEL_GPU_COUNT]) == ("CPX", "63", "8")
    assert found.status.allocatable[RESOURCE_NAME] == "63" and cluster.is_clean(node)
    assert cluster.dcm.requests(node) == ["cpx_nps4_8gpu"]
    wait_until(lambda: controller.metric('aim_partitioner_repartitions_total{result="succeeded"}') == 1, 5,
               "the repartition to be counted")
    assert controller.metric('aim_partitioner_repartitions_total{result="failed"}') == 0
    wait_until(lambda: controller.metric("aim_partitioner_pods_unblocked_total") == 3, 10, "the unblocked count")
    assert not cluster.dcm.errors
