"""The webhook against the real control plane: `aim-extender certs` (as its Job's ServiceAccount,
with the shipped RBAC) makes the certificate and sets the caBundle of the shipped
MutatingWebhookConfiguration; `aim-extender serve --webhook-port ...` serves it beside the
extender; the API server calls it over TLS when a Pod or an InferenceService (KServe's CRDs
installed) is created, stores the mutated object, shows the warnings and the denials; with the
webhook down, creation follows failurePolicy: Fail. Skipped without the control-plane binaries."""

from __future__ import annotations

import base64
import copy
import json
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client

from sizing.contract import LABEL_COUNT, LABEL_MEMORY_MIB, RESOURCE_NAME
from tests.admission.support import FIXTURES, args_of, partition_labels
from tests.controlplane.access import Access, assert_least_privilege, broad_denials, service_account
from tests.controlplane.harness import ControlPlane, RunningExtender, extender_command
from tests.controlplane.processes import free_port, wait_until

WEBHOOK_MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "webhook"
RECORD = "aim.amd.com/admission"
OPT_IN = "aim.amd.com/admission"
SECRET = "aim-gpu-webhook-tls"
WEBHOOK = "aim-gpu-webhook"
SERVICE = "aim-gpu-webhook"
# The webhook answers within milliseconds once serving; the node watch lists within a second.
READY_TIMEOUT_SECONDS = 60.0


@dataclass
class Admission:
    plane: ControlPlane
    namespace: str  # labelled aim.amd.com/admission=enabled
    other: str  # not labelled: only objects with the label are sent
    port: int
    extender: RunningExtender
    ca_file: Path
    sa_kubeconfig: Path


def run_certs(plane: ControlPlane, namespace: str, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    argv = [*extender_command(), "certs", f"--namespace={namespace}", f"--service={SERVICE}", f"--secret={SECRET}",
            f"--webhook={WEBHOOK}", "--extra-san=127.0.0.1", f"--kubeconfig={kubeconfig}"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def certs_rbac(namespace: str) -> list[dict[str, Any]]:
    """The shipped RBAC of the certs Job, in ``namespace``; cluster-scoped objects get the namespace
    in their name so that other tests' copies of the manifests are left alone."""
    documents = [d for d in yaml.safe_load_all((WEBHOOK_MANIFESTS / "certs-rbac.yaml").read_text()) if d]
    for document in documents:
        metadata = document["metadata"]
        if "namespace" in metadata:
            metadata["namespace"] = namespace
        else:
            metadata["name"] += f"-{namespace}"
        if document["kind"] == "ClusterRoleBinding":
            document["roleRef"]["name"] += f"-{namespace}"
        for subject in document.get("subjects", []):
            subject["namespace"] = namespace
    return documents


def dry_run(plane: ControlPlane, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """``kubectl create --dry-run=server``: admission runs (sideEffects: None), nothing is stored."""
    return plane.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(obj))


def webhook_configuration(port: int, namespace: str, other: str) -> dict[str, Any]:
    """The shipped configuration, called by URL (the API server here cannot reach Services) and
    limited to this test's namespaces (the session's other tests create pods too)."""
    (document,) = yaml.safe_load_all((WEBHOOK_MANIFESTS / "mutatingwebhookconfiguration.yaml").read_text())
    for hook, allowed in zip(document["webhooks"], (namespace, other), strict=True):
        hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}/mutate"}
        hook["namespaceSelector"]["matchExpressions"].append(
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [allowed]})
    return document


def pod_object(namespace: str, name: str, annotations: dict[str, str],
               labels: dict[str, str] | None = None) -> dict[str, Any]:
    pod = copy.deepcopy(json.loads((FIXTURES / "review-pod-catalogue-model.json").read_text())["request"]["object"])
    pod["metadata"] = {"name": name, "namespace": namespace, "annotations": annotations, "labels": labels or {}}
    return pod


def inference_service(namespace: str, name: str, annotations: dict[str, str], model: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
            "spec": {"predictor": {"model": model}}}


