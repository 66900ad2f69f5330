"""The scheduling path end to end: a real kube-scheduler with `aim-extender serve` registered (its
configuration from extender.scheduler_config, v1beta3), in both nodeCacheCapable modes, placing
pods on API-only nodes whose partition labels come from sizing.contract.node_labels."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sizing.contract import ANNOTATION_MAX_MODEL_LEN, ANNOTATION_PRECISION, LABEL_KEYS, RESOURCE_NAME
from tests.controlplane.gpu_cluster import (
    POOL,
    NodeSpec,
    Pool,
    bound_node,
    create_pool,
    delete_pool,
    failed_scheduling,
    force_delete_pod,
    gpu_pod,
    model_annotations,
    nodes_with,
    submit,
)
from tests.controlplane.harness import ControlPlane, RunningExtender
from tests.controlplane.processes import ManagedProcess, wait_until

LLAMA_8B = model_annotations("meta-llama/Llama-3.1-8B-Instruct", "fp16")  # ~20 GiB: fits 24 GiB and up
QWEN_14B = model_annotations("Qwen/Qwen3-14B", "fp16")  # ~34 GiB: fits 48 GiB and up
LLAMA_70B = model_annotations("meta-llama/Llama-3.3-70B-Instruct", "fp16")  # ~151 GiB: only 192 GiB
QWEN_235B = model_annotations("Qwen/Qwen3-235B-A22B", "fp8")  # ~249 GiB: an MI325X SPX, none here
QWEN_32B = model_annotations("Qwen/Qwen3-32B", "fp8")  # ~22 GiB per rank with tensor parallel 2


@dataclass(frozen=True)
class Scheduling:
    """One extender + one kube-scheduler calling it, in one node-cache mode."""

    plane: ControlPlane
    mode: str
    extender: RunningExtender
    scheduler_name: str
    scheduler: ManagedProcess

    def metric(self, name: str) -> float:
        return self.extender.metrics().get(name, 0.0)


@pytest.fixture(scope="module", params=["watch", "off"], ids=["nodeCacheCapable", "full-nodes"])
def scheduling(request: pytest.FixtureRequest, control_plane: ControlPlane) -> Iterator[Scheduling]:
    mode = request.param
    extender = control_plane.start_extender(node_cache=mode)
    name = f"aim-gpu-scheduler-{mode}"
    scheduler = control_plane.start_scheduler(extender.scheduler_config(name, node_cache_capable=mode == "watch"),
                                              name=name)
    yield Scheduling(control_plane, mode, extender, name, scheduler)
    control_plane.stop_process(scheduler)
    control_plane.stop_process(extender.process)


@pytest.fixture
def pool(request: pytest.FixtureRequest, scheduling: Scheduling) -> Iterator[Pool]:
    """The seven-node pool (gpu_cluster.POOL) for one test, known to the extender's cache."""
    prefix = f"{scheduling.mode}-{request.node.name.split('[')[0].removeprefix('test_')[:20]}".replace("_", "-")
    specs: tuple[NodeSpec, ...] = getattr(request, "param", POOL)
    created = create_pool(scheduling.plane, prefix.rstrip("-"), specs)
    total = len(scheduling.plane.core.list_node().items)
    # Both must know every node before a pod arrives, or best fit is judged among fewer nodes.
    scheduling.plane.wait_for_scheduler_cache(scheduling.scheduler, nodes=total, timeout=10.0)
    if scheduling.mode == "watch":
        wait_until(lambda: scheduling.metric("aim_extender_cache_nodes") == total, 10.0,
                   "the extender's node cache to hold every node")
    yield created
    delete_pool(scheduling.plane, created)


