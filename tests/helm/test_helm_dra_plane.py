"""The chart in DRA mode installed by Helm into a real Kubernetes 1.34+ control plane (the binaries
of tests/dra, built by tests/dra/build_control_plane.sh; skipped with how to build them when absent,
marker ``optional_tools``): the cluster's own resource.k8s.io/v1 passes the chart's check, the API
server stores the DeviceClass, the DaemonSet and the webhook configurations (certificates by
cert-manager here), and the plugin run as
the DaemonSet's ServiceAccount, with the DaemonSet's arguments, publishes a node's partitions: the
chart's RBAC is enough for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sizing.contract import DRA_DRIVER
from tests.controlplane import dra_access
from tests.controlplane.access import assert_least_privilege, broad_denials, service_account
from tests.controlplane.harness import ControlPlane
from tests.dra.binaries import configured_planes, find_dra_binaries
from tests.helm.chart_support import Release, apply_standin_crds, helm, install

pytestmark = pytest.mark.optional_tools

SYSFS = Path(__file__).resolve().parents[1] / "fixtures" / "sysfs" / "mi308x"
NAMESPACE = "aim-gpu-sharing"


@pytest.fixture(scope="module")
def installed() -> Iterator[tuple[ControlPlane, Release]]:
    helm()
    # The first plane tests/dra knows (1.34 by default): the oldest release the chart's DRA mode claims.
    binaries = find_dra_binaries(configured_planes()[0])
    if isinstance(binaries, str):
        pytest.skip(binaries)
    with tempfile.TemporaryDirectory(prefix="aim-helm-dra-") as workdir:
        plane = ControlPlane(binaries, Path(workdir))
        try:
            plane.start(default_scheduler=False)
            # Certificates by cert-manager (stand-in CRDs): a 1.34 API server refuses the Job status the
            # hook stand-in writes (SuccessCriteriaMet first); tests/helm/test_helm_dra.py runs the hook.
            apply_standin_crds(plane)
            release = install(plane, "aim", NAMESPACE, {"dra": {"enabled": True},
                                                        "webhook": {"certificates": {"mode": "cert-manager"}}})
            yield plane, release
        finally:
            plane.stop()


def get_json(plane: ControlPlane, *args: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(plane.kubectl("get", *args, "-o", "json").stdout)
    return loaded


def test_the_api_server_stores_the_dra_objects(installed: tuple[ControlPlane, Release]) -> None:
    plane, release = installed
    assert release.find("DeviceClass", DRA_DRIVER)
    stored = get_json(plane, "deviceclass", DRA_DRIVER)
    assert stored["spec"]["selectors"] == [{"cel": {"expression": f'device.driver == "{DRA_DRIVER}"'}}]
    get_json(plane, "-n", NAMESPACE, "daemonset", "aim-gpu-dra-plugin")
    assert plane.kubectl("-n", NAMESPACE, "get", "daemonset", "aim-gpu-deviceplugin",
                         check=False).returncode != 0, "the device plugin is off in DRA mode"
    for name in ("aim-gpu-webhook", "aim-gpu-webhook-dra"):
        stored = get_json(plane, "mutatingwebhookconfiguration", name)
        assert stored["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NAMESPACE}/aim-gpu-webhook"


def test_the_plugin_publishes_with_the_charts_rbac(installed: tuple[ControlPlane, Release]) -> None:
    plane, release = installed
    pod = release.one("DaemonSet", "aim-gpu-dra-plugin")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    plane.create_node("helm-dra-node", partitions=None)
    kubeconfig = plane.service_account_kubeconfig(NAMESPACE, pod["serviceAccountName"])
    # The DaemonSet's arguments, once, on a captured node's sysfs; the kubelet's paths are not needed for --once.
    args = [a for a in container["args"] if a.startswith("--interval=")]
    argv = [sys.executable, *container["command"][1:], *args, "--once", "--node-name=helm-dra-node",
            f"--sysfs-root={SYSFS}"]
    done = subprocess.run(argv, env=dict(os.environ, KUBECONFIG=str(kubeconfig)), capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    (stored,) = get_json(plane, "resourceslices", "--field-selector=spec.nodeName=helm-dra-node")["items"]
    assert stored["spec"]["driver"] == DRA_DRIVER
    assert stored["metadata"]["ownerReferences"][0]["kind"] == "Node"  # nodes get: granted
    # publishing again lists and writes nothing; what the role grants and what it does not
    again = subprocess.run(argv, env=dict(os.environ, KUBECONFIG=str(kubeconfig)), capture_output=True, text=True,
                           timeout=60, check=False)
    assert again.returncode == 0 and "unchanged" in again.stdout, again.stderr
    assert_least_privilege(
        plane, service_account(NAMESPACE, pod["serviceAccountName"]),
        allowed=dra_access.CORE_ALLOWED + dra_access.RESOURCE_ALLOWED,
        denied=[*dra_access.CORE_DENIED, *dra_access.RESOURCE_DENIED, *broad_denials(NAMESPACE, "default")])
