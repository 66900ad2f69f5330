"""The controller against the real control plane (API-only nodes): kube-scheduler with our
extender places the pods, a DCM stand-in (dcm_standin.py) answers the profile label and
re-advertises partitions as our device plugin would, and ``aim-partitioner controller`` runs as a
child process with test-sized timeouts."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client

from partitioner import dcm
from partitioner.controller import keys
from sizing.contract import LABEL_COMPUTE_MODE, LABEL_COUNT, RESOURCE_NAME
from tests.controlplane.gpu_cluster import bound_node, gpu_pod, submit
from tests.controlplane.harness import ControlPlane
from tests.controlplane.nodes import delete_nodes
from tests.controlplane.processes import wait_until
from tests.partitioner_controller.controller_process import RunningController, start_controller, stop_controllers
from tests.partitioner_controller.dcm_standin import DcmStandIn
from tests.partitioner_controller.objects import (
    LLAMA_8B,
    LLAMA_70B,
    OPERATOR_PROFILES,
    QWEN_14B,
    memory_affinity,
    partition_labels,
)

RBAC = Path(__file__).resolve().parents[2] / "manifests" / "partitioner" / "rbac.yaml"
SCHEDULER = "aim-controller-test-scheduler"
POOL_LABEL = "aim.test/pool"
# Binding after a repartition: the scheduler retries the pod on the node update (backoff 1 s in
# this scheduler's configuration), plus the controller's steps (each a fraction of a second);
# seconds in all. 60 s: a loaded CI machine once stalled one API call of the controller for
# ~30 s (kube.TIMEOUT's read timeout), and these tests check what happens, not how fast.
BIND_TIMEOUT = 60.0


@dataclass(frozen=True)
class Scheduling:
    plane: ControlPlane


@pytest.fixture(scope="module")
def scheduling(control_plane: ControlPlane) -> Iterator[Scheduling]:
    extender = control_plane.start_extender(node_cache="watch")
    config = extender.scheduler_config(SCHEDULER)
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
    cluster_scoped: list[tuple[str, str]] = field(default_factory=list)
    controllers: list[RunningController] = field(default_factory=list)  # stopped by the fixture

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

    def pod(self, name: str, annotations: dict[str, str], partitions: int = 1,
            memory_mib_above: int | None = None) -> None:
        body = gpu_pod(name, scheduler=SCHEDULER, pool=self.prefix, partitions=partitions, annotations=annotations)
        if memory_mib_above is not None:  # as our admission webhook sizes it
            body["spec"]["affinity"] = memory_affinity(memory_mib_above)
        submit(self.core, self.namespace, body)

    def pending_for_size(self, name: str, reason: str = "gpu partition too small for model") -> None:
        """Wait until kube-scheduler has marked the pod unschedulable with ``reason`` (its
        PodScheduled condition: what the controller reads)."""
        def marked() -> bool:
            pod = _pod(self, name)
            return any(c.type == "PodScheduled" and c.status == "False" and reason in (c.message or "")
                       for c in (pod.status.conditions or []))

        wait_until(marked, BIND_TIMEOUT, f"pod {name} to be unschedulable for partition size")

    def controller(self, name: str, *extra: str, kubeconfig: str | None = None) -> RunningController:
        running = start_controller(self.plane, name, namespace=self.namespace, configmap=f"dcm-{self.prefix}",
                                   extra=("--mode=apply", *extra), kubeconfig=kubeconfig)
        self.controllers.append(running)
        return running

    def least_privilege(self, lease: str) -> str:
        """A kubeconfig of the controller's ServiceAccount bound to manifests/partitioner/rbac.yaml,
        its namespaces and names moved to this test's (so the rules themselves are tested)."""
        docs = list(yaml.safe_load_all(RBAC.read_text()))
        renamed = {"aim-partitioner-controller": f"{self.prefix}-controller"}
        names = {"aim-partitioner-controller": lease, "config-manager-config": f"dcm-{self.prefix}"}
        for doc in docs:
            meta = doc["metadata"]
            if doc["kind"].startswith("Cluster"):
                meta["name"] = renamed.get(meta["name"], meta["name"])
                self.cluster_scoped.append((doc["kind"], meta["name"]))
            if "namespace" in meta:
                meta["namespace"] = self.namespace
            if doc["kind"] == "ClusterRoleBinding":
                doc["roleRef"]["name"] = renamed[doc["roleRef"]["name"]]
            for subject in doc.get("subjects", []):
                subject["namespace"] = self.namespace
            for rule in doc.get("rules", []):
                if "resourceNames" in rule:
                    rule["resourceNames"] = [names[n] for n in rule["resourceNames"]]
        self.plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
        return str(self.plane.service_account_kubeconfig(self.namespace, "aim-partitioner-controller", create=True))

    def bound(self, pod: str, controller: RunningController) -> str:
        """The node the pod is bound to, waiting; on a timeout the controller's log is quoted."""
        try:
            return bound_node(self.core, self.namespace, pod, timeout=BIND_TIMEOUT)
        except TimeoutError as error:
            raise AssertionError(f"{error}; {self.describe(pod)}; controller log:\n"
                                 f"{controller.process.log_tail(80)}") from None

    def describe(self, pod: str) -> str:
        """What a failure message needs: the pod's scheduling condition and each node's mode,
        repartition state, cordon and taints as the API has them now."""
        conditions = _pod(self, pod).status.conditions or []
        said = [f"{c.reason}: {c.message}" for c in conditions if c.type == "PodScheduled" and c.status == "False"]
        nodes = []
        for name in self.nodes:
            try:
                found = self.read(name)
            except client.ApiException as error:
                nodes.append(f"{name}: HTTP {error.status}")
                continue
            labels, annotations = found.metadata.labels or {}, found.metadata.annotations or {}
            nodes.append(f"{name}: {labels.get(LABEL_COMPUTE_MODE)}, state {annotations.get(keys.STATE)}, "
                         f"cordoned {bool(found.spec.unschedulable)}, taints "
                         f"{[t.key for t in found.spec.taints or []]}")
        return f"pod {pod} unschedulable: {said or 'no'}; nodes: {'; '.join(nodes)}"

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
    stop_controllers(plane, made.controllers)
    dcm.stop()
    for kind, name in made.cluster_scoped:
        plane.kubectl("delete", kind.lower(), name, "--ignore-not-found")
    delete_nodes(plane.core, made.nodes)


