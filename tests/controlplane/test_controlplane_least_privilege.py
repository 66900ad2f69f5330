"""Least privilege, proven on a real API server: for every ServiceAccount in manifests/, what the
component uses is allowed and broad rights are denied (``kubectl auth can-i --as=...``); and the
extender, the second scheduler and the device plugin's label patch actually work as their
ServiceAccounts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from extender.scheduler_config import (
    API_V1BETA3,
    NAMESPACE,
    SCHEDULER_NAME,
    second_scheduler_config,
)
from sizing.contract import LABEL_COUNT
from tests.controlplane import dra_access
from tests.controlplane.access import Access, assert_least_privilege, broad_denials, can_i, service_account
from tests.controlplane.deployment import apply_rbac, create_referenced_namespaces, deploy_base
from tests.controlplane.gpu_cluster import (
    bound_node,
    create_pool,
    delete_pool,
    gpu_pod,
    model_annotations,
    submit,
)
from tests.controlplane.harness import ControlPlane
from tests.controlplane.processes import wait_until
from tests.deploy.deploy_support import all_docs

OTHER = "default"  # a namespace that is not the project's
LEASES = "leases.coordination.k8s.io"
DCM_NAMESPACE = "kube-amd-gpu"  # AMD GPU Operator's namespace; its Device Config Manager reads profiles there
DCM_CONFIGMAP = "config-manager-config"


def read_only(resource: str, namespace: str | None = None) -> list[Access]:
    return [Access(verb, resource, namespace=namespace) for verb in ("get", "list", "watch")]


def list_watch(*resources: str) -> list[Access]:
    return [Access(verb, r) for r in resources for verb in ("list", "watch")]


# What each component does with the API (its code and kube-scheduler's), and what it must not.
NEEDS: dict[str, tuple[list[Access], list[Access]]] = {
    "aim-gpu-extender": (  # extender/watch.py: list + watch nodes and pods; pending_events.py: create events
        read_only("nodes") + read_only("pods") + [Access("create", "events", namespace=OTHER)],
        [Access("create", "pods", namespace=OTHER), Access("delete", "pods", namespace=OTHER),
         Access("patch", "nodes"), Access("update", "nodes", subresource="status"),
         Access("list", "configmaps"), Access("update", "events", namespace=OTHER),
         Access("delete", "events", namespace=OTHER)],
    ),
    "aim-gpu-deviceplugin": (  # deviceplugin: read its Node, merge-patch its labels
        [Access("get", "nodes"), Access("patch", "nodes")],
        [Access("list", "nodes"), Access("watch", "nodes"), Access("update", "nodes"),
         Access("patch", "nodes", subresource="status"), Access("get", "pods", namespace=OTHER),
         Access("list", "pods")],
    ),
    # deviceplugin/dra: its Node (owner reference); its resource.k8s.io rights need a 1.34+ API
    # server and are checked on one by tests/helm/test_helm_dra_plane.py
    "aim-gpu-dra-plugin": (dra_access.CORE_ALLOWED, dra_access.CORE_DENIED),
    "aim-gpu-scheduler": (  # kube-scheduler: informers, binding, status, events, its lease, authn/z
        read_only("pods") + read_only("nodes")
        + [Access("delete", "pods", namespace=OTHER),  # preemption
           Access("create", "pods", namespace=OTHER, subresource="binding"),
           Access("create", "bindings", namespace=OTHER),
           Access("patch", "pods", namespace=OTHER, subresource="status"),
           Access("update", "pods", namespace=OTHER, subresource="status"),
           Access("create", "events.events.k8s.io", namespace=OTHER),
           Access("patch", "events.events.k8s.io", namespace=OTHER),
           Access("create", "events", namespace=OTHER),
           Access("create", LEASES, namespace=NAMESPACE),
           Access("get", LEASES, namespace=NAMESPACE, name=SCHEDULER_NAME),
           Access("update", LEASES, namespace=NAMESPACE, name=SCHEDULER_NAME),
           Access("get", "configmaps", namespace="kube-system", name="extension-apiserver-authentication"),
           Access("create", "tokenreviews.authentication.k8s.io"),
           Access("create", "subjectaccessreviews.authorization.k8s.io")]
        + list_watch("persistentvolumeclaims", "persistentvolumes", "namespaces", "services",
                     "replicationcontrollers", "replicasets.apps", "statefulsets.apps",
                     "poddisruptionbudgets.policy", "storageclasses.storage.k8s.io", "csinodes.storage.k8s.io",
                     "csidrivers.storage.k8s.io"),
        [Access("update", LEASES, namespace=NAMESPACE, name="someone-else"),
         Access("delete", LEASES, namespace=NAMESPACE, name=SCHEDULER_NAME),
         Access("patch", "nodes"), Access("create", "pods", namespace=OTHER)],
    ),
    "aim-gpu-webhook-certs": (  # aim-extender certs: its two Secrets by name, the webhook by name
        [Access("get", "secrets", namespace=NAMESPACE, name="aim-gpu-webhook-tls"),
         Access("update", "secrets", namespace=NAMESPACE, name="aim-gpu-webhook-tls"),
         Access("get", "secrets", namespace=NAMESPACE, name="aim-gpu-webhook-tls-ca"),
         Access("create", "secrets", namespace=NAMESPACE),
         Access("get", "mutatingwebhookconfigurations.admissionregistration.k8s.io", name="aim-gpu-webhook"),
         Access("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io", name="aim-gpu-webhook")],
        [Access("get", "secrets", namespace=NAMESPACE, name="someone-elses"),
         Access("create", "secrets", namespace=OTHER),
         Access("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io", name="other"),
         Access("create", "mutatingwebhookconfigurations.admissionregistration.k8s.io"),
         Access("list", "pods")],
    ),
    "aim-partitioner-controller": (  # partitioner controller (manifests/partitioner/rbac.yaml)
        [*read_only("nodes"), Access("patch", "nodes"), *list_watch("pods"),
         Access("create", "pods", namespace=OTHER, subresource="eviction"),
         Access("create", "events", namespace=OTHER),
         Access("create", LEASES, namespace=NAMESPACE),
         Access("get", LEASES, namespace=NAMESPACE, name="aim-partitioner-controller"),
         Access("update", LEASES, namespace=NAMESPACE, name="aim-partitioner-controller"),
         Access("get", "configmaps", namespace=DCM_NAMESPACE, name=DCM_CONFIGMAP),
         Access("patch", "configmaps", namespace=DCM_NAMESPACE, name=DCM_CONFIGMAP),
         Access("create", "configmaps", namespace=DCM_NAMESPACE)],
        [Access("delete", "pods", namespace=OTHER), Access("update", "nodes"),
         Access("patch", "configmaps", namespace=DCM_NAMESPACE, name="someone-elses"),
         Access("get", "configmaps", namespace=NAMESPACE, name=DCM_CONFIGMAP),
         Access("update", LEASES, namespace=NAMESPACE, name=SCHEDULER_NAME)],
    ),
}


def service_accounts() -> list[str]:
    return sorted({d.name for d in all_docs() if d.kind == "ServiceAccount"})


@pytest.fixture(scope="module")
def deployed(control_plane: ControlPlane) -> ControlPlane:
    """The kustomize build applied for real (without workloads: nothing runs them here), and every
    ServiceAccount/RBAC object in manifests/ (components included)."""
    control_plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=_namespace_yaml())
    deploy_base(control_plane, workloads=False)
    create_referenced_namespaces(control_plane, (d.body for d in all_docs()))
    apply_rbac(control_plane, (d.body for d in all_docs()))
    return control_plane


def _namespace_yaml() -> str:
    return next(d.path for d in all_docs() if d.kind == "Namespace").read_text()


def test_every_service_account_has_expectations() -> None:
    missing = [sa for sa in service_accounts() if sa not in NEEDS]
    assert not missing, f"add what these ServiceAccounts use and must not do to NEEDS: {missing}"


@pytest.mark.parametrize("name", service_accounts())
def test_service_account_has_what_it_uses_and_nothing_broad(deployed: ControlPlane, name: str) -> None:
    allowed, denied = NEEDS[name]
    assert_least_privilege(deployed, service_account(NAMESPACE, name), allowed=allowed,
                           denied=denied + list(broad_denials(NAMESPACE, OTHER)))


def test_the_checker_can_fail(deployed: ControlPlane) -> None:
    """A denied right reported as allowed, and an allowed one as denied, both fail the check."""
    subject = service_account(NAMESPACE, "aim-gpu-extender")
    assert can_i(deployed, subject, Access("list", "nodes"))
    with pytest.raises(AssertionError, match="too broad: list nodes"):
        assert_least_privilege(deployed, subject, allowed=[], denied=[Access("list", "nodes")])
    with pytest.raises(AssertionError, match="missing: delete nodes"):
        assert_least_privilege(deployed, subject, allowed=[Access("delete", "nodes")], denied=[])


@pytest.fixture
def as_service_accounts(deployed: ControlPlane) -> Iterator[tuple[ControlPlane, dict[str, str]]]:
    pool = create_pool(deployed, "rbac")
    yield deployed, dict(pool.nodes)
    delete_pool(deployed, pool)


def test_components_work_as_their_service_accounts(
        as_service_accounts: tuple[ControlPlane, dict[str, str]], namespace: str) -> None:
    plane, nodes = as_service_accounts
    # The device plugin patches its node's labels, and can do nothing else to it.
    plugin = plane.service_account_kubeconfig(NAMESPACE, "aim-gpu-deviceplugin")
    plane.kubectl("label", "node", nodes["cpx8"], f"{LABEL_COUNT}=8", "--overwrite", kubeconfig=plugin)
    refused = plane.kubectl("delete", "node", nodes["cpx8"], kubeconfig=plugin, check=False)
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower(), refused.stderr

    # The extender lists and watches nodes and pods with its ServiceAccount (ready = synced).
    extender = plane.start_extender(node_cache="watch",
                                    kubeconfig=plane.service_account_kubeconfig(NAMESPACE, "aim-gpu-extender"))
    scheduler = None
    try:
        # The second scheduler, as its ServiceAccount, with leader election on its own lease.
        config = second_scheduler_config(
            API_V1BETA3, endpoint=extender.endpoint(),
            kubeconfig=str(plane.service_account_kubeconfig(NAMESPACE, SCHEDULER_NAME)))
        scheduler = plane.start_scheduler(config, name="aim-gpu-scheduler-as-sa")
        submit(plane.core, namespace, gpu_pod("as-sa", scheduler=SCHEDULER_NAME, pool="rbac",
                                              annotations=model_annotations("meta-llama/Llama-3.1-8B-Instruct",
                                                                            "fp16")))
        assert bound_node(plane.core, namespace, "as-sa") == nodes["cpx8"]
        lease = wait_until(lambda: plane.kubectl("-n", NAMESPACE, "get", "lease", SCHEDULER_NAME, "-o",
                                                 "jsonpath={.spec.holderIdentity}", check=False).stdout,
                           10.0, "the scheduler's lease")
        assert lease, "the scheduler holds no lease"
    finally:
        if scheduler is not None:
            plane.stop_process(scheduler)
        plane.stop_process(extender.process)
