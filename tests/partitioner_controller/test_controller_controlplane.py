"""The controller against the real control plane (API-only nodes): kube-scheduler with our
extender places the pods, a DCM stand-in (dcm_standin.py) answers the profile label and
re-advertises partitions as our device plugin would, and ``aim-partitioner controller`` runs as a
child process with test-sized timeouts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import client

from extender.scheduler_config import API_V1BETA3, ExtenderEndpoint, second_scheduler_config
from partitioner.controller import keys
from sizing.contract import LABEL_COMPUTE_MODE, LABEL_COUNT, RESOURCE_NAME
from tests.controlplane.gpu_cluster import bound_node, failed_scheduling, gpu_pod, submit
from tests.controlplane.harness import ControlPlane
from tests.controlplane.processes import wait_until
from tests.partitioner_controller.controller_process import RunningController, start_controller
from tests.partitioner_controller.dcm_standin import DcmStandIn
from tests.partitioner_controller.objects import LLAMA_70B, QWEN_14B, partition_labels

SCHEDULER = "aim-controller-test-scheduler"
POOL_LABEL = "aim.test/pool"
# Binding after a repartition: the scheduler retries the pod on the node update (backoff 1 s in
# this scheduler's configuration), plus the controller's steps (each a fraction of a second).
BIND_TIMEOUT = 30.0


@dataclass(frozen=True)
class Scheduling:
    plane: ControlPlane


@pytest.fixture(scope="module")
def scheduling(control_plane: ControlPlane) -> Iterator[Scheduling]:
    extender = control_plane.start_extender(node_cache="watch")
    config = second_scheduler_config(
        API_V1BETA3, endpoint=ExtenderEndpoint(host="127.0.0.1", port=urlsplit(extender.url).port or 0),
        scheduler_name=SCHEDULER, leader_election=False)
    # Retry unschedulable pods quickly after a node changes (defaults 1 s / 10 s).
    config["podInitialBackoffSeconds"] = 1
    config["podMaxBackoffSeconds"] = 1
    scheduler = control_plane.start_scheduler(config, name=SCHEDULER)
    yield Scheduling(control_plane)
    control_plane.stop_process(scheduler)
    control_plane.stop_process(extender.process)


@dataclass
class Cluster:
    plane: ControlPlane
    namespace: str
    prefix: str
    dcm: DcmStandIn
    nodes: list[str]

    @property
    def core(self) -> client.CoreV1Api:
        return self.plane.core

    def node(self, suffix: str, compute: str = "CPX", memory: str = "NPS4", *, opted_in: bool = True,
             behaviour: str = "succeed", gpus: int = 1) -> str:
        name = f"{self.prefix}-{suffix}"
        labels: dict[str, str | None] = {**partition_labels("MI300X", compute, memory, gpus), POOL_LABEL: self.prefix}
        if opted_in:
            labels[keys.OPT_IN_LABEL] = keys.OPT_IN_VALUE
        self.plane.create_node(name, partitions=int(labels[LABEL_COUNT] or 0), labels=labels)
        self.nodes.append(name)
        self.dcm.manage(name, "MI300X", gpus, behaviour)
        return name

    def pod(self, name: str, annotations: dict[str, str], partitions: int = 1) -> None:
        submit(self.core, self.namespace, gpu_pod(name, scheduler=SCHEDULER, pool=self.prefix, partitions=partitions,
                                                  annotations=annotations))

    def pending_for_size(self, name: str) -> None:
        failed_scheduling(self.core, self.namespace, name, contains="gpu partition too small for model")

    def controller(self, name: str, *extra: str) -> RunningController:
        return start_controller(self.plane, name, namespace=self.namespace, configmap=f"dcm-{self.prefix}",
                                extra=("--mode=apply", *extra))

    def read(self, node: str) -> Any:
        return self.core.read_node(node)

    def annotations(self, node: str) -> dict[str, str]:
        return dict(self.read(node).metadata.annotations or {})

    def condition(self, node: str) -> dict[str, Any]:
        return dict(json.loads(self.annotations(node).get(keys.CONDITION, "{}")))

    def is_clean(self, node: str) -> bool:
        """Uncordoned, no amd-dcm taint, no repartition in progress."""
        found = self.read(node)
        taints = [t.key for t in (found.spec.taints or [])]
        return not found.spec.unschedulable and keys.DCM_TAINT_KEY not in taints \
            and keys.STATE not in (found.metadata.annotations or {})


@pytest.fixture
def cluster(request: pytest.FixtureRequest, scheduling: Scheduling, namespace: str) -> Iterator[Cluster]:
    plane = scheduling.plane
    prefix = "pc-" + request.node.name.removeprefix("test_")[:18].replace("_", "-").rstrip("-")
    dcm = DcmStandIn(plane.core, namespace, f"dcm-{prefix}").start()
    made = Cluster(plane, namespace, prefix, dcm, [])
    yield made
    dcm.stop()
    for name in made.nodes:
        try:
            plane.core.delete_node(name)
        except client.ApiException as error:
            if error.status != 404:
                raise


def test_pending_70b_on_all_cpx_makes_one_idle_node_spx_and_never_touches_opt_out(cluster: Cluster) -> None:
    out = cluster.node("a-optout", opted_in=False)  # first by name: it would be chosen if it were allowed
    b, c = cluster.node("b"), cluster.node("c")
    before = cluster.read(out).metadata
    cluster.pod("llama-70b", LLAMA_70B)
    cluster.pending_for_size("llama-70b")
    controller = cluster.controller("spx")
    node = bound_node(cluster.core, cluster.namespace, "llama-70b", timeout=BIND_TIMEOUT)
    assert node in (b, c)
    found = cluster.read(node)
    assert found.metadata.labels[LABEL_COMPUTE_MODE] == "SPX"
    assert found.metadata.labels[keys.DCM_PROFILE_LABEL] == "spx_nps1_1gpu"
    assert found.status.allocatable[RESOURCE_NAME] == "1"
    assert cluster.is_clean(node)
    assert cluster.condition(node)["status"] == "True"
    other = c if node == b else b
    assert cluster.dcm.requests(node) == ["spx_nps1_1gpu"] and cluster.dcm.requests(other) == []
    wait_until(lambda: controller.metric("aim_partitioner_pods_unblocked_total") == 1, 10, "the unblocked count")
    metrics = controller.metrics()
    assert metrics['aim_partitioner_repartitions_total{result="started"}'] == 1
    assert metrics['aim_partitioner_repartitions_total{result="succeeded"}'] == 1
    assert metrics['aim_partitioner_repartitions_total{result="failed"}'] == 0
    assert metrics["aim_partitioner_unblock_seconds_count"] == 1
    # The opted-out node: not one label, annotation, taint or cordon changed.
    after = cluster.read(out)
    assert after.metadata.labels == before.labels and after.metadata.annotations == before.annotations
    assert not after.spec.unschedulable and not after.spec.taints
    assert cluster.dcm.requests(out) == []
    events = cluster.core.list_namespaced_event("default", field_selector=f"involvedObject.name={node}").items
    assert {"RepartitionStarted", "Repartitioned"} <= {e.reason for e in events}
    cluster.plane.stop_process(controller.process)
    assert not cluster.dcm.errors


_ = QWEN_14B
