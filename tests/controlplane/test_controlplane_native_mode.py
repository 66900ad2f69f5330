"""Native mode end to end on the real kube-scheduler 1.25: ``aim-extender serve`` with the admission
webhook (registered with the API server, called over TLS) writes the node affinity, kube-scheduler
runs the native profile (``native_scheduler_config``: no extender) and places best fit across three
partition sizes; a pod no node holds gets the extender's explanation as an Event from the same
process (one per pod and reason); and a high-priority 70B pod preempts only where it fits, in native
mode and with the extender. kube-scheduler 1.25 picks preemption victims with its own plugins and
asks only extenders with a preemptVerb (preemption.go callExtenders): for a pod with the webhook's
required ``memory-mib Gt`` NodeAffinity already rules the too-small nodes out; for one without it
(created where the webhook does not look), the extender's /preempt does. Skipped without the
control-plane binaries."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from decision.requirement import Sizer
from extender.pending_events import PendingExplainer
from extender.scheduler_config import (
    API_V1BETA3,
    native_scheduler_config,
)
from extender.watch import node_informer, pod_informer
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
from tests.controlplane.harness import ControlPlane, RunningExtender
from tests.controlplane.processes import ManagedProcess, free_port, wait_until

WEBHOOK_MANIFEST = Path(__file__).resolve().parents[2] / "manifests" / "webhook" / "mutatingwebhookconfiguration.yaml"
NATIVE = "aim-native"
EXTENDER = "aim-with-extender"
WEBHOOK = "aim-gpu-webhook-native-test"
RAW = "raw"  # the preemption pool of a pod the webhook never saw
PRIORITY_HIGH, PRIORITY_LOW, PRIORITY_LOWEST = "aim-native-high", "aim-native-low", "aim-native-lowest"
READY_TIMEOUT_SECONDS = 60.0
# Three partition sizes of MI300X as gpus.json gives them: CPX 24 GiB, QPX 48 GiB, DPX 96 GiB.
FIT = (NodeSpec("cpx", "MI300X", "CPX", "NPS4", 38, 24, 8), NodeSpec("qpx", "MI300X", "QPX", "NPS1", 76, 48, 4),
       NodeSpec("dpx", "MI300X", "DPX", "NPS1", 152, 96, 2))
# Busy partitions in the best-fit pool: after one more pod the DPX node is the fullest, then QPX.
BUSY = {"cpx": 0, "qpx": 2, "dpx": 1}
# Preemption pools (one per mode): every partition taken; the small partitions by the lowest priority.
FULL = (NodeSpec("cpx", "MI300X", "CPX", "NPS4", 38, 24, 8), NodeSpec("dpx", "MI300X", "DPX", "NPS1", 152, 96, 2))


@dataclass
class Native:
    plane: ControlPlane
    namespace: str
    fit: Pool
    full: dict[str, Pool]  # scheduler name (or RAW) -> its preemption pool
    extender: RunningExtender


def webhook_configuration(port: int, namespace: str, ca_bundle: bytes) -> dict[str, Any]:
    """The shipped configuration, called by URL and limited to this test's namespace."""
    document = next(d for d in yaml.safe_load_all(WEBHOOK_MANIFEST.read_text()) if d)
    document["metadata"]["name"] = WEBHOOK
    document["webhooks"] = document["webhooks"][:1]
    (hook,) = document["webhooks"]
    hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}/mutate", "caBundle": base64.b64encode(ca_bundle).decode()}
    hook["namespaceSelector"]["matchExpressions"].append(
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]})
    return document


def model_pod(name: str, pool: Pool, annotations: Mapping[str, str], *, scheduler: str | None = None,
              partitions: int | None = None, priority: str | None = None, node: str | None = None) -> dict[str, Any]:
    """A serving pod as a user writes it: the model annotation, maybe a partition count; the webhook
    does the rest (the scheduler name too, unless one is given)."""
    container: dict[str, Any] = {"name": "vllm", "image": IMAGE}
    if partitions is not None:
        count = {RESOURCE_NAME: str(partitions)}
        container["resources"] = {"limits": count, "requests": count}
    spec: dict[str, Any] = {"nodeSelector": {POOL_LABEL: pool.prefix}, "terminationGracePeriodSeconds": 0,
                            "containers": [container]}
    if scheduler is not None:
        spec["schedulerName"] = scheduler
    if priority is not None:
        spec["priorityClassName"] = priority
    if node is not None:
        spec["nodeName"] = node  # bound without a scheduler, as a running workload would be
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "annotations": dict(annotations)},
            "spec": spec}


