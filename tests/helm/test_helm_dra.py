"""DRA mode of the chart (``dra.enabled``, docs/dra.md), installed by Helm into the real control plane:

- the install fails, before any object is made, on a cluster that does not serve resource.k8s.io/v1
  (this v1.25 API server), with the message saying why; ``dra.skipApiCheck`` goes past that check;
- with the group served (a stand-in CRD for DeviceClass, tests/helm/data/standin-dra-crds.yaml;
  tests/helm/test_helm_dra_plane.py does it on a real 1.34 API server): the DRA plugin DaemonSet
  (arguments read by the plugin's own parser, every path it writes or reads a hostPath mount),
  its RBAC, the DeviceClass of sizing.contract.DRA_DRIVER, the DRA webhook configuration, no device
  plugin unless kept, and the certs hook (``aim-extender certs``, run here) setting the caBundle of
  both webhook configurations;
- off (the default): none of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from deviceplugin.dra.__main__ import build_parser
from deviceplugin.dra.cdi import DEFAULT_CDI_DIR
from deviceplugin.dra.kubelet_plugin import DEFAULT_PLUGIN_DIR, DEFAULT_REGISTRY_DIR
from sizing.contract import DRA_DRIVER
from tests.controlplane.harness import ControlPlane
from tests.helm.chart_support import (
    DATA,
    HookRunner,
    Release,
    apply_standin_crds,
    helm,
    install,
    install_error,
    uninstall,
)
from tests.helm.conftest import DEFAULTS, Installed

DRA_API = "resource.k8s.io/v1"
# resource.k8s.io/v1 is served from 1.34; the newest schema kubernetes-validate ships.
SCHEMA_VERSIONS = ("1.34", "1.37")
CUSTOM_KINDS = {"Certificate", "Issuer"}
# What the plugin calls (deviceplugin/dra/publish.py, kubelet_plugin.py), nothing more.
PLUGIN_RULES = [
    {"apiGroups": ["resource.k8s.io"], "resources": ["resourceslices"],
     "verbs": ["list", "create", "update", "delete"]},
    {"apiGroups": ["resource.k8s.io"], "resources": ["resourceclaims"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
]


@dataclass(frozen=True)
class Dra:
    refused: str  # the install error without resource.k8s.io/v1
    forced: str  # the install error with dra.skipApiCheck (the API server's, past the chart's check)
    job: Release  # dra.enabled, certificates by the hook Job
    hooks: HookRunner
    webhooks: dict[str, dict[str, Any]]  # the MutatingWebhookConfigurations after the hook ran
    kept: Release  # dra.enabled with the device plugin kept, on other nodes; cert-manager


def _values(key: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {"namePrefix": f"h{key}-aim-gpu", "monitoring": {"dashboards": {"enabled": False}}, **extra}


def _served(plane: ControlPlane) -> bool:
    return DRA_API in plane.kubectl("api-versions").stdout.split()


def _webhook_configuration(plane: ControlPlane, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(plane.kubectl("get", "mutatingwebhookconfiguration", name, "-o", "json").stdout)
    return loaded


@pytest.fixture(scope="module")
def dra(control_plane: ControlPlane) -> Iterator[Dra]:
    helm()
    if _served(control_plane):
        pytest.fail("resource.k8s.io/v1 is already served by the session's control plane: the refusal cannot be tested")
    refused = install_error(control_plane, "hq", "hq-ns", _values("q", {"dra": {"enabled": True}}))
    forced = install_error(control_plane, "hq", "hq-ns", _values("q", {"dra": {"enabled": True, "skipApiCheck": True}}))
    control_plane.kubectl("delete", "namespace", "hq-ns", "--wait=false", "--ignore-not-found", check=False)
    apply_standin_crds(control_plane)  # cert-manager's kinds, for the cert-manager release
    crd = str(DATA / "standin-dra-crds.yaml")
    control_plane.kubectl("apply", "--server-side", "-f", crd)
    control_plane.kubectl("wait", "--for=condition=Established", "crd/deviceclasses.resource.k8s.io", "--timeout=30s")
    deadline = time.monotonic() + 30
    while not _served(control_plane):  # discovery follows Established within a moment
        assert time.monotonic() < deadline, "resource.k8s.io/v1 not in discovery 30 s after the CRD"
        time.sleep(0.2)
    try:
        hooks = HookRunner(control_plane, "hr-ns", "hr-aim-gpu-webhook-certs")
        with hooks.running():
            job = install(control_plane, "hr", "hr-ns", _values("r", {"dra": {"enabled": True}}))
        webhooks = {name: _webhook_configuration(control_plane, name)
                    for name in ("hr-aim-gpu-webhook", "hr-aim-gpu-webhook-dra")}
        # The DeviceClass is cluster-scoped with a fixed name (the driver's): one release at a time.
        uninstall(control_plane, "hr", "hr-ns")
        kept = install(control_plane, "hk", "hk-ns", _values("k", {
            "dra": {"enabled": True, "keepDevicePlugin": True, "nodeSelector": {"pool": "dra"}},
            "deviceplugin": {"nodeSelector": {"pool": "device-plugin"}},
            "webhook": {"certificates": {"mode": "cert-manager"}}}))
        uninstall(control_plane, "hk", "hk-ns")
        yield Dra(refused, forced, job, hooks, webhooks, kept)
    finally:
        control_plane.kubectl("delete", "-f", crd, "--wait=false", "--ignore-not-found", check=False)


def test_install_without_resource_k8s_io_v1_fails_saying_why(dra: Dra) -> None:
    assert "dra.enabled: this cluster (Kubernetes v1.25" in dra.refused
    assert "does not serve resource.k8s.io/v1" in dra.refused and "dra.skipApiCheck=true" in dra.refused


def test_skip_api_check_renders_past_the_check(dra: Dra) -> None:
    """Forced, the chart renders; then it is the API server that has no DeviceClass."""
    assert "does not serve resource.k8s.io/v1" not in dra.forced
    assert "DeviceClass" in dra.forced


def test_off_by_default(releases: dict[str, Installed]) -> None:
    objects = releases[DEFAULTS.key].release
    assert objects.find("DeviceClass") == []
    assert [o["metadata"]["name"] for o in objects.find("DaemonSet")] == [f"{DEFAULTS.prefix}-deviceplugin"]
    assert objects.find("MutatingWebhookConfiguration", f"{DEFAULTS.prefix}-webhook-dra") == []
    cron = objects.one("CronJob", f"{DEFAULTS.prefix}-webhook-certs")
    args = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--webhook=")] == [f"--webhook={DEFAULTS.prefix}-webhook"]


def test_every_object_is_valid(dra: Dra) -> None:
    for release in (dra.job, dra.kept):
        for obj in release.objects:
            if obj["kind"] in CUSTOM_KINDS:
                continue
            for version in SCHEMA_VERSIONS:
                kubernetes_validate.validate(obj, version, strict=True)


def test_device_class_selects_the_driver(dra: Dra) -> None:
    device_class = dra.job.one("DeviceClass", DRA_DRIVER)
    assert device_class["apiVersion"] == DRA_API
    assert device_class["spec"]["selectors"] == [{"cel": {"expression": f'device.driver == "{DRA_DRIVER}"'}}]


def test_device_plugin_off_unless_kept(dra: Dra) -> None:
    assert [o["metadata"]["name"] for o in dra.job.find("DaemonSet")] == ["hr-aim-gpu-dra-plugin"]
    assert dra.job.find("ServiceAccount", "hr-aim-gpu-deviceplugin") == []
    assert dra.job.find("ClusterRole", "hr-aim-gpu-deviceplugin") == []
    selectors = {o["metadata"]["name"]: o["spec"]["template"]["spec"]["nodeSelector"]
                 for o in dra.kept.find("DaemonSet")}
    assert selectors == {"hk-aim-gpu-dra-plugin": {"pool": "dra"}, "hk-aim-gpu-deviceplugin": {"pool": "device-plugin"}}


def _mounts(pod: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """mountPath -> (host path, read only) of the container's hostPath volumes."""
    (container,) = pod["containers"]
    host = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    return {m["mountPath"]: (host[m["name"]], bool(m.get("readOnly"))) for m in container["volumeMounts"]
            if m["name"] in host}


