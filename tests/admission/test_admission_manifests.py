"""manifests/webhook: the MutatingWebhookConfiguration's contract, its Service, the certs Job and its
RBAC, the cert-manager variant, and the rendered Deployment, all agreeing with each other and with
the code (flag parsers, default runtime, the certificate's DNS names)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from extender.cli import build_parser
from tests.deploy.deploy_support import MANIFESTS, NAMESPACE, load_docs
from webhook.certs import service_names
from webhook.certs_command import add_parser as add_certs_parser
from webhook.flags import DEFAULT_MODEL_FORMAT, DEFAULT_RUNTIME, webhook_config

WEBHOOK = MANIFESTS / "webhook"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhook.md"
KUSTOMIZE = ([shutil.which("kustomize"), "build"] if shutil.which("kustomize")
             else [shutil.which("kubectl"), "kustomize"])
needs_kustomize = pytest.mark.skipif(KUSTOMIZE[0] is None, reason="neither kustomize nor kubectl is installed")


def doc(path: Path, kind: str, name: str | None = None) -> dict[str, Any]:
    hits = [d.body for d in load_docs(path) if d.kind == kind and (name is None or d.name == name)]
    assert len(hits) == 1, f"{path.name}: {kind}/{name}: {len(hits)}"
    return hits[0]


def render(directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run([*KUSTOMIZE, str(directory)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def rendered(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    hits = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(hits) == 1, f"{kind}/{name}: {len(hits)} rendered"
    return hits[0]


CONFIGURATION = doc(WEBHOOK / "mutatingwebhookconfiguration.yaml", "MutatingWebhookConfiguration")
SERVICE = doc(WEBHOOK / "service.yaml", "Service")


def test_every_webhook_entry_keeps_the_wire_contract() -> None:
    hooks = CONFIGURATION["webhooks"]
    assert len(hooks) == 2 and len({h["name"] for h in hooks}) == 2
    for hook in hooks:
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["sideEffects"] == "None"
        assert hook["failurePolicy"] == "Fail"  # docs/webhook.md says why
        assert 1 <= hook["timeoutSeconds"] <= 5  # well under the API server's 10 s default
        assert hook["reinvocationPolicy"] == "IfNeeded"
        service = hook["clientConfig"]["service"]
        assert (service["name"], service["namespace"], service["path"]) == (SERVICE["metadata"]["name"], NAMESPACE,
                                                                            "/mutate")
        assert service["port"] in [p["port"] for p in SERVICE["spec"]["ports"]]
        rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["operations"]) for r in hook["rules"]}
        assert rules == {(("",), ("pods",)): {"CREATE"},
                         (("serving.kserve.io",), ("inferenceservices",)): {"CREATE", "UPDATE"}}
        excluded = [e for e in hook["namespaceSelector"]["matchExpressions"]
                    if e["key"] == "kubernetes.io/metadata.name"]
        assert excluded == [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                             "values": ["kube-system", NAMESPACE]}]


def test_opt_in_is_by_label_on_the_namespace_or_else_on_the_object() -> None:
    by_namespace, by_object = CONFIGURATION["webhooks"]
    assert {"key": "aim.amd.com/admission", "operator": "In", "values": ["enabled"]} in \
        by_namespace["namespaceSelector"]["matchExpressions"]
    assert "objectSelector" not in by_namespace
    assert by_object["objectSelector"] == {"matchLabels": {"aim.amd.com/admission": "enabled"}}
    # An object in an opted-in namespace is not sent twice.
    assert {"key": "aim.amd.com/admission", "operator": "NotIn", "values": ["enabled"]} in \
        by_object["namespaceSelector"]["matchExpressions"]


def test_the_docs_state_the_shipped_failure_policy_and_timeout() -> None:
    text = DOCS.read_text()
    timeout = CONFIGURATION["webhooks"][0]["timeoutSeconds"]
    assert "| `failurePolicy` | **Fail** |" in text
    assert f"| `timeoutSeconds` | {timeout} |" in text


def certs_args(container: dict[str, Any]) -> argparse.Namespace:
    parser = add_certs_parser(argparse.ArgumentParser().add_subparsers())
    return parser.parse_args(container["args"][1:])


def test_the_certs_job_and_cronjob_name_the_service_secret_and_webhook_that_exist() -> None:
    for kind in ("Job", "CronJob"):
        body = doc(WEBHOOK / "certs-job.yaml", kind)
        job = body if kind == "Job" else body["spec"]["jobTemplate"]
        spec = job["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert container["args"][0] == "certs"
        args = certs_args(container)
        assert (args.namespace, args.service, args.webhook) == (NAMESPACE, SERVICE["metadata"]["name"],
                                                                [CONFIGURATION["metadata"]["name"]])
        assert args.secret == "aim-gpu-webhook-tls"
        assert spec["serviceAccountName"] == "aim-gpu-webhook-certs"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_the_certs_rbac_names_only_its_own_secrets_and_webhook() -> None:
    role = doc(WEBHOOK / "certs-rbac.yaml", "Role")
    named = [r for r in role["rules"] if "resourceNames" in r]
    assert named == [{"apiGroups": [""], "resources": ["secrets"],
                      "resourceNames": ["aim-gpu-webhook-tls", "aim-gpu-webhook-tls-ca"], "verbs": ["get", "update"]}]
    unnamed = [r for r in role["rules"] if "resourceNames" not in r]
    assert unnamed == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}]
    cluster_role = doc(WEBHOOK / "certs-rbac.yaml", "ClusterRole")
    assert cluster_role["rules"] == [{"apiGroups": ["admissionregistration.k8s.io"],
                                      "resources": ["mutatingwebhookconfigurations"],
                                      "resourceNames": [CONFIGURATION["metadata"]["name"]], "verbs": ["get", "patch"]}]


def test_cert_manager_writes_the_same_secret_for_the_same_names() -> None:
    certificate = doc(WEBHOOK / "cert-manager" / "certificate.yaml", "Certificate")
    assert certificate["spec"]["secretName"] == "aim-gpu-webhook-tls"
    assert tuple(certificate["spec"]["dnsNames"]) == service_names(SERVICE["metadata"]["name"], NAMESPACE)
    issuer = doc(WEBHOOK / "cert-manager" / "certificate.yaml", "Issuer")
    assert certificate["spec"]["issuerRef"] == {"name": issuer["metadata"]["name"], "kind": "Issuer"}
    kustomization = yaml.safe_load((WEBHOOK / "cert-manager" / "kustomization.yaml").read_text())
    injected = f"{NAMESPACE}/{certificate['metadata']['name']}"
    assert any(f"cert-manager.io/inject-ca-from: {injected}" in p.get("patch", "") for p in kustomization["patches"])


def test_the_default_runtime_is_the_shipped_cluster_serving_runtime() -> None:
    runtime = doc(MANIFESTS / "kserve" / "clusterservingruntime-vllm-rocm.yaml", "ClusterServingRuntime")
    assert runtime["metadata"]["name"] == DEFAULT_RUNTIME
    assert DEFAULT_MODEL_FORMAT in [f["name"] for f in runtime["spec"]["supportedModelFormats"]]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return render(MANIFESTS)


@needs_kustomize
def test_the_rendered_extender_serves_the_webhook_with_the_mounted_certificate(base: list[dict[str, Any]]) -> None:
    deployment = rendered(base, "Deployment", "aim-gpu-extender")
    for version in ("1.31", "1.37"):
        kubernetes_validate.validate(rendered(base, "MutatingWebhookConfiguration", "aim-gpu-webhook"), version,
                                     strict=True)
        kubernetes_validate.validate(deployment, version, strict=True)
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    args = build_parser({}).parse_args(container["args"])
    config = webhook_config(args)
    assert config is not None
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["webhook"] == config.port
    mount = next(m for m in container["volumeMounts"] if m["name"] == "webhook-tls")
    assert Path(config.cert_file).parent == Path(config.key_file).parent == Path(mount["mountPath"])
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "webhook-tls")
    assert volume["secret"]["secretName"] == "aim-gpu-webhook-tls"
    service = rendered(base, "Service", "aim-gpu-webhook")
    assert service["spec"]["ports"][0]["targetPort"] == "webhook"
    labels = pod["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
    assert rendered(base, "Job", "aim-gpu-webhook-certs")


@needs_kustomize
def test_the_cert_manager_variant_drops_the_certs_job(tmp_path: Path) -> None:
    rel = os.path.relpath(MANIFESTS, tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{rel}]\ncomponents: [{rel}/webhook/cert-manager]\n")
    objects = render(tmp_path)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("Certificate", "aim-gpu-webhook") in kinds and ("Issuer", "aim-gpu-webhook-selfsigned") in kinds
    assert not {k for k in kinds if k[1] == "aim-gpu-webhook-certs"}
    configuration = rendered(objects, "MutatingWebhookConfiguration", "aim-gpu-webhook")
    assert configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/aim-gpu-webhook"