def busy_pod(name: str, pool: Pool, node: str, priority: str) -> dict[str, Any]:
    """A running workload holding one partition (not opted in: the webhook leaves it alone)."""
    pod = model_pod(name, pool, {}, partitions=1, priority=priority, node=node)
    pod["spec"]["schedulerName"] = "nobody"
    return pod


def pods_on(core: client.CoreV1Api, namespace: str, node: str) -> set[str]:
    return {p.metadata.name for p in core.list_namespaced_pod(namespace, field_selector=f"spec.nodeName={node}").items
            if p.metadata.deletion_timestamp is None}


@pytest.fixture(scope="module")
def native(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Native]:
    plane = control_plane
    namespace = plane.create_namespace("native")
    plane.kubectl("label", "namespace", namespace, "aim.amd.com/admission=enabled")
    fit = create_pool(plane, "nat-fit", FIT)
    full = {NATIVE: create_pool(plane, "nat-full", FULL), EXTENDER: create_pool(plane, "ext-full", FULL),
            RAW: create_pool(plane, "raw-full", FULL)}
    schedulers: list[ManagedProcess] = []
    extender: RunningExtender | None = None
    try:
        for name, value in ((PRIORITY_HIGH, 1000), (PRIORITY_LOW, 10), (PRIORITY_LOWEST, 1)):
            plane.kubectl("apply", "-f", "-", stdin=json.dumps({
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
                "value": value}))
        bound = 0
        for suffix, count in BUSY.items():
            for i in range(count):
                submit(plane.core, namespace, busy_pod(f"busy-{suffix}-{i}", fit, fit[suffix], PRIORITY_LOW))
                bound += 1
        for mode, pool in full.items():
            for spec in FULL:
                for i in range(spec.count):
                    priority = PRIORITY_LOWEST if spec.suffix == "cpx" else PRIORITY_LOW
                    submit(plane.core, namespace, busy_pod(f"{mode}-{spec.suffix}-{i}", pool, pool[spec.suffix],
                                                           priority))
                    bound += 1
        # The webhook (and the pending explainer) in aim-extender serve, as the chart runs it.
        tls = plane.ca.issue("native-webhook", "127.0.0.1", ip_addresses=("127.0.0.1",), server=True)
        port = free_port()
        extender = plane.start_extender(node_cache="watch", extra_args=[
            f"--kubeconfig={plane.kubeconfig}", f"--webhook-port={port}", f"--webhook-cert-file={tls.cert}",
            f"--webhook-key-file={tls.key}", f"--webhook-scheduler-name={NATIVE}"])
        plane.kubectl("apply", "-f", "-", stdin=json.dumps(webhook_configuration(
            port, namespace, plane.ca.cert_path.read_bytes())))

        def sized_against_the_nodes() -> bool:
            probe = model_pod("probe", fit, {"aim.amd.com/model": "Qwen/Qwen3-8B"})
            done = plane.kubectl("create", "--dry-run=server", "-n", namespace, "-o", "json", "-f", "-",
                                 stdin=json.dumps(probe), check=False)
            return done.returncode == 0 and "no node advertises" not in done.stderr and (
                "aim.amd.com/admission" in json.loads(done.stdout)["metadata"]["annotations"])

        wait_until(sized_against_the_nodes, READY_TIMEOUT_SECONDS, "the webhook to size against the nodes")
        configs = {
            NATIVE: native_scheduler_config(API_V1BETA3, scheduler_name=NATIVE, leader_election=False),
            EXTENDER: extender.scheduler_config(EXTENDER),
        }
        assert configs[EXTENDER]["extenders"][0]["preemptVerb"] == "preempt"  # extender/service.py preempt
        for name, configuration in configs.items():
            schedulers.append(plane.start_scheduler(configuration, name=name))
            plane.wait_for_scheduler_cache(schedulers[-1], nodes=len(FIT) + 3 * len(FULL), pods=bound,
                                           timeout=READY_TIMEOUT_SECONDS)
        yield Native(plane, namespace, fit, full, extender)
    finally:
        plane.kubectl("delete", "mutatingwebhookconfiguration", WEBHOOK, "--ignore-not-found")
        for process in schedulers:
            plane.stop_process(process)
        if extender is not None and extender.process.running:
            plane.stop_process(extender.process)
        plane.delete_namespace(namespace)
        for pool in (fit, *full.values()):
            delete_pool(plane, pool)
        plane.kubectl("delete", "priorityclass", PRIORITY_HIGH, PRIORITY_LOW, PRIORITY_LOWEST, "--ignore-not-found")


