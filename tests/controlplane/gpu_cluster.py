"""A small GPU cluster on the test control plane: pools of API-only nodes with partition labels
from the device plugin's own label code (``sizing.contract.node_labels``), GPU-partition pods,
and waits for binding and for scheduling events."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client

from decision import planning
from sizing.contract import ANNOTATION_MODEL, ANNOTATION_PRECISION, RESOURCE_NAME, PartitionShape, node_labels
from tests.controlplane.harness import ControlPlane
from tests.controlplane.nodes import delete_nodes
from tests.controlplane.processes import wait_until

GIB = 1 << 30
POOL_LABEL = "aim.test/pool"  # pods select their pool with a nodeSelector on it
# Scheduling on an idle control plane takes tens of milliseconds; 30 s absorbs a loaded CI host
# and the scheduler's backoff (1 s doubling) after an unschedulable attempt.
SCHEDULE_TIMEOUT_SECONDS = 30.0
# Placeholder image: nothing runs these pods (there is no kubelet).
IMAGE = "registry.invalid/aim-test/none:0"


@dataclass(frozen=True)
class NodeSpec:
    """One node of a pool: ``count`` partitions of ``partition_gib`` (count 0: no GPU at all)."""

    suffix: str
    product: str
    compute_mode: str
    memory_mode: str
    compute_units: int
    partition_gib: int
    count: int

    def labels(self) -> dict[str, str | None]:
        if self.count == 0:
            return {}
        shape = PartitionShape(product=self.product, compute_mode=self.compute_mode, memory_mode=self.memory_mode,
                               compute_units=self.compute_units, memory_bytes=self.partition_gib * GIB)
        per_gpu = planning.partition_geometry(self.product, self.compute_mode, self.memory_mode).partitions
        return node_labels([shape] * self.count, gpus=-(-self.count // per_gpu))


# Seven nodes, six partition geometries of MI300X (192 GiB, 304 CUs) and MI325X (256 GiB) and one
# node without GPUs; sizes and CU counts as sizing/data/gpus.json gives them per mode.
POOL = (
    NodeSpec("cpx8", "MI300X", "CPX", "NPS4", 38, 24, 8),  # one GPU in CPX
    NodeSpec("cpx16", "MI300X", "CPX", "NPS4", 38, 24, 16),  # two GPUs in CPX
    NodeSpec("m325cpx", "MI325X", "CPX", "NPS4", 38, 32, 8),
    NodeSpec("qpx", "MI300X", "QPX", "NPS1", 76, 48, 4),
    NodeSpec("dpx", "MI300X", "DPX", "NPS1", 152, 96, 2),
    NodeSpec("spx", "MI300X", "SPX", "NPS1", 304, 192, 1),
    NodeSpec("cpu", "", "", "", 0, 0, 0),
)


@dataclass(frozen=True)
class Pool:
    """Nodes ``<prefix>-<suffix>`` labelled ``POOL_LABEL=<prefix>``; ``pool["cpx8"]`` is a node name."""

    prefix: str
    nodes: Mapping[str, str]

    def __getitem__(self, suffix: str) -> str:
        return self.nodes[suffix]


def create_pool(plane: ControlPlane, prefix: str, specs: tuple[NodeSpec, ...] = POOL) -> Pool:
    """Create one node per spec, Ready, with the device plugin's labels and kubelet's capacity."""
    names = {}
    for spec in specs:
        name = f"{prefix}-{spec.suffix}"
        plane.create_node(name, partitions=spec.count or None, labels={**spec.labels(), POOL_LABEL: prefix})
        names[spec.suffix] = name
    return Pool(prefix, names)


def delete_pool(plane: ControlPlane, pool: Pool) -> None:
    delete_nodes(plane.core, pool.nodes.values())


def model_annotations(model: str, precision: str) -> dict[str, str]:
    return {ANNOTATION_MODEL: model, ANNOTATION_PRECISION: precision}


def gpu_pod(name: str, *, scheduler: str, pool: str, partitions: int = 1,
            annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A pod requesting ``partitions`` gpu partitions (requests = limits, as extended resources
    require), scheduled by ``scheduler`` onto nodes of ``pool``."""
    amount = {RESOURCE_NAME: str(partitions)}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": dict(annotations or {})},
        "spec": {
            "schedulerName": scheduler,
            "nodeSelector": {POOL_LABEL: pool},
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "vllm", "image": IMAGE, "resources": {"requests": amount, "limits": amount}}],
        },
    }


def submit(core: client.CoreV1Api, namespace: str, pod: Mapping[str, Any]) -> None:
    """Create the pod (a plain manifest dict, as kubectl would send it)."""
    core.create_namespaced_pod(namespace, cast(Any, pod))


def _node_name(core: client.CoreV1Api, namespace: str, name: str) -> str | None:
    pod = core.read_namespaced_pod(name, namespace)
    return pod.spec.node_name if pod.spec else None


def bound_node(core: client.CoreV1Api, namespace: str, name: str,
               timeout: float = SCHEDULE_TIMEOUT_SECONDS) -> str:
    """Wait until the pod is bound; its node name."""
    return str(wait_until(lambda: _node_name(core, namespace, name), timeout, f"pod {namespace}/{name} to be bound"))


def failed_scheduling(core: client.CoreV1Api, namespace: str, name: str,
                      timeout: float = SCHEDULE_TIMEOUT_SECONDS, contains: str = "") -> str:
    """Wait for a FailedScheduling event of the pod (whose message contains ``contains``); its
    message. Asserts the pod is still unbound."""
    def message() -> str | None:
        events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
        for event in events:
            if event.reason == "FailedScheduling" and contains in (event.message or ""):
                return str(event.message)
        return None

    text = str(wait_until(message, timeout, f"a FailedScheduling event for {namespace}/{name}"))
    assert _node_name(core, namespace, name) is None, f"{name} was bound after all"
    return text


def nodes_with(message: str, reason: str) -> int:
    """How many nodes a FailedScheduling message gives ``reason`` for ("0/9 nodes are available:
    6 <reason>, ..."): the scheduler groups identical reasons with a count in front."""
    return sum(int(m.group(1)) for m in re.finditer(rf"(\d+) {re.escape(reason)}", message))


def force_delete_pod(core: client.CoreV1Api, namespace: str, name: str) -> None:
    """Delete at once: there is no kubelet to confirm a graceful termination."""
    core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
