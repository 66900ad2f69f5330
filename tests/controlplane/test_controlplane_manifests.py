"""Every manifest accepted by a real kube-apiserver: server-side dry run per file (after its
namespace exists), the kustomize build (plain applied for real, TLS as a dry run), and the KServe
examples validated by KServe's own CRD schemas."""

from __future__ import annotations

import copy
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from extender.scheduler_config import API_V1, ExtenderEndpoint, ExtenderTLS, second_scheduler_config
from tests.controlplane.deployment import (
    MANIFESTS,
    NAMESPACE,
    apply,
    create_referenced_namespaces,
    deploy_base,
    install_kserve_crds,
    kustomize,
    remove_workloads,
    tls_overlay,
)
from tests.controlplane.harness import ControlPlane
from tests.deploy.deploy_support import Doc, all_docs, is_patch_file

# Not Kubernetes objects (read by kustomize or kube-scheduler), checked in tests/deploy.
NOT_OBJECTS = {"Kustomization", "Component", "KubeSchedulerConfiguration"}
# API groups whose CRDs this control plane does not have (cert-manager is optional, see
# docs/webhook.md); their objects are validated by schema in tests/deploy.
# resource.k8s.io/v1 (DRA, manifests/dra) is served from Kubernetes 1.34: this 1.25 control plane has no such
# group; tests/dra applies those objects to a 1.34 control plane.
NOT_INSTALLED_GROUPS = {"cert-manager.io", "resource.k8s.io"}
# kubectl processes at once: each waits on the API server most of the time.
PARALLEL_KUBECTL = 4


def applicable(doc: Doc) -> bool:
    group = doc.api_version.rpartition("/")[0]
    return doc.kind not in NOT_OBJECTS and not is_patch_file(doc.path) and group not in NOT_INSTALLED_GROUPS


def files_with_objects() -> dict[Path, list[Doc]]:
    by_file: dict[Path, list[Doc]] = defaultdict(list)
    for doc in all_docs():
        if applicable(doc):
            by_file[doc.path].append(doc)
    return dict(sorted(by_file.items()))


FILES = files_with_objects()
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "ClusterServingRuntime", "PriorityClass",
                  "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "CustomResourceDefinition"}


def renamed(body: dict[str, Any]) -> dict[str, Any]:
    metadata = body.get("metadata", {})
    return {**body, "metadata": {**metadata, "name": metadata["name"] + "-dry"}}


def in_namespace(body: dict[str, Any], namespace: str) -> dict[str, Any]:
    """Objects without a namespace (examples, InferenceServices) go where the user applies them."""
    if body["kind"] in CLUSTER_SCOPED or body.get("metadata", {}).get("namespace"):
        return body
    return {**body, "metadata": {**body.get("metadata", {}), "namespace": namespace}}


@pytest.fixture(scope="module")
def prepared(control_plane: ControlPlane) -> ControlPlane:
    """The project namespace exists, so do namespaces of other installations the manifests put
    objects in (the GPU Operator's), and KServe's CRDs are installed."""
    control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(MANIFESTS / "namespace.yaml"))
    create_referenced_namespaces(control_plane, (d.body for d in all_docs()))
    install_kserve_crds(control_plane)
    return control_plane


def test_every_manifest_passes_server_side_dry_run(prepared: ControlPlane, namespace: str) -> None:
    """One ``kubectl apply --server-side --dry-run=server`` per file (in parallel), every object
    renamed ``<name>-dry`` so that it is validated as a new object (objects other tests of the
    session made under the real names cannot merge into it); every failing file is reported with
    the API server's message."""
    def dry_run(path: Path) -> str | None:
        text = yaml.safe_dump_all([renamed(in_namespace(doc.body, namespace)) for doc in FILES[path]])
        result = apply(prepared, text, dry_run=True, check=False)
        created = result.stdout.count("serverside-applied (server dry run)")
        if result.returncode != 0 or created != len(FILES[path]):
            return f"{path.relative_to(MANIFESTS)}: {created}/{len(FILES[path])} accepted; {result.stderr.strip()}"
        return None

    with ThreadPoolExecutor(PARALLEL_KUBECTL) as pool:
        failures = [f for f in pool.map(dry_run, FILES) if f]
    assert not failures, "\n".join(failures)


