"""End to end on the real control plane (issue 19): a Pod that carries only the model annotation
and the opt-in label goes through the admission webhook and the scheduler extender of ONE
``aim-extender serve`` process, and lands on the partition that fits best.

- the webhook (``--webhook-port``, HTTPS with a certificate of the run's CA) is registered with the
  API server through the shipped MutatingWebhookConfiguration (called by URL, limited to this
  module's opted-in namespace) and writes the partitions, the vLLM arguments, the partition-size
  affinity and ``spec.schedulerName`` of a second kube-scheduler;
- that kube-scheduler (extender.scheduler_config, nodeCacheCapable) calls the same process's
  ``/filter`` and ``/prioritize``; a NodeAffinity ``addedAffinity`` in its profile keeps it to this
  module's nodes without touching the pods;
- API-only nodes labelled as the device plugin labels them (sizing.contract.node_labels): MI300X
  CPX (8 x 24 GiB), MI300X DPX (2 x 96 GiB), MI325X DPX (2 x 128 GiB).

Each assertion is on what a component did, observed from outside: the object the API server
stored, the extender's log line for that pod and its decision counters, the binding and the
Scheduled event. Skipped without the control-plane binaries."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from sizing.contract import ANNOTATION_MAX_MODEL_LEN, ANNOTATION_MODEL, LABEL_MEMORY_MIB, RESOURCE_NAME
from tests.admission.support import args_of
from tests.admission.test_admission_controlplane import webhook_configuration
from tests.controlplane.gpu_cluster import IMAGE, POOL_LABEL, NodeSpec, Pool, bound_node, create_pool, delete_pool
from tests.controlplane.harness import ControlPlane, RunningExtender
from tests.controlplane.processes import ManagedProcess, free_port, wait_until

PREFIX = "e2e"
SCHEDULER = "aim-e2e-scheduler"
WEBHOOK = "aim-e2e-webhook"  # not the shipped name: the admission tests register that one
OPT_IN = "aim.amd.com/admission"  # namespace and object label (manifests/webhook); also the record annotation
RECORD = "aim.amd.com/admission"
SPECS = (
    NodeSpec("cpx", "MI300X", "CPX", "NPS4", 38, 24, 8),
    NodeSpec("dpx", "MI300X", "DPX", "NPS1", 152, 96, 2),
    NodeSpec("m325dpx", "MI325X", "DPX", "NPS1", 152, 128, 2),
)
# The webhook lists the nodes within a second of starting; 60 s only bounds a broken start.
READY_TIMEOUT_SECONDS = 60.0
# The extender logs its filter line right after answering; the scheduler binds after prioritize.
LOG_TIMEOUT_SECONDS = 5.0


@dataclass
class EndToEnd:
    plane: ControlPlane
    namespace: str  # labelled aim.amd.com/admission=enabled
    extender: RunningExtender  # extender and webhook in one process
    scheduler: ManagedProcess
    pool: Pool

    def metric(self, name: str) -> float:
        return self.extender.metrics().get(name, 0.0)

    def filter_line(self, pod: str) -> str:
        """The extender's debug line for ``pod``'s /filter call: ``filter ns/pod (subject): N of M nodes pass``."""
        prefix = f"filter {self.namespace}/{pod} ("

        def line() -> str | None:
            text = self.extender.process.log_path.read_text(errors="replace")
            return next((row for row in text.splitlines() if prefix in row), None)

        return str(wait_until(line, LOG_TIMEOUT_SECONDS, f"the extender's /filter log line for {pod}"))


def scheduler_config(extender: RunningExtender) -> dict[str, Any]:
    """The second scheduler as shipped calling ``extender``, its profile limited to this module's
    nodes by NodeAffinity ``addedAffinity`` (applied to every pod of the profile, so the pods stay as
    a user writes them)."""
    config = extender.scheduler_config(SCHEDULER)
    (profile,) = config["profiles"]
    profile["pluginConfig"] = [{"name": "NodeAffinity", "args": {"addedAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": POOL_LABEL, "operator": "In", "values": [PREFIX]}]}]}}}}]
    return config


def registration(plane: ControlPlane, port: int, namespace: str) -> dict[str, Any]:
    """The shipped MutatingWebhookConfiguration for ``namespace`` (tests/admission's copy of it),
    renamed, trusting the run's CA (the serving certificate is issued by it)."""
    document = webhook_configuration(port, namespace, namespace)
    document["metadata"]["name"] = WEBHOOK
    ca_bundle = base64.b64encode(plane.ca.cert_path.read_bytes()).decode()
    for hook in document["webhooks"]:
        hook["clientConfig"]["caBundle"] = ca_bundle
    return document


def model_pod(name: str, model: str, resources: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Pod as a user writes it: the model annotation, the opt-in label, vLLM with the model;
    no partitions, no scheduler, no affinity (``resources``: the user's own, when given)."""
    container: dict[str, Any] = {"name": "vllm", "image": IMAGE, "args": ["vllm", "serve", model]}
    if resources is not None:
        container["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {OPT_IN: "enabled"}, "annotations": {ANNOTATION_MODEL: model}},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [container]}}


def create(plane: ControlPlane, namespace: str, pod: dict[str, Any], *, dry_run: bool = False,
           check: bool = True) -> Any:
    """``kubectl create -f -`` of ``pod`` in ``namespace`` (what a user runs)."""
    args = ["create", "-n", namespace, "-o", "json", "-f", "-"]
    if dry_run:
        args.insert(1, "--dry-run=server")
    return plane.kubectl(*args, stdin=json.dumps(pod), check=check)


def stored(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = plane.api.sanitize_for_serialization(  # type: ignore[no-untyped-call]
        plane.core.read_namespaced_pod(name, namespace))
    return obj


def scheduled_by(plane: ControlPlane, namespace: str, name: str) -> str:
    def reporter() -> str | None:
        events = plane.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
        return next((e.reporting_component for e in events if e.reason == "Scheduled"), None)

    return str(wait_until(reporter, LOG_TIMEOUT_SECONDS, f"the Scheduled event of {name}"))


def other_partition_nodes(plane: ControlPlane, pool: Pool) -> list[str]:
    """Labelled GPU nodes of other tests: the webhook sizes against every node of the cluster."""
    mine = set(pool.nodes.values())
    names = (str(n.metadata.name) for n in plane.core.list_node(label_selector=LABEL_MEMORY_MIB).items if n.metadata)
    return [name for name in names if name not in mine]


@pytest.fixture(scope="module")
def e2e(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EndToEnd]:
    plane = control_plane
    started = time.monotonic()
    namespace = plane.create_namespace("aim-e2e")
    plane.kubectl("label", "namespace", namespace, f"{OPT_IN}=enabled")
    pool = create_pool(plane, PREFIX, SPECS)
    processes: list[ManagedProcess] = []
    try:
        wait_until(lambda: not other_partition_nodes(plane, pool), 10.0,
                   "the GPU nodes of other tests to be gone (the webhook sizes against every node)")
        workdir = tmp_path_factory.mktemp("e2e")
        tls = plane.ca.issue(str(workdir / "webhook"), "aim-e2e-webhook", ip_addresses=("127.0.0.1",), server=True)
        port = free_port()
        extender = plane.start_extender(node_cache="watch", extra_args=[
            f"--webhook-port={port}", f"--webhook-cert-file={tls.cert}", f"--webhook-key-file={tls.key}",
            f"--webhook-scheduler-name={SCHEDULER}",
            "--log-level=debug"])  # the per-pod filter line is a debug line (extender/service.py)
        processes.append(extender.process)
        scheduler = plane.start_scheduler(scheduler_config(extender), name=SCHEDULER)
        processes.append(scheduler)
        plane.kubectl("apply", "-f", "-", stdin=json.dumps(registration(plane, port, namespace)))
        total = len(plane.core.list_node().items)
        plane.wait_for_scheduler_cache(scheduler, nodes=total, timeout=READY_TIMEOUT_SECONDS)
        wait_until(lambda: extender.metrics().get("aim_extender_cache_nodes", 0) >= total, READY_TIMEOUT_SECONDS,
                   "the extender's node cache to hold every node")

        def webhook_sees_the_nodes() -> bool:
            """A dry run is mutated without the warning given while no node advertises partitions."""
            done = create(plane, namespace, model_pod("probe", "Qwen/Qwen3-8B"), dry_run=True, check=False)
            return done.returncode == 0 and RECORD in json.loads(done.stdout)["metadata"]["annotations"] \
                and "Warning" not in done.stderr

        wait_until(webhook_sees_the_nodes, READY_TIMEOUT_SECONDS, "the webhook to size against the nodes")
        print(f"\ne2e fixture ready in {time.monotonic() - started:.2f} s")
        yield EndToEnd(plane, namespace, extender, scheduler, pool)
    finally:
        plane.kubectl("delete", "mutatingwebhookconfiguration", WEBHOOK, "--ignore-not-found", check=False)
        plane.delete_namespace(namespace)  # pods first (force), so no pod stays bound to a deleted node
        for process in processes:
            plane.stop_process(process)
        delete_pool(plane, pool)


def test_a_model_annotated_pod_is_mutated_filtered_and_bound_best_fit(e2e: EndToEnd) -> None:
    """Llama 3.1 8B (16-bit, ~20 GiB): one partition, which every node holds; the webhook writes it,
    the extender sizes the stored pod exactly as the webhook did (passes all three) and best fit
    takes the 24 GiB partition, not the 96 or 128 GiB ones."""
    plane, name = e2e.plane, "llama-8b"
    passed = e2e.metric('aim_extender_filter_decisions_total{reason="",result="pass"}')
    prioritized = e2e.metric('aim_extender_request_duration_seconds_count{verb="prioritize"}')
    create(plane, e2e.namespace, model_pod(name, "meta-llama/Llama-3.1-8B-Instruct"))

    pod = stored(plane, e2e.namespace, name)
    (container,) = pod["spec"]["containers"]
    assert container["resources"] == {"limits": {RESOURCE_NAME: "1"}, "requests": {RESOURCE_NAME: "1"}}
    args = args_of(container)
    assert args["--tensor-parallel-size"] == "1" and args["--max-model-len"] == "8192", container["args"]
    assert pod["metadata"]["annotations"][ANNOTATION_MAX_MODEL_LEN] == "8192"
    assert pod["spec"]["schedulerName"] == SCHEDULER
    record = json.loads(pod["metadata"]["annotations"][RECORD])
    for key, value in record["set"].items():  # every vLLM argument the webhook lists is in the stored args
        if key.startswith("args:"):
            assert args.get(key.removeprefix("args:")) == value, (key, container["args"])
    required = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (term,) = required["nodeSelectorTerms"]
    assert term["matchExpressions"] == [{"key": LABEL_MEMORY_MIB, "operator": "Gt",
                                         "values": [record["set"]["affinity"]]}]

    assert bound_node(plane.core, e2e.namespace, name) == e2e.pool["cpx"]
    assert scheduled_by(plane, e2e.namespace, name) == SCHEDULER
    line = e2e.filter_line(name)
    sized = record["sized"].split(":", 1)[0]  # "meta-llama/Llama-3.1-8B-Instruct fp16 ctx 8192"
    assert f"filter {e2e.namespace}/{name} ({sized}): 3 of 3 nodes pass" in line, (line, record)
    assert e2e.metric('aim_extender_filter_decisions_total{reason="",result="pass"}') - passed >= 3
    assert e2e.metric('aim_extender_request_duration_seconds_count{verb="prioritize"}') - prioritized >= 1


def test_a_larger_model_gets_tensor_parallel_partitions_and_the_smallest_that_holds_them(e2e: EndToEnd) -> None:
    """Llama 3.3 70B (16-bit, ~151 GiB): no single partition here holds it, two of 96 GiB do; the
    24 GiB node fails the webhook's affinity in-tree, the extender passes both DPX nodes and best
    fit takes the 96 GiB one over the 128 GiB one."""
    plane, name = e2e.plane, "llama-70b"
    create(plane, e2e.namespace, model_pod(name, "meta-llama/Llama-3.3-70B-Instruct"))
    pod = stored(plane, e2e.namespace, name)
    (container,) = pod["spec"]["containers"]
    assert container["resources"] == {"limits": {RESOURCE_NAME: "2"}, "requests": {RESOURCE_NAME: "2"}}
    assert args_of(container)["--tensor-parallel-size"] == "2", container["args"]
    assert pod["spec"]["schedulerName"] == SCHEDULER
    assert bound_node(plane.core, e2e.namespace, name) == e2e.pool["dpx"]
    record = json.loads(pod["metadata"]["annotations"][RECORD])
    sized = record["sized"].split(":", 1)[0]
    assert f"filter {e2e.namespace}/{name} ({sized}): 2 of 2 nodes pass" in e2e.filter_line(name), record


def test_a_model_no_partition_holds_is_refused_at_kubectl_create_with_the_fix(e2e: EndToEnd) -> None:
    """Qwen3-235B 16-bit on the one partition the user asked for needs ~491 GiB; the largest
    partition of any GPU is 288 GiB: refused at creation with what would fit, nothing stored."""
    plane, name = e2e.plane, "qwen-235b"
    denied = e2e.metric('aim_webhook_reviews_total{result="denied"}')
    one = {RESOURCE_NAME: "1"}
    done = create(plane, e2e.namespace, model_pod(name, "Qwen/Qwen3-235B-A22B", {"limits": one, "requests": one}),
                  check=False)
    assert done.returncode != 0
    assert 'admission webhook "namespaces.webhook.aim.amd.com" denied the request' in done.stderr, done.stderr
    assert "Qwen/Qwen3-235B-A22B fp16 needs" in done.stderr and "with 1 partition" in done.stderr, done.stderr
    assert "fix: precision fp8 on 1 x 256 GiB, or 2 partitions of 256 GiB" in done.stderr, done.stderr
    with pytest.raises(client.ApiException) as missing:
        plane.core.read_namespaced_pod(name, e2e.namespace)
    assert missing.value.status == 404
    assert e2e.metric('aim_webhook_reviews_total{result="denied"}') - denied == 1


def test_a_model_a_node_of_known_gpus_holds_with_several_partitions_is_admitted_to_wait(e2e: EndToEnd) -> None:
    """Qwen3-235B 16-bit with only the model annotation: ~125.5 GiB per partition at 4 partitions,
    ~64.7 GiB at 8. No node here holds it, but an MI300X node with four GPUs in SPX (192 GiB each),
    or with eight in DPX (96 GiB each), does: the object should be admitted with the warning that it
    waits for such a node (as when nothing in the cluster holds it), not refused."""
    done = create(e2e.plane, e2e.namespace, model_pod("qwen-235b-tp", "Qwen/Qwen3-235B-A22B"), dry_run=True,
                  check=False)
    assert done.returncode == 0, done.stderr
    assert "it waits for a node that holds it" in done.stderr, done.stderr