def test_pending_70b_on_all_cpx_makes_one_idle_node_spx_and_never_touches_opt_out(cluster: Cluster) -> None:
    out = cluster.node("a-optout", opted_in=False)  # first by name: it would be chosen if it were allowed
    b, c = cluster.node("b"), cluster.node("c")
    # The GPU Operator's own entries in the DCM ConfigMap must survive the controller's writes.
    theirs: dict[str, Any] = {"gpu-config-profiles": {"default": {"skippedGPUs": {"ids": []}, "profiles": [
        {"computePartition": "SPX", "memoryPartition": "NPS1"}]}},
        "gpuClientSystemdServices": {"names": ["amd-metrics-exporter", "gpuagent"]}}
    cluster.core.create_namespaced_config_map(cluster.namespace, cast(Any, dcm.configmap(
        theirs, name=f"dcm-{cluster.prefix}", namespace=cluster.namespace)))
    before = cluster.read(out).metadata
    cluster.pod("llama-70b", LLAMA_70B)
    cluster.pending_for_size("llama-70b")
    # As its ServiceAccount with exactly the manifests' RBAC: the rules are enough. (That they
    # are no broader is checked in tests/controlplane/test_controlplane_least_privilege.py.)
    controller = cluster.controller("spx", kubeconfig=cluster.least_privilege("ctl-spx"))
    node = cluster.bound("llama-70b", controller)
    assert node in (b, c)
    found = cluster.read(node)
    assert found.metadata.labels[LABEL_COMPUTE_MODE] == "SPX"
    assert found.metadata.labels[keys.DCM_PROFILE_LABEL] == "spx_nps1_1gpu"
    assert found.status.allocatable[RESOURCE_NAME] == "1"
    assert cluster.is_clean(node)
    assert cluster.condition(node)["status"] == "True"
    other = c if node == b else b
    assert cluster.dcm.requests(node) == ["spx_nps1_1gpu"] and cluster.dcm.requests(other) == []
    written = json.loads(_configmap(cluster).data[dcm.CONFIG_KEY])
    assert written["gpuClientSystemdServices"] == theirs["gpuClientSystemdServices"]
    assert {"default", "spx_nps1_1gpu", "cpx_nps4_1gpu"} <= set(written["gpu-config-profiles"])
    assert written["gpu-config-profiles"]["default"] == theirs["gpu-config-profiles"]["default"]
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