@pytest.fixture(scope="module")
def admission(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admission]:
    plane = control_plane
    namespace = plane.create_namespace("aim-wh")
    plane.kubectl("label", "namespace", namespace, f"{OPT_IN}=enabled")
    other = plane.create_namespace("aim-wh-obj")
    plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(plane.binaries.crds_dir))
    wait_until(lambda: plane.kubectl("get", "crd", "inferenceservices.serving.kserve.io", "-o",
                                     "jsonpath={.status.conditions[?(@.type=='Established')].status}").stdout == "True",
               READY_TIMEOUT_SECONDS, "KServe's InferenceService CRD to be established")
    nodes = [f"{namespace}-cpx", f"{namespace}-qpx"]
    plane.create_node(nodes[0], partitions=8, labels=partition_labels("MI300X", "CPX", 24, 8))
    plane.create_node(nodes[1], partitions=4, labels=partition_labels("MI300X", "QPX", 48, 4))
    plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(certs_rbac(namespace)))
    port = free_port()
    plane.kubectl("apply", "-f", "-", stdin=json.dumps(webhook_configuration(port, namespace, other)))
    sa_kubeconfig = plane.service_account_kubeconfig(namespace, "aim-gpu-webhook-certs")
    done = run_certs(plane, namespace, sa_kubeconfig)
    assert done.returncode == 0, done.stderr
    secret = plane.core.read_namespaced_secret(SECRET, namespace)
    directory = tmp_path_factory.mktemp("webhook-secret")
    for key in ("tls.crt", "tls.key", "ca.crt"):
        (directory / key).write_bytes(base64.b64decode(secret.data[key]))
    extender = plane.start_extender(node_cache="off", extra_args=[
        f"--kubeconfig={plane.kubeconfig}", f"--webhook-port={port}",
        f"--webhook-cert-file={directory / 'tls.crt'}", f"--webhook-key-file={directory / 'tls.key'}"])
    context = ssl.create_default_context(cafile=str(directory / "ca.crt"))
    wait_until(lambda: httpx.get(f"https://127.0.0.1:{port}/healthz", verify=context, timeout=2).status_code == 200,
               READY_TIMEOUT_SECONDS, "the webhook's /healthz over TLS")
    setup = Admission(plane, namespace, other, port, extender, directory / "ca.crt", sa_kubeconfig)

    def sized_against_the_nodes() -> bool:
        dry = dry_run(plane, pod_object(namespace, "probe", {"aim.amd.com/model": "Qwen/Qwen3-8B"}))
        return RECORD in json.loads(dry.stdout)["metadata"]["annotations"] and "no node advertises" not in dry.stderr

    wait_until(sized_against_the_nodes, READY_TIMEOUT_SECONDS,
               "the webhook to answer through the API server with the nodes' partitions")
    yield setup
    plane.kubectl("delete", "mutatingwebhookconfiguration", WEBHOOK, "--ignore-not-found")
    plane.kubectl("delete", "clusterrole,clusterrolebinding", f"aim-gpu-webhook-certs-{namespace}",
                  "--ignore-not-found")
    if extender.process.running:
        plane.stop_process(extender.process)
    for node in nodes:
        plane.core.delete_node(node)
    plane.delete_namespace(namespace)
    plane.delete_namespace(other)


