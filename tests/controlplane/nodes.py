"""API-only nodes: a Node object whose status is set the way kubelet sets it (capacity, allocatable,
Ready), as kwok and kube-scheduler's scheduler_perf do. Nothing runs their pods; kube-scheduler
binds to them and ``kubectl describe node`` shows them like real nodes."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes import client

from sizing.contract import RESOURCE_NAME

# What kubelet reports for a modest host; only needs to be large enough that CPU, memory and the
# pod count never limit the tests (kubelet's default --max-pods is 110).
NODE_CPU = "64"
NODE_MEMORY = "512Gi"
NODE_PODS = "110"
NODE_EPHEMERAL_STORAGE = "1Ti"
# Taint that admission (TaintNodesByCondition) puts on every new node until kubelet reports Ready.
NOT_READY_TAINT = "node.kubernetes.io/not-ready"


def kubelet_labels(name: str) -> dict[str, str]:
    """The well-known labels kubelet puts on its own Node."""
    return {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}


def node_status(partitions: int | None, extra: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Capacity = allocatable (no reservations) with ``partitions`` gpu partitions (None: the
    device plugin has not registered), and a Ready condition heartbeating now."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    resources = {"cpu": NODE_CPU, "memory": NODE_MEMORY, "pods": NODE_PODS,
                 "ephemeral-storage": NODE_EPHEMERAL_STORAGE}
    if partitions is not None:
        resources[RESOURCE_NAME] = str(partitions)
    resources.update(extra or {})
    return {
        "capacity": resources,
        "allocatable": resources,
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                        "message": "kubelet is posting ready status (API-only test node)",
                        "lastHeartbeatTime": now, "lastTransitionTime": now}],
        "nodeInfo": {"kubeletVersion": "v1.25.0-api-only", "operatingSystem": "linux", "architecture": "amd64",
                     "containerRuntimeVersion": "none://0", "kernelVersion": "", "osImage": "api-only",
                     "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""},
    }


def create_node(core: client.CoreV1Api, name: str, *, partitions: int | None,
                labels: Mapping[str, str | None] | None = None,
                extra_resources: Mapping[str, str] | None = None) -> None:
    """Create a Ready, schedulable node; ``labels`` are merge-patched afterwards as the device
    plugin does (None values are left out, as the plugin's patch would remove them)."""
    core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=name, labels=kubelet_labels(name))))
    core.patch_node_status(name, {"status": node_status(partitions, extra_resources)})
    node = core.read_node(name)
    taints = [t for t in ((node.spec.taints if node.spec else None) or []) if t.key != NOT_READY_TAINT]
    patch: dict[str, Any] = {"spec": {"taints": [t.to_dict() for t in taints] or None}}
    if labels:
        patch["metadata"] = {"labels": {k: v for k, v in labels.items() if v is not None}}
    core.patch_node(name, patch)


def set_partitions(core: client.CoreV1Api, name: str, partitions: int) -> None:
    """Change the node's gpu-partition capacity/allocatable (what kubelet does when the plugin
    re-advertises)."""
    core.patch_node_status(name, {"status": {"capacity": {RESOURCE_NAME: str(partitions)},
                                             "allocatable": {RESOURCE_NAME: str(partitions)}}})


def delete_nodes(core: client.CoreV1Api, names: Iterable[str]) -> None:
    """Delete these nodes; one already gone is fine (cleanup after a test that may have failed half-way)."""
    for name in names:
        try:
            core.delete_node(name)
        except client.ApiException as error:
            if error.status != 404:
                raise
