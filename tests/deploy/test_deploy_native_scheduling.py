"""Native mode on the real kube-scheduler 1.25 (tests/controlplane): the scheduler starts with
``native_scheduler_config`` (v1beta3, the version this build takes; no extender anywhere) and places
pods that carry node affinity of the kind the admission webhook writes (required ``memory-mib Gt``,
preferred terms per partition size), written by hand here, best fit: the smallest partition size
that holds the model first, then the fullest node of that size; a size no node has is never used.

The control: the same pod under a profile that only switches NodeResourcesFit to MostAllocated
(default plugin weights) lands on the fuller node with the LARGER partitions, so the test fails
when the weights do not make the preferred terms dominate."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from extender.scheduler_config import API_V1BETA3, native_scheduler_config
from sizing.contract import LABEL_MEMORY_MIB, RESOURCE_NAME
from tests.controlplane.gpu_cluster import (
    IMAGE,
    POOL_LABEL,
    NodeSpec,
    Pool,
    bound_node,
    create_pool,
    delete_pool,
    failed_scheduling,
    submit,
)
from tests.controlplane.harness import ControlPlane
from tests.controlplane.processes import ManagedProcess, wait_until

NATIVE = "nat-native"
CONTROL = "nat-control"
POOL_PREFIX = "nat"
# Two partition sizes: MI300X in CPX (8 x 24 GiB) and in QPX (4 x 48 GiB), as in gpus.json.
NODES = (
    NodeSpec("cpx-a", "MI300X", "CPX", "NPS4", 38, 24, 8),
    NodeSpec("cpx-b", "MI300X", "CPX", "NPS4", 38, 24, 8),
    NodeSpec("qpx", "MI300X", "QPX", "NPS1", 76, 48, 4),
)
# Partitions already in use per node (pods bound by name): the 48 GiB node is the fullest after
# one more pod (3/4 vs 5/8), so fullness alone would pick it.
IN_USE = {"cpx-a": 0, "cpx-b": 4, "qpx": 2}
MIB_24G, MIB_48G = 24 * 1024, 48 * 1024
READY_TIMEOUT_SECONDS = 30.0


@dataclass
class Native:
    plane: ControlPlane
    namespace: str
    pool: Pool


def affinity(need_mib: int, preferred: list[tuple[int, int]]) -> dict[str, Any]:
    """What the webhook writes: partitions larger than ``need_mib``, and one preferred term per
    partition size (MiB, weight), the smallest size that fits weighted highest."""
    return {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": LABEL_MEMORY_MIB, "operator": "Gt", "values": [str(need_mib - 1)]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": weight, "preference": {"matchExpressions": [
                {"key": LABEL_MEMORY_MIB, "operator": "In", "values": [str(size)]}]}}
            for size, weight in preferred],
    }}


def pod(name: str, scheduler: str, need_gib: int, preferred: list[tuple[int, int]],
        node: str | None = None) -> dict[str, Any]:
    one = {RESOURCE_NAME: "1"}
    spec: dict[str, Any] = {"schedulerName": scheduler, "nodeSelector": {POOL_LABEL: POOL_PREFIX},
                            "terminationGracePeriodSeconds": 0,
                            "containers": [{"name": "vllm", "image": IMAGE,
                                            "resources": {"requests": one, "limits": one}}]}
    if preferred or need_gib:
        spec["affinity"] = affinity(need_gib * 1024, preferred)
    if node is not None:
        spec["nodeName"] = node  # bound without a scheduler, as a running workload would be
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def control_config() -> dict[str, Any]:
    """The native profile without its weights: MostAllocated over the partitions only."""
    config = copy.deepcopy(native_scheduler_config(API_V1BETA3, scheduler_name=CONTROL, leader_election=False))
    del config["profiles"][0]["plugins"]
    return config


@pytest.fixture(scope="module")
def native(control_plane: ControlPlane) -> Iterator[Native]:
    plane = control_plane
    namespace = plane.create_namespace("nat")
    pool = create_pool(plane, POOL_PREFIX, NODES)
    schedulers: list[ManagedProcess] = []
    try:
        for suffix, count in IN_USE.items():
            for i in range(count):
                submit(plane.core, namespace, pod(f"busy-{suffix}-{i}", "none", 0, [], node=pool[suffix]))
        config = native_scheduler_config(API_V1BETA3, scheduler_name=NATIVE, leader_election=False)
        assert "extenders" not in config
        for name, configuration in ((NATIVE, config), (CONTROL, control_config())):
            schedulers.append(plane.start_scheduler(configuration, name=name))
            plane.wait_for_scheduler_cache(schedulers[-1], nodes=len(NODES), pods=sum(IN_USE.values()),
                                           timeout=READY_TIMEOUT_SECONDS)
        yield Native(plane, namespace, pool)
    finally:
        for process in schedulers:
            plane.stop_process(process)
        plane.delete_namespace(namespace)
        delete_pool(plane, pool)


# A 20 GiB model: both sizes hold it; 24 GiB is the better fit by ONE point of preference (100 vs
# 99), the closest call the webhook's weights can make.
SMALL_MODEL = (20, [(MIB_24G, 100), (MIB_48G, 99)])


def test_default_weights_would_pick_the_fuller_node_with_larger_partitions(native: Native) -> None:
    """The control: without the native weights, fullness (MostAllocated) beats the preference."""
    need, preferred = SMALL_MODEL
    submit(native.plane.core, native.namespace, pod("control-20g", CONTROL, need, preferred))
    assert bound_node(native.plane.core, native.namespace, "control-20g") == native.pool["qpx"]
    native.plane.core.delete_namespaced_pod("control-20g", native.namespace, grace_period_seconds=0)
    wait_until(lambda: not [p for p in native.plane.core.list_namespaced_pod(native.namespace).items
                            if p.metadata.name == "control-20g"], READY_TIMEOUT_SECONDS, "control-20g to be gone")


def test_native_places_the_smallest_size_that_fits_then_the_fullest_node(native: Native) -> None:
    need, preferred = SMALL_MODEL
    submit(native.plane.core, native.namespace, pod("native-20g", NATIVE, need, preferred))
    # 24 GiB partitions over the fuller 48 GiB node; of the two 24 GiB nodes the fuller one.
    assert bound_node(native.plane.core, native.namespace, "native-20g") == native.pool["cpx-b"]


def test_native_keeps_a_model_off_partitions_too_small(native: Native) -> None:
    # 30 GiB: only the 48 GiB partitions hold it, although the 24 GiB nodes have more free.
    submit(native.plane.core, native.namespace, pod("native-30g", NATIVE, 30, [(MIB_48G, 100)]))
    assert bound_node(native.plane.core, native.namespace, "native-30g") == native.pool["qpx"]
    # 60 GiB: no node; Pending with the node-affinity reason, never placed by count.
    submit(native.plane.core, native.namespace, pod("native-60g", NATIVE, 60, []))
    message = failed_scheduling(native.plane.core, native.namespace, "native-60g")
    assert "didn't match Pod's node affinity/selector" in message
