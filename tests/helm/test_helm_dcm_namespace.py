"""partitioner.enabled=true and the namespace of AMD's Device Config Manager (issue 16, item 5):
the controller's Role for the DCM ConfigMap lives there, so an install into a cluster without it
used to fail half-way with the API server's "namespaces ... not found". Now the install fails at
once, naming the value and the fixes, or (partitioner.dcm.createNamespace) the chart creates it,
keeps it on uninstall, and leaves a namespace it did not create alone. On the real control plane."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from tests.controlplane.harness import ControlPlane
from tests.helm.chart_support import install, install_error, uninstall
from tests.helm.conftest import DCM_NAMESPACE, Installed


def values(name: str, dcm: dict[str, Any]) -> dict[str, Any]:
    """A small release: the controller only (its ClusterRole is named by partitioner.name)."""
    return {"namePrefix": f"{name}-aim-gpu", "webhook": {"enabled": False}, "deviceplugin": {"enabled": False},
            "monitoring": {"dashboards": {"enabled": False}},
            "partitioner": {"enabled": True, "name": f"{name}-partitioner", "dcm": dcm}}


def namespace_or_none(plane: ControlPlane, name: str) -> client.V1Namespace | None:
    try:
        return plane.core.read_namespace(name)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def test_a_missing_dcm_namespace_fails_the_install_with_the_fix(control_plane: ControlPlane,
                                                                 releases: dict[str, Installed]) -> None:
    assert namespace_or_none(control_plane, "hm-no-dcm") is None
    message = install_error(control_plane, "hm", "hm-ns", values("hm", {"namespace": "hm-no-dcm"}))
    assert 'partitioner.enabled=true needs the namespace "hm-no-dcm"' in message
    assert "partitioner.dcm.namespace" in message and "partitioner.dcm.createNamespace=true" in message
    assert "GPU Operator" in message
    assert namespace_or_none(control_plane, "hm-no-dcm") is None


def test_create_namespace_creates_it_and_keeps_it(control_plane: ControlPlane, releases: dict[str, Installed]) -> None:
    dcm = "hc-dcm"
    release = install(control_plane, "hc", "hc-ns", values("hc", {"namespace": dcm, "createNamespace": True}))
    try:
        assert release.one("Namespace", dcm)["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        stored = namespace_or_none(control_plane, dcm)
        assert stored is not None and stored.metadata.annotations["meta.helm.sh/release-name"] == "hc"
        role = client.RbacAuthorizationV1Api(control_plane.api).read_namespaced_role("hc-partitioner-dcm-profiles", dcm)
        assert role.rules[0].resource_names == ["config-manager-config"]
        args = release.one("Deployment", "hc-partitioner")["spec"]["template"]["spec"]["containers"][0]["args"]
        assert f"--dcm-namespace={dcm}" in args
    finally:
        uninstall(control_plane, "hc", "hc-ns")
    try:
        kept = namespace_or_none(control_plane, dcm)
        assert kept is not None and kept.metadata.deletion_timestamp is None, "uninstall must keep the namespace"
    finally:
        control_plane.kubectl("delete", "namespace", dcm, "--wait=false", "--ignore-not-found", check=False)


def test_create_namespace_leaves_an_existing_one_alone(control_plane: ControlPlane,
                                                       releases: dict[str, Installed]) -> None:
    """kube-amd-gpu exists (the GPU Operator's; here conftest's) and is not the release's."""
    assert namespace_or_none(control_plane, DCM_NAMESPACE) is not None
    release = install(control_plane, "he", "he-ns", values("he", {"namespace": DCM_NAMESPACE, "createNamespace": True}))
    uninstall(control_plane, "he", "he-ns")
    assert not release.find("Namespace")
    assert release.one("Role", "he-partitioner-dcm-profiles")["metadata"]["namespace"] == DCM_NAMESPACE
    assert namespace_or_none(control_plane, DCM_NAMESPACE) is not None