def test_dcm_failure_timeout_and_a_vanished_node_undo_cleanly_and_back_off(cluster: Cluster) -> None:
    failing, silent = cluster.node("b-fail", behaviour="fail"), cluster.node("c-silent", behaviour="ignore")
    vanishing = cluster.node("d-vanish", behaviour="hold")
    for name in ("llama-70b-1", "llama-70b-2", "llama-70b-3"):
        cluster.pod(name, LLAMA_70B)
        cluster.pending_for_size(name)
    controller = cluster.controller("dcm", "--dcm-timeout-seconds=3", "--max-in-flight=3")
    wait_until(lambda: cluster.dcm.requests(vanishing), BIND_TIMEOUT, f"the DCM request for {vanishing}")
    cluster.core.delete_node(vanishing)  # e.g. the machine was removed while DCM worked
    wait_until(lambda: any(e.reason == "NodeVanished" for e in cluster.core.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={vanishing}").items), 10, "a NodeVanished Event")
    for node, reason in ((failing, "PartitionFailure"), (silent, "DCMTimeout")):
        wait_until(lambda n=node, r=reason: cluster.condition(n).get("reason") == r, BIND_TIMEOUT,  # type: ignore[misc]
                   f"condition {reason} on {node}")
        assert cluster.is_clean(node), f"taint or cordon left behind on {node}"
        found = cluster.read(node)
        assert found.metadata.labels[LABEL_COMPUTE_MODE] == "CPX"
        assert keys.BACKOFF_UNTIL in found.metadata.annotations
        assert cluster.condition(node)["status"] == "False"
        wait_until(lambda n=node, r=reason: any(  # type: ignore[misc]
            e.reason == r and e.type == "Warning" for e in cluster.core.list_namespaced_event(
                "default", field_selector=f"involvedObject.name={n}").items), 5, f"a Warning Event {reason}")
    wait_until(lambda: controller.metric('aim_partitioner_repartitions_total{result="failed"}') == 3, 5,
               "the failures to be counted")
    assert controller.metric('aim_partitioner_repartitions_total{result="started"}') == 3
    wait_until(lambda: controller.metric('aim_partitioner_nodes{state="backoff"}') == 2, 5, "two nodes backing off")
    # Backing off: the pods are still pending and neither node is tried again.
    assert all(_pod(cluster, f"llama-70b-{i}").spec.node_name is None for i in (1, 2, 3))
    assert len(cluster.dcm.requests(failing)) == 1 and len(cluster.dcm.requests(silent)) == 1
    cluster.plane.stop_process(controller.process)


def test_controller_killed_mid_way_resumes_from_the_node_annotations(cluster: Cluster) -> None:
    node = cluster.node("b", behaviour="hold")
    cluster.pod("llama-70b", LLAMA_70B)
    cluster.pending_for_size("llama-70b")
    first = cluster.controller("resume")
    wait_until(lambda: cluster.dcm.requests(node), BIND_TIMEOUT, "the DCM profile request")
    first.kill()
    found = cluster.read(node)
    assert found.metadata.annotations[keys.STATE] == "configuring"
    assert found.spec.unschedulable and keys.DCM_TAINT_KEY in [t.key for t in found.spec.taints]
    second = cluster.controller("resume")  # same Lease: takes over once the dead holder's lease expires
    cluster.dcm.release(node)
    assert cluster.bound("llama-70b", second) == node
    assert cluster.is_clean(node)
    wait_until(lambda: second.metric('aim_partitioner_repartitions_total{result="succeeded"}') == 1, 5,
               "the resumed repartition to be counted")
    assert second.metric('aim_partitioner_repartitions_total{result="started"}') == 0, "started over, not resumed"
    assert cluster.dcm.requests(node) == ["spx_nps1_1gpu"]
    cluster.plane.stop_process(second.process)


def test_two_pending_sizes_change_each_node_once_and_settle(cluster: Cluster) -> None:
    b, c = cluster.node("b"), cluster.node("c")
    cluster.pod("llama-70b", LLAMA_70B)
    # The 14B pod as the webhook writes it: kube-scheduler's NodeAffinity filter rejects the CPX
    # nodes (24 GiB) before the extender is asked.
    cluster.pod("qwen-14b", QWEN_14B, memory_mib_above=34815)
    cluster.pending_for_size("llama-70b")
    cluster.pending_for_size("qwen-14b", reason="node affinity")
    # The GPU Operator's own profiles (--dcm-configmap-existing): used by content, never written.
    cluster.core.create_namespaced_config_map(cluster.namespace, cast(Any, dcm.configmap(
        OPERATOR_PROFILES, name=f"dcm-{cluster.prefix}", namespace=cluster.namespace)))
    version = _configmap(cluster).metadata
    # Two replicas on one Lease, as the Deployment runs them: one acts, the other waits.
    controller, standby = (cluster.controller("two", "--dcm-configmap-existing") for _ in range(2))
    big, small = cluster.bound("llama-70b", controller), cluster.bound("qwen-14b", controller)
    assert {big, small} == {b, c}
    def succeeded() -> float:
        return sum(r.metric('aim_partitioner_repartitions_total{result="succeeded"}') for r in (controller, standby))

    wait_until(lambda: succeeded() == 2, 5, "both repartitions to finish")
    started = sorted(r.metric('aim_partitioner_repartitions_total{result="started"}') for r in (controller, standby))
    assert started == [0, 2], f"both replicas acted: {started}"
    if standby.metric('aim_partitioner_repartitions_total{result="started"}'):
        controller, standby = standby, controller
    settled = {n: cluster.dcm.requests(n) for n in (b, c)}
    # Some seconds of further passes (resync 0.3 s): nothing changes again.
    with pytest.raises(TimeoutError):
        wait_until(lambda: controller.metric('aim_partitioner_repartitions_total{result="started"}') > 2, 2,
                   "another repartition")
    assert {n: cluster.dcm.requests(n) for n in (b, c)} == settled
    assert all(len(v) == 1 for v in settled.values()), settled
    # Asked for by the operator's names, matched by content (ours, e.g. spx_nps1_1gpu, do not exist).
    assert settled[big] == ["default"] and settled[small][0] in OPERATOR_PROFILES["gpu-config-profiles"], settled
    after = _configmap(cluster).metadata
    assert after.resource_version == version.resource_version, "--dcm-configmap-existing wrote the ConfigMap"
    assert controller.metric("aim_partitioner_planned_changes") == 0
    # A clean stop (SIGTERM) hands the Lease over at once: its holder is emptied.
    coordination: Any = client.CoordinationV1Api(cluster.core.api_client)
    holder = coordination.read_namespaced_lease("ctl-two", cluster.namespace).spec.holder_identity
    cluster.plane.stop_process(controller.process)
    assert coordination.read_namespaced_lease("ctl-two", cluster.namespace).spec.holder_identity != holder
    wait_until(lambda: standby.metric('aim_partitioner_nodes{state="cooldown"}') == 2, 10, "the standby to lead")
    cluster.plane.stop_process(standby.process)


def _configmap(cluster: Cluster) -> Any:
    return cluster.core.read_namespaced_config_map(f"dcm-{cluster.prefix}", cluster.namespace)


def _pod(cluster: Cluster, name: str) -> Any:
    return cluster.core.read_namespaced_pod(name, cluster.namespace)


def _guarded_pod_on(cluster: Cluster, node: str) -> None:
    """An 8B pod bound to ``node`` and Running/Ready (as its kubelet would report), under a
    PodDisruptionBudget that allows no disruption."""
    body = gpu_pod("guarded", scheduler=SCHEDULER, pool=cluster.prefix, annotations=LLAMA_8B)
    body["metadata"]["labels"] = {"app": "guarded"}
    body["spec"]["nodeName"] = node
    del body["spec"]["nodeSelector"]  # it may run on any node: it can move
    submit(cluster.core, cluster.namespace, body)
    cluster.core.patch_namespaced_pod_status("guarded", cluster.namespace, {"status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})
    policy = client.PolicyV1Api(cluster.core.api_client)
    policy.create_namespaced_pod_disruption_budget(cluster.namespace, cast(Any, {
        "metadata": {"name": "guarded"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}}))

    def healthy() -> bool:
        status = policy.read_namespaced_pod_disruption_budget("guarded", cluster.namespace).status
        return status is not None and status.current_healthy == 1 and status.disruptions_allowed == 0

    wait_until(healthy, 15, "the disruption controller to count the guarded pod")


def _plans(cluster: Cluster, *variants: tuple[str, ...]) -> list[dict[str, Any]]:
    """``aim-partitioner controller --once`` (recommend mode) with each set of extra flags, run at
    the same time; their JSON plans."""
    runs = [subprocess.Popen(
        [sys.executable, "-m", "partitioner", "controller", "--once", f"--kubeconfig={cluster.plane.kubeconfig}",
         f"--dcm-namespace={cluster.namespace}", "--log-level=warning", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for extra in variants]
    plans = []
    for run in runs:
        out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
        plans.append(dict(json.loads(out)))
    return plans


def test_busy_node_moves_only_with_allow_eviction_and_only_as_its_pdb_allows(cluster: Cluster) -> None:
    busy = cluster.node("b")
    spare = cluster.node("x-spare", opted_in=False)  # room for the guarded pod, never changed
    _guarded_pod_on(cluster, busy)
    cluster.pod("llama-70b", LLAMA_70B)
    cluster.pending_for_size("llama-70b")
    # Recommend mode (the default), once: without --allow-eviction the busy node is not a choice.
    plain, evicting = _plans(cluster, (), ("--allow-eviction",))
    mine = [c for c in plain["changes"] if c["node"] in (busy, spare)]
    assert mine == [] and f"{cluster.namespace}/llama-70b" in [h["pod"] for h in plain["helpless"]], plain
    assert [(c["node"], c["target"], c["evicts"]) for c in evicting["changes"] if c["node"] in (busy, spare)] == [
        (busy, "SPX/NPS1", [f"{cluster.namespace}/guarded"])], evicting
    assert not cluster.read(busy).spec.unschedulable, "--mode recommend changed a node"
    reasons = {e.reason: e.message or "" for e in cluster.core.list_namespaced_event(
        cluster.namespace, field_selector="involvedObject.name=llama-70b").items}
    assert "would let this pod run" in reasons.get("RepartitionRecommended", ""), reasons
    assert "no repartition planned" in reasons.get("NoRepartitionHelps", ""), reasons

    controller = cluster.controller("pdb", "--allow-eviction")
    wait_until(lambda: cluster.annotations(busy).get(keys.STATE) == "draining", BIND_TIMEOUT, "draining")
    # The PDB answers the Eviction API with 429 on every pass: the pod stays, nothing else happens.
    with pytest.raises(TimeoutError):
        wait_until(lambda: cluster.annotations(busy).get(keys.STATE) != "draining", 1.5, "the drain to go on")
    assert _pod(cluster, "guarded").metadata.deletion_timestamp is None
    assert cluster.dcm.requests(busy) == []
    assert keys.DCM_TAINT_KEY not in [t.key for t in cluster.read(busy).spec.taints or []]
    client.PolicyV1Api(cluster.core.api_client).patch_namespaced_pod_disruption_budget(
        "guarded", cluster.namespace, {"spec": {"minAvailable": 0}})
    assert cluster.bound("llama-70b", controller) == busy
    with pytest.raises(client.ApiException) as gone:
        cluster.core.read_namespaced_pod("guarded", cluster.namespace)
    assert gone.value.status == 404
    assert cluster.is_clean(busy) and cluster.dcm.requests(spare) == []
    cluster.plane.stop_process(controller.process)