def test_certs_command_set_the_ca_bundle_with_least_privilege_and_is_idempotent(admission: Admission) -> None:
    plane = admission.plane
    hooks = plane.kubectl("get", "mutatingwebhookconfiguration", WEBHOOK, "-o", "json")
    ca = admission.ca_file.read_bytes()
    for hook in json.loads(hooks.stdout)["webhooks"]:
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == ca
    before = plane.core.read_namespaced_secret(SECRET, admission.namespace).metadata.resource_version
    again = run_certs(plane, admission.namespace, admission.sa_kubeconfig)
    assert again.returncode == 0, again.stderr
    assert "nothing to renew" in again.stderr and "already trusts the CA" in again.stderr
    assert plane.core.read_namespaced_secret(SECRET, admission.namespace).metadata.resource_version == before
    subject = service_account(admission.namespace, "aim-gpu-webhook-certs")
    assert_least_privilege(plane, subject, allowed=[
        Access("get", "secrets", namespace=admission.namespace, name=SECRET),
        Access("update", "secrets", namespace=admission.namespace, name=SECRET + "-ca"),
        Access("create", "secrets", namespace=admission.namespace),
        Access("get", "mutatingwebhookconfigurations.admissionregistration.k8s.io", name=WEBHOOK),
        Access("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io", name=WEBHOOK),
    ], denied=[
        *broad_denials(admission.namespace, admission.other),
        Access("get", "secrets", namespace=admission.namespace, name="someone-elses"),
        Access("update", "secrets", namespace=admission.namespace, name="someone-elses"),
        Access("create", "secrets", namespace=admission.other),
        Access("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io", name="another-webhook"),
        Access("create", "mutatingwebhookconfigurations.admissionregistration.k8s.io"),
        Access("patch", "validatingwebhookconfigurations.admissionregistration.k8s.io", name=WEBHOOK),
    ])


def test_a_created_pod_is_stored_with_the_mutation(admission: Admission) -> None:
    core = admission.plane.core
    pod = pod_object(admission.namespace, "llama-8b", {"aim.amd.com/model": "meta-llama/Llama-3.1-8B-Instruct",
                                                      "aim.amd.com/precision": "fp16"})
    core.create_namespaced_pod(admission.namespace, pod)
    stored = admission.plane.api.sanitize_for_serialization(core.read_namespaced_pod("llama-8b", admission.namespace))
    container = stored["spec"]["containers"][0]
    assert container["resources"]["limits"][RESOURCE_NAME] == "1"
    assert container["resources"]["requests"][RESOURCE_NAME] == "1"
    args = args_of(container)
    assert args["--tensor-parallel-size"] == "1" and args["--max-model-len"] == "8192"
    terms = stored["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    (expression,) = [e for t in terms["nodeSelectorTerms"] for e in t["matchExpressions"]
                     if e["key"] == LABEL_MEMORY_MIB]
    assert expression["operator"] == "Gt"
    assert json.loads(stored["metadata"]["annotations"][RECORD])["set"]["affinity"] == expression["values"][0]


def test_a_created_inference_service_is_stored_mutated_and_valid_for_kserves_schema(admission: Admission) -> None:
    isvc = inference_service(admission.namespace, "qwen3-8b", {"aim.amd.com/profile": "qwen--qwen3-8b--int8"},
                             {"modelFormat": {"name": "vllm-rocm"}, "storageUri": "hf://RedHatAI/Qwen3-8B-quantized.w8a8"})
    admission.plane.kubectl("apply", "-f", "-", stdin=json.dumps(isvc))
    stored = json.loads(admission.plane.kubectl("get", "inferenceservice", "qwen3-8b", "-n", admission.namespace,
                                                "-o", "json").stdout)
    model = stored["spec"]["predictor"]["model"]
    assert model["runtime"] == "aim-vllm-rocm"
    assert model["resources"]["limits"][RESOURCE_NAME] == "1"
    assert args_of(model)["--quantization"] == "compressed-tensors"
    assert json.loads(stored["metadata"]["annotations"]["serving.kserve.io/gpu-resource-types"]) == [RESOURCE_NAME]
    assert stored["spec"]["predictor"]["affinity"]["nodeAffinity"]


def test_kubectl_shows_the_denial_with_the_fix_when_no_partition_holds_the_model(admission: Admission) -> None:
    """Qwen3-235B fp16 on the user's one partition needs ~470 GiB: no GPU has that, so the object is
    refused at kubectl apply with the fix, not left to wait forever."""
    isvc = inference_service(admission.namespace, "qwen3-235b",
                             {"aim.amd.com/model": "Qwen/Qwen3-235B-A22B", "aim.amd.com/precision": "fp16"},
                             {"modelFormat": {"name": "vllm-rocm"}, "runtime": "aim-vllm-rocm",
                              "resources": {"limits": {RESOURCE_NAME: "1"}, "requests": {RESOURCE_NAME: "1"}}})
    done = admission.plane.kubectl("apply", "-f", "-", stdin=json.dumps(isvc), check=False)
    assert done.returncode != 0
    assert "Qwen/Qwen3-235B-A22B fp16 needs" in done.stderr
    assert "per partition with 1 partition; the largest partition of any known GPU is" in done.stderr
    assert "fix:" in done.stderr