def test_daemonset_runs_the_kubelet_plugin_on_the_kubelets_paths(dra: Dra) -> None:
    pod = dra.job.one("DaemonSet", "hr-aim-gpu-dra-plugin")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "deviceplugin.dra"]
    args = build_parser().parse_args(container["args"])  # the plugin's own parser
    assert args.kubelet_plugin and not args.once
    assert args.node_name == "$(NODE_NAME)"
    (env,) = [e for e in container["env"] if e["name"] == "NODE_NAME"]
    assert env["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert args.interval == 30
    mounts = _mounts(pod)
    # the kubelet's directories and the CDI directory at the paths the kubelet and runtime use, writable
    for path, default in ((args.registry_dir, DEFAULT_REGISTRY_DIR), (args.plugin_dir, DEFAULT_PLUGIN_DIR),
                          (args.cdi_dir, DEFAULT_CDI_DIR)):
        assert path == Path(default)
        assert mounts[str(path)] == (str(path), False), path
    assert args.plugin_dir == Path("/var/lib/kubelet/plugins") / DRA_DRIVER
    # the host's sysfs and /dev, read only
    assert mounts[str(args.sysfs_root)] == ("/sys", True)
    assert mounts[str(args.dev_root)] == ("/dev", True)
    assert set(mounts) == {str(p) for p in (args.registry_dir, args.plugin_dir, args.cdi_dir, args.sysfs_root,
                                            args.dev_root)}
    security = container["securityContext"]
    assert security["privileged"] is False and security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True
    # the device plugin's nodes and image when dra.* does not say otherwise
    device_plugin = dra.kept.one("DaemonSet", "hk-aim-gpu-deviceplugin")["spec"]["template"]["spec"]
    assert pod["affinity"] == device_plugin["affinity"] and pod["tolerations"] == device_plugin["tolerations"]
    assert container["image"] == device_plugin["containers"][0]["image"]


def test_rbac_is_what_the_plugin_calls_bound_to_its_service_account(dra: Dra) -> None:
    pod = dra.job.one("DaemonSet", "hr-aim-gpu-dra-plugin")["spec"]["template"]["spec"]
    account = pod["serviceAccountName"]
    dra.job.one("ServiceAccount", account)
    binding = dra.job.one("ClusterRoleBinding", "hr-aim-gpu-dra-plugin")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "hr-ns"}]
    role = dra.job.one("ClusterRole", binding["roleRef"]["name"])
    assert role["rules"] == PLUGIN_RULES


