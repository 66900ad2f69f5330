"""Only the partition demand counts (issue 17/19): a pod kube-scheduler left Unschedulable for CPU or
memory alone, on nodes whose partitions hold it, is neither followed for the unblocked metrics nor
timed by the hysteresis; a pod no partition holds is. Driven through ``Controller.tick`` in recommend
mode with views read from API JSON and a Kube that records what it is asked."""

from __future__ import annotations

from partitioner.controller import keys
from partitioner.controller.loop import Controller
from partitioner.controller.metrics import Metrics
from partitioner.controller.profiles import DcmConfig
from partitioner.controller.settings import Settings
from tests.partitioner_controller import objects
from tests.partitioner_controller.loop_support import Cluster, RecordingKube

NOW = 1_800_000_000.0
INSUFFICIENT_CPU = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available."
# After the pods' creation (objects.pod: 2026-11-30T07:00:00Z): the node changed for them.
CHANGED = "2026-11-30T07:05:00Z"


def unblocked(pod_message: str, annotations: dict[str, str]) -> float:
    """The unblocked count after a pod waits with ``pod_message`` on a CPX node and is then bound
    there once the node has changed."""
    cluster, metrics = Cluster(), Metrics()
    controller = Controller(RecordingKube(), cluster.snapshot, lambda: True, Settings(), metrics,  # type: ignore[arg-type]
                            DcmConfig("kube-amd-gpu", "config-manager-config", existing=False), clock=lambda: NOW)
    cluster.nodes = [objects.node("cpx")]
    cluster.pods = [objects.pod("p", annotations, blocked=pod_message)]
    plan = controller.tick()
    assert plan is not None
    cluster.nodes = [objects.node("cpx", annotations={keys.LAST_CHANGE: CHANGED})]
    cluster.pods = [objects.pod("p", annotations, node_name="cpx")]
    controller.tick()
    return metrics.registry.get_sample_value("aim_partitioner_pods_unblocked_total") or 0.0


def test_a_pod_waiting_for_cpu_where_partitions_hold_it_is_not_partition_demand() -> None:
    assert unblocked(INSUFFICIENT_CPU, objects.LLAMA_8B) == 0.0  # ~20 GiB: the 24 GiB partitions hold it


def test_a_pod_no_partition_holds_is_demand_whatever_else_it_waits_for() -> None:
    assert unblocked(INSUFFICIENT_CPU, objects.LLAMA_70B) == 1.0  # ~151 GiB: no 24 GiB partition holds it
    assert unblocked(objects.TOO_SMALL, objects.LLAMA_70B) == 1.0