def test_native_mode_places_webhook_sized_pods_best_fit_across_three_sizes(native: Native) -> None:
    """Fullness alone (MostAllocated) would put each pod on the fullest node, DPX: the webhook's
    preferred terms put each on the smallest size that holds it instead."""
    core, ns, fit = native.plane.core, native.namespace, native.fit
    submit(core, ns, model_pod("llama-8b", fit, {"aim.amd.com/model": "meta-llama/Llama-3.1-8B-Instruct"}))
    stored = core.read_namespaced_pod("llama-8b", ns)
    assert stored.spec.scheduler_name == NATIVE
    preferred = stored.spec.affinity.node_affinity.preferred_during_scheduling_ignored_during_execution
    assert preferred and all(t.preference.match_expressions[0].key == LABEL_MEMORY_MIB for t in preferred)
    assert bound_node(core, ns, "llama-8b") == fit["cpx"]  # ~20 GiB: 24 GiB partitions
    submit(core, ns, model_pod("thirty", fit, {"aim.amd.com/model": "Qwen/Qwen3-8B", "aim.amd.com/memory": "30Gi"}))
    assert bound_node(core, ns, "thirty") == fit["qpx"]  # 30 GiB: 48 GiB partitions, not the fuller DPX node
    submit(core, ns, model_pod("qwen-32b", fit, {"aim.amd.com/model": "Qwen/Qwen3-32B"}))
    assert bound_node(core, ns, "qwen-32b") == fit["dpx"]  # ~72 GiB: only 96 GiB partitions hold it


def explainer_events(native: Native, pod: str) -> list[client.CoreV1Event]:
    """The pending explainer's Events on ``pod``."""
    events = native.plane.core.list_namespaced_event(native.namespace, field_selector=f"involvedObject.name={pod}")
    return [e for e in events.items if e.source and e.source.component == "aim-gpu-extender"]


def test_a_pod_no_node_holds_gets_one_event_naming_its_size_and_the_fix(native: Native) -> None:
    plane, ns = native.plane, native.namespace
    # Llama-3.3-70B fp16 on the user's one partition: ~151 GiB; no node of the cluster has that
    # (admitted with a warning: a known GPU does), so it waits, and kube-scheduler only says affinity.
    annotations = {"aim.amd.com/model": "meta-llama/Llama-3.3-70B-Instruct", "aim.amd.com/precision": "fp16"}
    submit(plane.core, ns, model_pod("llama-70b", native.fit, annotations, partitions=1))
    failed_scheduling(plane.core, ns, "llama-70b", contains="didn't match Pod's node affinity")

    def ours() -> list[client.CoreV1Event]:
        return explainer_events(native, "llama-70b")

    (event,) = wait_until(ours, READY_TIMEOUT_SECONDS, "the pending explainer's Event")
    assert event.reason == "PartitionTooSmall" and event.type == "Warning"
    assert event.message.startswith("meta-llama/Llama-3.3-70B-Instruct fp16 ctx 8192 needs a partition with"
                                    " >= 151.1 GiB;")
    assert event.message.endswith("the smallest that holds it is MI300X SPX (192 GiB): repartition a node, or lower"
                                  " max-model-len or precision")
    # The pod changes (MODIFIED events) and a second explainer (another replica, or this one after a
    # restart) looks at it: still one Event.
    for i in range(3):
        plane.core.patch_namespaced_pod("llama-70b", ns, {"metadata": {"labels": {"touched": str(i)}}})
    second = PendingExplainer(plane.core, Sizer(), nodes=node_informer(plane.core),
                              pods=pod_informer(plane.core, pending=True), scheduler_name=NATIVE)
    second.nodes.replace(plane.api.sanitize_for_serialization(plane.core.list_node())["items"])
    second.consider(plane.api.sanitize_for_serialization(plane.core.read_namespaced_pod("llama-70b", ns)))
    assert len(ours()) == 1