def test_dra_webhook_configuration(dra: Dra) -> None:
    (hook,) = dra.job.one("MutatingWebhookConfiguration", "hr-aim-gpu-webhook-dra")["webhooks"]
    assert hook["clientConfig"]["service"] == {"name": "hr-aim-gpu-webhook", "namespace": "hr-ns", "path": "/mutate",
                                               "port": 443}
    assert hook["rules"] == [{"apiGroups": ["resource.k8s.io"], "apiVersions": ["v1"],
                              "resources": ["resourceclaimtemplates"], "operations": ["CREATE"], "scope": "Namespaced"}]
    assert hook["failurePolicy"] == "Fail" and hook["matchPolicy"] == "Exact"
    assert ["kube-system", "hr-ns"] in [e["values"] for e in hook["namespaceSelector"]["matchExpressions"]]
    kept = dra.kept.one("MutatingWebhookConfiguration", "hk-aim-gpu-webhook-dra")
    assert kept["metadata"]["annotations"] == {"cert-manager.io/inject-ca-from": "hk-ns/hk-aim-gpu-webhook"}
    assert dra.kept.find("CronJob") == []


def test_certs_hook_sets_the_ca_bundle_of_both_configurations(dra: Dra) -> None:
    assert dra.hooks.errors == []
    (argv,) = dra.hooks.ran
    assert [a for a in argv if a.startswith("--webhook=")] == ["--webhook=hr-aim-gpu-webhook",
                                                               "--webhook=hr-aim-gpu-webhook-dra"]
    bundles = {hook["caBundle"] for configuration in dra.webhooks.values()
               for hook in (w["clientConfig"] for w in configuration["webhooks"])}
    assert len(bundles) == 1 and all(bundles)
    role = dra.job.one("ClusterRole", "hr-aim-gpu-webhook-certs")
    assert role["rules"][0]["resourceNames"] == ["hr-aim-gpu-webhook", "hr-aim-gpu-webhook-dra"]


def test_notes_name_the_dra_checks(dra: Dra) -> None:
    assert "kubectl get deviceclass gpu-partition.amd.com" in dra.job.notes
    assert "The device plugin DaemonSet is not installed" in dra.job.notes
    assert "The device plugin DaemonSet is not installed" not in dra.kept.notes