def test_fits_several_nodes_goes_to_the_best_fit_through_prioritize(
        scheduling: Scheduling, pool: Pool, namespace: str) -> None:
    core = scheduling.plane.core
    before = scheduling.metric('aim_extender_request_duration_seconds_count{verb="prioritize"}')
    for pod, wanted, best in (("llama-8b", LLAMA_8B, "cpx8"), ("qwen-14b", QWEN_14B, "qpx")):
        submit(core, namespace, gpu_pod(pod, scheduler=scheduling.scheduler_name,
                                        pool=pool.prefix, annotations=wanted))
        # 24 GiB partitions on cpx8 (8) and cpx16 (16): the fewest free partitions wins.
        assert bound_node(core, namespace, pod) == pool[best], f"{pod} not on the best-fit node {pool[best]}"
    after = scheduling.metric('aim_extender_request_duration_seconds_count{verb="prioritize"}')
    assert after - before >= 2, "kube-scheduler did not call /prioritize for pods with several feasible nodes"


def test_fits_exactly_one_node(scheduling: Scheduling, pool: Pool, namespace: str) -> None:
    core = scheduling.plane.core
    submit(core, namespace, gpu_pod("llama-70b", scheduler=scheduling.scheduler_name,
                                    pool=pool.prefix, annotations=LLAMA_70B))
    assert bound_node(core, namespace, "llama-70b") == pool["spx"]


def test_fits_no_node_stays_pending_with_our_reason(
        scheduling: Scheduling, pool: Pool, namespace: str) -> None:
    core = scheduling.plane.core
    submit(core, namespace, gpu_pod("qwen-235b", scheduler=scheduling.scheduler_name,
                                    pool=pool.prefix, annotations=QWEN_235B))
    message = failed_scheduling(core, namespace, "qwen-235b", contains="gpu partition too small")
    for size in ("24 GiB", "32 GiB", "48 GiB", "96 GiB", "192 GiB"):
        assert f"gpu partition too small for model ({size} < 249" in message, message
    assert message.startswith("0/"), message
    assert nodes_with(message, "gpu partition too small for model") == len(POOL) - 1, message
    # A too-small partition is unresolvable: no preemption victims are searched on the GPU nodes
    # (the one without GPUs fails in-tree, Insufficient amd.com/gpu-partition).
    assert nodes_with(message, "No preemption victims found") <= 1, message
    events = scheduling.plane.kubectl("get", "events", "-n", namespace, "-o", "wide").stdout
    assert "FailedScheduling" in events and "gpu partition too small for model (192 GiB < 249" in events


@pytest.mark.parametrize(("annotations", "expected"), [
    pytest.param(model_annotations("acme/not-a-model", "fp16"), "unknown model 'acme/not-a-model'",
                 id="unknown-model"),
    pytest.param({**LLAMA_8B, ANNOTATION_PRECISION: "fp7"}, "invalid pod annotation aim.amd.com/precision='fp7'",
                 id="bad-precision"),
    pytest.param({**LLAMA_8B, ANNOTATION_MAX_MODEL_LEN: "lots"},
                 "invalid pod annotation aim.amd.com/max-model-len='lots'", id="garbled-max-model-len"),
    pytest.param({**LLAMA_8B, ANNOTATION_MAX_MODEL_LEN: "9" * 40}, "invalid pod annotation aim.amd.com/max-model-len=",
                 id="huge-max-model-len"),
])
def test_pod_level_problem_rejects_every_gpu_node_naming_the_annotation(
        scheduling: Scheduling, pool: Pool, namespace: str,
        annotations: dict[str, str], expected: str) -> None:
    core = scheduling.plane.core
    submit(core, namespace, gpu_pod("bad", scheduler=scheduling.scheduler_name,
                                    pool=pool.prefix, annotations=annotations))
    message = failed_scheduling(core, namespace, "bad", contains=expected)
    gpu_nodes = sum(1 for spec in POOL if spec.count)
    assert nodes_with(message, expected) == gpu_nodes, f"every GPU node should carry the reason: {message}"
    # Unresolvable: kube-scheduler does not try to preempt anything for it.
    assert nodes_with(message, "No preemption victims found") <= 1, message


def test_pod_without_annotations_is_placed_by_count(
        scheduling: Scheduling, pool: Pool, namespace: str) -> None:
    core = scheduling.plane.core
    submit(core, namespace, gpu_pod("plain", scheduler=scheduling.scheduler_name,
                                    pool=pool.prefix))
    node = bound_node(core, namespace, "plain")
    assert node != pool["cpu"]
    # Unsized: packing alone decides, fewest free partitions first (the one-partition node).
    assert node == pool["spx"]