def test_every_manifest_file_is_covered() -> None:
    """The dry run is not silently skipping files: every YAML file under manifests/ is applied
    here, or is only kustomize/scheduler configuration, patches, or optional CRDs' objects."""
    covered = set(FILES)
    for doc in all_docs():
        if doc.path not in covered:
            assert not applicable(doc), f"{doc.rel} is neither dry-run applied nor excluded for a reason"
    assert {"second-scheduler.yaml", "deployment.yaml", "daemonset.yaml", "rbac.yaml"} <= {p.name for p in FILES}


def test_kustomize_build_applies_for_real(prepared: ControlPlane) -> None:
    rendered = deploy_base(prepared)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(rendered) if d}
    assert ("Deployment", "aim-gpu-extender") in kinds and ("DaemonSet", "aim-gpu-deviceplugin") in kinds
    apps = prepared.kubectl("-n", NAMESPACE, "get", "deployments,daemonsets,configmaps,serviceaccounts",
                            "-o", "name").stdout.split()
    for name in ("deployment.apps/aim-gpu-extender", "deployment.apps/aim-gpu-scheduler",
                 "daemonset.apps/aim-gpu-deviceplugin", "configmap/aim-gpu-scheduler-config",
                 "serviceaccount/aim-gpu-extender", "serviceaccount/aim-gpu-deviceplugin",
                 "serviceaccount/aim-gpu-scheduler"):
        assert name in apps, f"{name} not created by the kustomize build: {apps}"
    # Applying again changes nothing (server-side apply is idempotent for our manager).
    again = apply(prepared, rendered, dry_run=True)
    assert "serverside-applied" in again.stdout
    remove_workloads(prepared)


def test_kustomize_build_with_tls_component_passes_dry_run(
        prepared: ControlPlane, tmp_path: Path) -> None:
    rendered = kustomize(prepared, tls_overlay(tmp_path))
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    wanted = ("ConfigMap", "aim-gpu-scheduler-config")
    config = next(d for d in documents if (d["kind"], d["metadata"]["name"]) == wanted)
    tls = second_scheduler_config(API_V1, endpoint=ExtenderEndpoint(tls=ExtenderTLS()))
    assert yaml.safe_load(config["data"]["config.yaml"]) == tls, "the TLS component left the plain config"
    result = apply(prepared, rendered, dry_run=True, check=False)
    assert result.returncode == 0, result.stderr


def kserve_docs(kind: str) -> list[Doc]:
    return [d for d in all_docs() if d.kind == kind and d.api_version.startswith("serving.kserve.io/")]


def test_kserve_examples_are_validated_by_kserve_schema(prepared: ControlPlane, namespace: str) -> None:
    """A valid example passes; the same example with a field of the wrong type is rejected by
    KServe's CRD schema (so the dry run above does validate against it)."""
    isvc = kserve_docs("InferenceService")[0].body
    isvc = in_namespace(isvc, namespace)
    assert apply(prepared, yaml.safe_dump(isvc), dry_run=True).returncode == 0
    broken = copy.deepcopy(isvc)
    broken["spec"]["predictor"]["minReplicas"] = "two"
    result = apply(prepared, yaml.safe_dump(broken), dry_run=True, check=False)
    assert result.returncode != 0
    assert "spec.predictor.minReplicas" in result.stderr, result.stderr
    unknown = copy.deepcopy(isvc)
    unknown["spec"]["predictor"]["gpuPartitions"] = 2
    result = apply(prepared, yaml.safe_dump(unknown), dry_run=True, check=False)
    assert result.returncode != 0 and "gpuPartitions" in result.stderr, result.stderr


def test_cluster_serving_runtime_is_validated_by_kserve_schema(prepared: ControlPlane) -> None:
    runtime = kserve_docs("ClusterServingRuntime")[0].body
    broken = copy.deepcopy(runtime)
    broken["spec"]["supportedModelFormats"] = "vllm"
    result = apply(prepared, yaml.safe_dump(broken), dry_run=True, check=False)
    assert result.returncode != 0 and "supportedModelFormats" in result.stderr, result.stderr


def test_dry_run_rejects_an_unknown_field_of_a_core_object(prepared: ControlPlane, namespace: str) -> None:
    """The dry run above can fail: the API server checks fields strictly (a typo is an error)."""
    deployment = next(d for d in all_docs() if d.kind == "Deployment").body
    broken = copy.deepcopy(renamed(in_namespace(deployment, namespace)))
    broken["spec"]["replica"] = 2
    result = apply(prepared, yaml.safe_dump(broken), dry_run=True, check=False)
    assert result.returncode != 0 and "replica" in result.stderr, result.stderr
