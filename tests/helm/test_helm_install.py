"""`helm install` into the real control plane: every rendered object exists afterwards, the
post-install hook made the webhook's certificate and caBundle as its own ServiceAccount, and each
ServiceAccount holds the RBAC its component needs and no more (kubectl auth can-i, E's helper)."""

from __future__ import annotations

import base64

from kubernetes import client

from tests.controlplane.access import Access, assert_least_privilege, broad_denials, service_account
from tests.controlplane.harness import ControlPlane
from tests.helm.conftest import DEFAULTS, FULL, Installed

OTHER_NAMESPACE = "default"


def test_every_rendered_object_exists(control_plane: ControlPlane, releases: dict[str, Installed]) -> None:
    wanted: dict[str | None, set[str]] = {}  # namespace (None: cluster-scoped) -> "kind.group/name"
    for installed in releases.values():
        for obj in installed.release.objects:
            group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
            resource = f"{obj['kind'].lower()}.{group}" if group else obj["kind"].lower()
            wanted.setdefault(obj["metadata"].get("namespace"), set()).add(f"{resource}/{obj['metadata']['name']}")
    assert sum(len(v) for v in wanted.values()) > 100
    for namespace, names in wanted.items():
        where = ["-n", namespace] if namespace else []
        found = control_plane.kubectl("get", *sorted(names), *where, "-o", "name").stdout.split()
        assert len(found) == len(names), f"{namespace}: {sorted(names)} -> {found}"


def test_certs_hook_wrote_the_certificate_and_ca_bundle(control_plane: ControlPlane,
                                                        releases: dict[str, Installed]) -> None:
    installed = releases[DEFAULTS.key]
    assert installed.hooks is not None and installed.hooks.ran and not installed.hooks.errors, installed.hooks.errors
    prefix, namespace = DEFAULTS.prefix, DEFAULTS.namespace
    secret = control_plane.core.read_namespaced_secret(f"{prefix}-webhook-tls", namespace)
    assert {"tls.crt", "tls.key", "ca.crt"} <= secret.data.keys()
    webhooks = client.AdmissionregistrationV1Api(control_plane.api).read_mutating_webhook_configuration(
        f"{prefix}-webhook").webhooks
    bundles = {w.client_config.ca_bundle for w in webhooks}
    assert len(bundles) == 1
    assert base64.b64decode(bundles.pop()) == base64.b64decode(secret.data["ca.crt"])
    # hook-delete-policy hook-succeeded: the Job is gone once it succeeded
    jobs = client.BatchV1Api(control_plane.api).list_namespaced_job(namespace).items
    assert not [j for j in jobs if j.metadata.name == f"{prefix}-webhook-certs"]


def test_device_plugin_rbac(control_plane: ControlPlane, releases: dict[str, Installed]) -> None:
    prefix, namespace = DEFAULTS.prefix, DEFAULTS.namespace
    assert_least_privilege(
        control_plane, service_account(namespace, f"{prefix}-deviceplugin"),
        allowed=[Access("get", "nodes"), Access("patch", "nodes")],
        denied=[Access("list", "nodes"), Access("update", "nodes"), Access("patch", "nodes", subresource="status"),
                Access("list", "pods"), *broad_denials(namespace, OTHER_NAMESPACE)])


def test_extender_rbac(control_plane: ControlPlane, releases: dict[str, Installed]) -> None:
    prefix, namespace = DEFAULTS.prefix, DEFAULTS.namespace
    assert_least_privilege(
        control_plane, service_account(namespace, f"{prefix}-extender"),
        allowed=[Access(verb, resource) for verb in ("get", "list", "watch") for resource in ("nodes", "pods")],
        denied=[Access("patch", "nodes"), Access("create", "pods", namespace=OTHER_NAMESPACE),
                Access("create", "pods", namespace=OTHER_NAMESPACE, subresource="binding"),
                Access("list", "configmaps", namespace=namespace), *broad_denials(namespace, OTHER_NAMESPACE)])


def test_second_scheduler_rbac(control_plane: ControlPlane, releases: dict[str, Installed]) -> None:
    prefix, namespace = DEFAULTS.prefix, DEFAULTS.namespace
    assert_least_privilege(
        control_plane, service_account(namespace, f"{prefix}-scheduler"),
        allowed=[Access("create", "pods", namespace=OTHER_NAMESPACE, subresource="binding"),
                 Access("list", "nodes"), Access("watch", "pods"), Access("create", "events.events.k8s.io",
                                                                            namespace=OTHER_NAMESPACE),
                 Access("create", "leases.coordination.k8s.io", namespace=namespace),
                 Access("update", "leases.coordination.k8s.io", namespace=namespace, name="aim-gpu-scheduler"),
                 Access("get", "configmaps", namespace="kube-system", name="extension-apiserver-authentication"),
                 Access("create", "tokenreviews.authentication.k8s.io")],
        denied=[Access("update", "leases.coordination.k8s.io", namespace=namespace, name="other-lease"),
                Access("update", "leases.coordination.k8s.io", namespace="kube-system", name="aim-gpu-scheduler"),
                *broad_denials(namespace, OTHER_NAMESPACE)])


def test_certs_job_rbac(control_plane: ControlPlane, releases: dict[str, Installed]) -> None:
    prefix, namespace = DEFAULTS.prefix, DEFAULTS.namespace
    webhook = f"{prefix}-webhook"
    assert_least_privilege(
        control_plane, service_account(namespace, f"{webhook}-certs"),
        allowed=[Access("get", "secrets", namespace=namespace, name=f"{webhook}-tls"),
                 Access("update", "secrets", namespace=namespace, name=f"{webhook}-tls-ca"),
                 Access("create", "secrets", namespace=namespace),
                 Access("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io", name=webhook)],
        denied=[Access("get", "secrets", namespace=namespace, name="other"),
                Access("create", "secrets", namespace=OTHER_NAMESPACE),
                Access("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io", name="other"),
                Access("create", "mutatingwebhookconfigurations.admissionregistration.k8s.io"),
                Access("get", "secrets", namespace=namespace, name=f"{prefix}-other-tls"),
                Access("*", "*"), Access("list", "secrets", namespace="kube-system")])


def test_partition_controller_rbac(control_plane: ControlPlane, releases: dict[str, Installed]) -> None:
    namespace = FULL.namespace
    name = "hf-aim-partitioner-controller"
    dcm = "kube-amd-gpu"
    assert_least_privilege(
        control_plane, service_account(namespace, name),
        allowed=[Access("watch", "nodes"), Access("patch", "nodes"), Access("list", "pods"),
                 Access("create", "pods", namespace=OTHER_NAMESPACE, subresource="eviction"),
                 Access("create", "events", namespace=OTHER_NAMESPACE),
                 Access("get", "configmaps", namespace=dcm, name="config-manager-config"),
                 Access("patch", "configmaps", namespace=dcm, name="config-manager-config"),
                 Access("create", "configmaps", namespace=dcm),
                 Access("update", "leases.coordination.k8s.io", namespace=namespace, name=name)],
        denied=[Access("get", "configmaps", namespace=dcm, name="other"),
                Access("create", "configmaps", namespace=namespace),
                Access("delete", "nodes"), Access("update", "nodes", subresource="status"),
                Access("delete", "pods", namespace=OTHER_NAMESPACE),
                Access("update", "leases.coordination.k8s.io", namespace=namespace, name="aim-gpu-scheduler"),
                *broad_denials(namespace, OTHER_NAMESPACE)])
