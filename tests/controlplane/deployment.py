"""The project's manifests on the test control plane: kustomize builds (plain and TLS), server-side
apply (real or dry run), and KServe's CRDs from beside the binaries."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests.controlplane.harness import ControlPlane
from tests.controlplane.processes import ProcessError, wait_until

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
NAMESPACE = "aim-gpu-sharing"
FIELD_MANAGER = "aim-tests"
KSERVE_CRDS = ("inferenceservices.serving.kserve.io", "servingruntimes.serving.kserve.io",
               "clusterservingruntimes.serving.kserve.io")
# CRD establishment takes well under a second; a minute only bounds a broken API server.
ESTABLISH_TIMEOUT = 60.0


def kustomize(plane: ControlPlane, directory: Path) -> str:
    """``kubectl kustomize DIR`` (the kustomize built into the harness's kubectl)."""
    return plane.kubectl("kustomize", str(directory)).stdout


def tls_overlay(directory: Path) -> Path:
    """An overlay in ``directory``: the base plus the TLS component, as docs/deployment.md says."""
    rel = os.path.relpath(MANIFESTS, directory)
    (directory / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{rel}]\ncomponents: [{rel}/components/tls]\n")
    return directory


def apply(plane: ControlPlane, documents: str, *, dry_run: bool, namespace: str | None = None,
          check: bool = True) -> subprocess.CompletedProcess[str]:
    """``kubectl apply --server-side --force-conflicts [--dry-run=server] -f -``: the manifests win
    over whatever other tests of the session applied to the same objects."""
    args = ["apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}", "-f", "-"]
    if dry_run:
        args.append("--dry-run=server")
    if namespace:
        args.append(f"--namespace={namespace}")
    return plane.kubectl(*args, stdin=documents, check=check)


# Applied as a dry run only: a real admission webhook without a serving backend would make the
# API server call (and, with failurePolicy Fail, refuse) the session's pod creations.
DRY_RUN_ONLY_KINDS = {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
RBAC_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


WORKLOAD_KINDS = {"Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob"}


def deploy_base(plane: ControlPlane, *, workloads: bool = True) -> str:
    """Apply ``kubectl kustomize manifests/`` for real (idempotent; admission webhook
    configurations only as a dry run; ``workloads=False`` leaves out Deployments, DaemonSets and
    Jobs); the rendered YAML."""
    rendered = kustomize(plane, MANIFESTS)
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    skipped = DRY_RUN_ONLY_KINDS | (set() if workloads else WORKLOAD_KINDS)
    real = [d for d in documents if d["kind"] not in skipped]
    dry = [d for d in documents if d["kind"] in DRY_RUN_ONLY_KINDS]
    apply(plane, yaml.safe_dump_all(real), dry_run=False)
    if dry:
        apply(plane, yaml.safe_dump_all(dry), dry_run=True)
    return rendered


def remove_workloads(plane: ControlPlane) -> None:
    """Delete the project's Deployments, DaemonSets and Jobs and force-delete their pods: nothing
    runs them here, and pods left bound to nodes other tests delete linger in kube-scheduler's
    cache as nodes without a Node."""
    plane.kubectl("-n", NAMESPACE, "delete", "deployments,daemonsets,jobs,cronjobs", "--all", "--wait=false")
    plane.core.delete_collection_namespaced_pod(NAMESPACE, grace_period_seconds=0)


def apply_rbac(plane: ControlPlane, documents: Iterable[Mapping[str, Any]]) -> None:
    """Apply the ServiceAccounts and RBAC objects among ``documents`` for real."""
    wanted = [dict(d) for d in documents if d.get("kind") in RBAC_KINDS]
    if wanted:
        apply(plane, yaml.safe_dump_all(wanted), dry_run=False)


def create_referenced_namespaces(plane: ControlPlane, documents: Iterable[Mapping[str, Any]]) -> list[str]:
    """Create every namespace the documents put objects in that they do not define themselves
    (e.g. ``kube-amd-gpu``, the AMD GPU Operator's, where the partitioner's Role lives); the
    ones created. Defined namespaces (``aim-gpu-sharing``) are applied from their manifest."""
    docs = list(documents)
    defined = {d["metadata"]["name"] for d in docs if d.get("kind") == "Namespace"}
    wanted = {(d.get("metadata") or {}).get("namespace") for d in docs} - defined - {None}
    namespaces = plane.core.list_namespace().items
    existing = {ns.metadata.name for ns in namespaces if ns.metadata and not _terminating(ns)}
    created = sorted(str(ns) for ns in wanted - existing)
    for name in created:  # one another test deleted is still going away: create it anew once gone
        wait_until(lambda name=name: name not in _namespace_names(plane), timeout=60,
                   what=f"namespace {name} to finish terminating")
    for name in created:
        plane.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return created


def _terminating(namespace: client.V1Namespace) -> bool:
    return bool(namespace.status and namespace.status.phase == "Terminating")


def _namespace_names(plane: ControlPlane) -> set[str]:
    return {ns.metadata.name for ns in plane.core.list_namespace().items if ns.metadata}


def install_kserve_crds(plane: ControlPlane) -> None:
    """KServe's own CRDs (``$AIM_K8S_BIN/../crds``), applied and Established (idempotent)."""
    crds = plane.binaries.crds_dir
    if not crds.is_dir():
        raise ProcessError(f"KServe CRDs not found in {crds} (expected beside the binaries, see "
                           "tests/controlplane/README.md)")
    plane.kubectl("apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}", "-f", str(crds))
    api = client.ApiextensionsV1Api(plane.api)

    def established(name: str) -> bool:
        status = api.read_custom_resource_definition(name).status
        return any(c.type == "Established" and c.status == "True" for c in (status and status.conditions) or [])

    for name in KSERVE_CRDS:
        wait_until(functools.partial(established, name), ESTABLISH_TIMEOUT, f"CRD {name} to be Established")
