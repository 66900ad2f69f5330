"""Releases of the chart installed once into the real control plane, one per values combination
the tests look at; each in its own namespace and with its own name prefix, so cluster-scoped
objects (ClusterRoles, the webhook) never collide with another release or with the kustomize
manifests other tests apply. Package scope: they are uninstalled (their namespaces deleted)
when the last test of tests/helm is done, so their webhooks (fail closed, with no pod behind them
on a control plane without kubelets) never see another package's opted-in objects."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.controlplane.harness import ControlPlane
from tests.helm.chart_support import HookRunner, Release, apply_standin_crds, helm, install, uninstall


@dataclass(frozen=True)
class Combination:
    key: str
    values: dict[str, Any]

    @property
    def prefix(self) -> str:
        return f"h{self.key}-aim-gpu"

    @property
    def namespace(self) -> str:
        return f"h{self.key}-ns"

    @property
    def release(self) -> str:
        return f"h{self.key}"


# defaults: what `helm install` without values gives (second scheduler, webhook with the certs hook),
# plus the partition controller (off by default) under its own name, to compare with its manifests.
DEFAULTS = Combination("d", {"partitioner": {"enabled": True, "name": "hd-aim-partitioner-controller"}})
# everything optional on: cert-manager certificates, monitors, alerts, the partition controller.
FULL = Combination("f", {
    "webhook": {"certificates": {"mode": "cert-manager"}, "failurePolicy": "Ignore", "timeoutSeconds": 5},
    "partitioner": {"enabled": True, "mode": "apply", "allowEviction": True, "name": "hf-aim-partitioner-controller"},
    "monitoring": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
                   "podMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
                   "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}}},
    "extender": {"port": 9888, "replicas": 3, "policy": "spread",
                 "models": {"create": True, "files": {"org--model.json": {"id": "org/model"}}}},
    "deviceplugin": {"metricsPort": 9500, "priorityClassName": "", "nodeSelector": {"gpu": "amd"}},
    "imagePullSecrets": [{"name": "registry"}],
    "commonLabels": {"team": "ml-platform"},
})
# the default scheduler's snippet, rendered for a 1.30 cluster; node cache off, no webhook, no labels.
SNIPPET = Combination("s", {
    "kubeVersionOverride": "v1.30.2",
    "scheduler": {"mode": "default-scheduler"},
    "webhook": {"enabled": False},
    "extender": {"cacheMode": "off"},
    "deviceplugin": {"nodeLabels": False},
    "resourceName": "example.com/gpu-slice",
    "monitoring": {"dashboards": {"enabled": False}},
})
# a second scheduler for a k3s 1.31 cluster: v1 and the tag without "+k3s1".
V1 = Combination("v", {
    "kubeVersionOverride": "v1.31.4+k3s1",
    "webhook": {"enabled": False},
    "deviceplugin": {"enabled": False},
    "scheduler": {"image": {"pullPolicy": "Always"}},
})
# HTTPS from the second scheduler to the extender, its certificate from cert-manager.
TLS = Combination("t", {
    "extender": {"tls": {"enabled": True, "certManager": True}},
    "monitoring": {"dashboards": {"enabled": False}},
})
# native mode: the second scheduler without the extender (certificates by cert-manager: no hook to run).
NATIVE = Combination("n", {
    "scheduler": {"mode": "native"},
    "webhook": {"certificates": {"mode": "cert-manager"}},
    "deviceplugin": {"enabled": False},
    "monitoring": {"dashboards": {"enabled": False}},
})
COMBINATIONS = (DEFAULTS, FULL, SNIPPET, V1, TLS, NATIVE)
DCM_NAMESPACE = "kube-amd-gpu"  # values.yaml partitioner.dcm.namespace


@dataclass(frozen=True)
class Installed:
    combination: Combination
    release: Release
    hooks: HookRunner | None


def _values(combination: Combination) -> dict[str, Any]:
    return {"namePrefix": combination.prefix, **combination.values}


@pytest.fixture(scope="package")
def releases(control_plane: ControlPlane) -> Iterator[dict[str, Installed]]:
    helm()
    apply_standin_crds(control_plane)
    # The partition controller's Role lives in the DCM namespace (the AMD GPU Operator's).
    created_dcm = control_plane.kubectl("create", "namespace", DCM_NAMESPACE, check=False).returncode == 0
    installed: dict[str, Installed] = {}
    try:
        for combination in COMBINATIONS:
            hooks = None
            values = _values(combination)
            job_mode = values.get("webhook", {}).get("enabled", True) and \
                values.get("webhook", {}).get("certificates", {}).get("mode", "job") == "job"
            if job_mode:
                hooks = HookRunner(control_plane, combination.namespace, f"{combination.prefix}-webhook-certs")
                with hooks.running():
                    release = install(control_plane, combination.release, combination.namespace, values)
            else:
                release = install(control_plane, combination.release, combination.namespace, values)
            installed[combination.key] = Installed(combination, release, hooks)
        yield installed
    finally:
        for entry in installed.values():
            uninstall(control_plane, entry.combination.release, entry.combination.namespace)
        if created_dcm:
            control_plane.kubectl("delete", "namespace", DCM_NAMESPACE, "--wait=false", check=False)