def test_a_pod_pinned_to_a_pool_is_told_the_largest_partition_there(native: Native) -> None:
    """The note judges the nodes the pod may run on (issue 19): pinned to the 48 GiB node by a required
    affinity of its own, Qwen3-32B (~72 GiB) hears of 48 GiB, not of the 96 GiB partitions elsewhere."""
    plane, ns = native.plane, native.namespace
    pod = model_pod("qwen-on-qpx", native.fit, {"aim.amd.com/model": "Qwen/Qwen3-32B"})
    pod["spec"]["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [native.fit["qpx"]]}]}]}}}
    submit(plane.core, ns, pod)
    (event,) = wait_until(lambda: explainer_events(native, "qwen-on-qpx"), READY_TIMEOUT_SECONDS,
                          "the pending explainer's Event")
    assert event.reason == "PartitionTooSmall"
    assert "; the largest on the nodes it may run on is 48 GiB;" in event.message, event.message
    plane.core.delete_namespaced_pod("qwen-on-qpx", ns)


def _preempts_only_where_it_fits(native: Native, scheduler: str) -> None:
    core, ns, pool = native.plane.core, native.namespace, native.full[scheduler]
    small_before = pods_on(core, ns, pool["cpx"])
    assert len(small_before) == 8 and len(pods_on(core, ns, pool["dpx"])) == 2
    # Llama-3.3-70B fp8: ~80 GiB on one partition, only the 96 GiB partitions hold it. The 24 GiB
    # node's pods have the LOWEST priority: evicting there would be the scheduler's first choice
    # if it did not know the partitions are too small.
    name = f"llama-70b-{scheduler}"
    annotations = {"aim.amd.com/model": "meta-llama/Llama-3.3-70B-Instruct", "aim.amd.com/precision": "fp8"}
    submit(core, ns, model_pod(name, pool, annotations, scheduler=scheduler, priority=PRIORITY_HIGH))
    assert bound_node(core, ns, name, timeout=READY_TIMEOUT_SECONDS) == pool["dpx"]
    assert pods_on(core, ns, pool["cpx"]) == small_before  # no victim on the too-small node
    assert len(pods_on(core, ns, pool["dpx"]) - {name}) == 1  # one victim where it fits


def test_native_mode_preempts_only_on_a_node_where_the_pod_fits(native: Native) -> None:
    _preempts_only_where_it_fits(native, NATIVE)


def test_extender_mode_preempts_only_on_a_node_where_the_pod_fits(native: Native) -> None:
    _preempts_only_where_it_fits(native, EXTENDER)


def test_extender_mode_preempts_only_where_the_pod_fits_without_the_webhooks_affinity(native: Native) -> None:
    """A pod with the model annotation but no node affinity (created in a namespace the webhook does
    not look at): kube-scheduler's plugins see only the partition count, so they would evict on the
    24 GiB node (lowest-priority victims); the extender's /preempt drops that candidate. Without the
    preemptVerb one pod on the 24 GiB node was evicted for nothing (then the filter refused the node
    and a second preemption evicted on the 96 GiB node)."""
    plane, pool = native.plane, native.full[RAW]
    other = plane.create_namespace("native-raw")
    try:
        small_before = pods_on(plane.core, native.namespace, pool["cpx"])
        annotations = {"aim.amd.com/model": "meta-llama/Llama-3.3-70B-Instruct", "aim.amd.com/precision": "fp8"}
        raw = model_pod("raw-70b", pool, annotations, scheduler=EXTENDER, priority=PRIORITY_HIGH, partitions=1)
        submit(plane.core, other, raw)
        assert bound_node(plane.core, other, "raw-70b", timeout=READY_TIMEOUT_SECONDS) == pool["dpx"]
        assert plane.core.read_namespaced_pod("raw-70b", other).spec.affinity is None  # the webhook never saw it
        assert pods_on(plane.core, native.namespace, pool["cpx"]) == small_before
        assert len(pods_on(plane.core, native.namespace, pool["dpx"])) == 1
        assert native.extender.metrics().get('aim_extender_request_duration_seconds_count{verb="preempt"}', 0) >= 1
    finally:
        plane.delete_namespace(other)