def test_tensor_parallel_two_takes_two_partitions_of_the_best_fit(
        scheduling: Scheduling, pool: Pool, namespace: str) -> None:
    core = scheduling.plane.core
    submit(core, namespace, gpu_pod("tp2", scheduler=scheduling.scheduler_name,
                                    pool=pool.prefix, partitions=2, annotations=QWEN_32B))
    assert bound_node(core, namespace, "tp2") == pool["cpx8"]
    describe = scheduling.plane.kubectl("describe", "node", pool["cpx8"]).stdout
    allocated = describe.split("Allocated resources:", 1)[1]
    assert any(line.split() == [RESOURCE_NAME, "2", "2"] for line in allocated.splitlines()), allocated


SMALL_POOL = (NodeSpec("qpx", "MI300X", "QPX", "NPS1", 76, 48, 4),)


@pytest.mark.parametrize("pool", [SMALL_POOL], indirect=True, ids=["one-qpx-node"])
def test_full_node_leaves_pods_pending_until_pods_are_deleted(
        scheduling: Scheduling, pool: Pool, namespace: str) -> None:
    core = scheduling.plane.core
    for name in ("a", "b"):
        submit(core, namespace, gpu_pod(name, scheduler=scheduling.scheduler_name,
                                        pool=pool.prefix, partitions=2, annotations=QWEN_32B))
        assert bound_node(core, namespace, name) == pool["qpx"]
    pending = gpu_pod("c", scheduler=scheduling.scheduler_name, pool=pool.prefix, partitions=2,
                      annotations=QWEN_32B)
    submit(core, namespace, pending)
    message = failed_scheduling(core, namespace, "c")
    assert "Insufficient amd.com/gpu-partition" in message or "not enough free gpu partitions" in message, message
    if scheduling.mode == "watch":
        assert_extender_sees_the_node_full(scheduling, namespace, pool["qpx"])
    force_delete_pod(core, namespace, "a")
    assert bound_node(core, namespace, "c") == pool["qpx"], "capacity freed by the deleted pod was not reused"


def assert_extender_sees_the_node_full(scheduling: Scheduling, namespace: str, node: str) -> None:
    """With nodeCacheCapable the extender counts bound pods itself (its pod cache)."""
    core = scheduling.plane.core
    wait_until(lambda: scheduling.metric("aim_extender_cache_pods") >= 2, 10.0, "the pod cache to hold a and b")
    pod = core.api_client.sanitize_for_serialization(core.read_namespaced_pod("c", namespace))
    verdict = scheduling.extender.post("/filter", {"Pod": pod, "Nodes": None, "NodeNames": [node]}).json()
    assert "not enough free gpu partitions (0 free < 2 requested)" in str(verdict.get("FailedNodes")), verdict


def test_describe_node_shows_capacity_allocation_and_labels(
        scheduling: Scheduling, pool: Pool, namespace: str) -> None:
    core = scheduling.plane.core
    submit(core, namespace, gpu_pod("llama-8b", scheduler=scheduling.scheduler_name,
                                    pool=pool.prefix, annotations=LLAMA_8B))
    node = bound_node(core, namespace, "llama-8b")
    text = scheduling.plane.kubectl("describe", "node", node).stdout
    capacity = text.split("Capacity:", 1)[1].split("Allocatable:", 1)[0]
    assert f"{RESOURCE_NAME}:  8" in capacity, capacity
    allocated = text.split("Allocated resources:", 1)[1]
    assert any(line.split() == [RESOURCE_NAME, "1", "1"] for line in allocated.splitlines()), allocated
    labels = text.split("Labels:", 1)[1].split("Annotations:", 1)[0]
    for key in LABEL_KEYS:
        assert f"{key}=" in labels, f"label {key} missing from describe:\n{labels}"
    assert "amd.com/gpu-partition.memory-mib=24576" in labels
    assert "llama-8b" in text.split("Non-terminated Pods:", 1)[1].split("Allocated resources:", 1)[0]