def test_the_webhook_follows_the_nodes_partition_labels(admission: Admission) -> None:
    """Qwen3-235B fp16 needs ~470 GiB on one partition: no real GPU has that (denied), so a node
    labelled with a 512 GiB partition is what makes it fit, and removing the node makes it not fit again."""
    plane = admission.plane
    pod = pod_object(admission.namespace, "huge", {"aim.amd.com/model": "Qwen/Qwen3-235B-A22B",
                                                   "aim.amd.com/precision": "fp16"})
    pod["spec"]["containers"][0]["resources"] = {"limits": {RESOURCE_NAME: "1"}}

    def denied() -> bool:
        done = plane.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", stdin=json.dumps(pod),
                             check=False)
        return done.returncode != 0 and "the largest partition of any known GPU is" in done.stderr

    assert denied()
    node = f"{admission.namespace}-huge"
    plane.create_node(node, partitions=1, labels={LABEL_MEMORY_MIB: str(512 * 1024), LABEL_COUNT: "1"})
    try:
        wait_until(lambda: "Warning" not in dry_run(plane, pod).stderr, READY_TIMEOUT_SECONDS,
                   "the webhook to see the 512 GiB partition")
    finally:
        plane.core.delete_node(node)
    wait_until(denied, READY_TIMEOUT_SECONDS, "the webhook to see the node go")


def test_a_garbage_annotation_is_refused_by_the_api_server_with_the_webhooks_message(admission: Admission) -> None:
    pod = pod_object(admission.namespace, "garbage", {"aim.amd.com/model": "meta-llama/Llama-3.1-8B-Instruct",
                                                     "aim.amd.com/max-model-len": "1e999999"})
    with pytest.raises(client.ApiException) as refused:
        admission.plane.core.create_namespaced_pod(admission.namespace, pod)
    assert refused.value.status == 400
    body = json.loads(refused.value.body)
    assert 'admission webhook "namespaces.webhook.aim.amd.com" denied the request' in body["message"]
    assert "aim.amd.com/max-model-len" in body["message"]


def test_outside_an_opted_in_namespace_only_labelled_objects_are_mutated(admission: Admission) -> None:
    core, other = admission.plane.core, admission.other
    annotations = {"aim.amd.com/model": "meta-llama/Llama-3.1-8B-Instruct"}
    core.create_namespaced_pod(other, pod_object(other, "labelled", annotations, {OPT_IN: "enabled"}))
    core.create_namespaced_pod(other, pod_object(other, "unlabelled", annotations))
    labelled = core.read_namespaced_pod("labelled", other)
    unlabelled = core.read_namespaced_pod("unlabelled", other)
    assert RECORD in (labelled.metadata.annotations or {})
    assert RECORD not in (unlabelled.metadata.annotations or {})
    assert not (unlabelled.spec.containers[0].resources.limits or {})


def test_with_the_webhook_down_creation_fails_closed_for_opted_in_objects_only(admission: Admission) -> None:
    """Last in this module: it stops the webhook."""
    plane = admission.plane
    plane.stop_process(admission.extender.process)
    with pytest.raises(client.ApiException) as refused:
        plane.core.create_namespaced_pod(admission.namespace, pod_object(
            admission.namespace, "while-down", {"aim.amd.com/model": "meta-llama/Llama-3.1-8B-Instruct"}))
    assert "failed calling webhook" in json.loads(refused.value.body)["message"]
    plane.core.create_namespaced_pod(admission.other, pod_object(admission.other, "not-opted-in", {"team": "a"}))
