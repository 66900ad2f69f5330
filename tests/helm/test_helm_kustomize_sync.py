"""The kustomize manifests and the chart cannot drift: `kubectl kustomize` of manifests/ (with the
webhook component) and of manifests/partitioner/ against the chart's default release (objects
installed under the prefix hd-aim-gpu in hd-ns, mapped back to the default names): the same kinds
and names, and per object the same images, commands, args, ports, volumes, RBAC rules, bindings,
Service ports, webhook entries and scheduler configuration. Differences that exist on purpose are
listed here, each with its reason."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.controlplane.binaries import kube_bin_dir
from tests.helm.chart_support import REPO
from tests.helm.conftest import DEFAULTS, TLS, Installed

MANIFESTS = REPO / "manifests"
DEFAULT_NAMESPACE = "aim-gpu-sharing"
# Only in the kustomize build: the chart installs into the release namespace (helm --create-namespace).
KUSTOMIZE_ONLY = {("Namespace", DEFAULT_NAMESPACE)}
# Only in the chart: the Grafana dashboards (ConfigMaps for kube-prometheus-stack's sidecar).
CHART_ONLY = {("ConfigMap", "aim-gpu-dashboard-partitions"), ("ConfigMap", "aim-gpu-dashboard-extender"),
              ("ConfigMap", "aim-gpu-dashboard-partitioner")}
SCHEDULER_IMAGE = "registry.k8s.io/kube-scheduler"
EVICTION_RULE = {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]}


def intended_differences(kustomized: dict[str, Any], chart: dict[str, Any]) -> None:
    """Align the two where they differ on purpose (each checked before it is aligned)."""
    name = (kustomized["kind"], kustomized["metadata"]["name"])
    if name == ("Deployment", "aim-gpu-scheduler"):
        # The manifests pin one kube-scheduler release; the chart's tag defaults to the cluster's
        # version (v1.25.0 here), as kube-scheduler must not be newer than the API server.
        ours, theirs = (_containers(o)[0] for o in (chart, kustomized))
        assert ours["image"] == f"{SCHEDULER_IMAGE}:v1.25.0" and theirs["image"].startswith(f"{SCHEDULER_IMAGE}:v")
        ours["image"] = theirs["image"]
    if name == ("ClusterRole", "aim-partitioner-controller"):
        # The chart grants pods/eviction only with partitioner.allowEviction (test_helm_render
        # checks it is there then); the manifests grant it always.
        assert EVICTION_RULE in kustomized["rules"] and EVICTION_RULE not in chart["rules"]
        chart["rules"] = [*chart["rules"], EVICTION_RULE]


def kustomize() -> list[str]:
    if shutil.which("kustomize"):
        return [str(shutil.which("kustomize")), "build"]
    kubectl = shutil.which("kubectl") or (str(kube_bin_dir() / "kubectl") if kube_bin_dir() else None)
    if kubectl is None:
        pytest.skip("neither kustomize nor kubectl found (kubectl: AIM_K8S_BIN, tests/controlplane/README.md)")
    return [kubectl, "kustomize"]


def build(directory: Path) -> list[dict[str, Any]]:
    done = subprocess.run([*kustomize(), str(directory)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module")
def kustomized(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """manifests/ with the webhook component (unless the base already enables it), plus
    manifests/partitioner/ (applied on its own beside AMD's GPU Operator)."""
    base = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    if "webhook" in (base.get("components") or []):
        objects = build(MANIFESTS)
    else:
        overlay = tmp_path_factory.mktemp("webhook-overlay")
        rel = os.path.relpath(MANIFESTS, overlay)
        (overlay / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            f"resources: [{rel}]\ncomponents: [{rel}/webhook]\n")
        objects = build(overlay)
    return objects + build(MANIFESTS / "partitioner")


def normalized(installed: Installed) -> list[dict[str, Any]]:
    """The release's objects (and its hook Job) under the default names and namespace."""
    combination = installed.combination
    text = json.dumps(installed.release.objects + (installed.hooks.jobs if installed.hooks else []))
    text = text.replace("hd-aim-partitioner-controller", "aim-partitioner-controller")
    text = text.replace(combination.prefix, "aim-gpu").replace(combination.namespace, DEFAULT_NAMESPACE)
    objects: list[dict[str, Any]] = json.loads(text)
    for obj in objects:
        obj.setdefault("apiVersion", "batch/v1")
        obj.setdefault("kind", "Job")
        for container in _containers(obj):
            # the chart passes the Lease name only when it differs from the CLI's default
            if "--lease-name=aim-partitioner-controller" in container.get("args", []):
                container["args"].remove("--lease-name=aim-partitioner-controller")
    return objects


def key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    spec = obj.get("spec", {})
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template = spec.get("template")
    # (the hook Job read back from the API server is serialized with the wire names too)
    return template["spec"] if template else None


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = _pod_spec(obj)
    return list(spec.get("containers", [])) if spec else []


def projection(obj: dict[str, Any]) -> dict[str, Any]:
    """What must agree between the two renderings of one object."""
    kind = obj["kind"]
    out: dict[str, Any] = {"apiVersion": obj["apiVersion"], "namespace": obj["metadata"].get("namespace")}
    spec = _pod_spec(obj)
    if spec is not None:
        out["serviceAccountName"] = spec.get("serviceAccountName")
        out["priorityClassName"] = spec.get("priorityClassName")
        out["tolerations"] = spec.get("tolerations")
        out["affinity"] = spec.get("affinity")
        out["securityContext"] = spec.get("securityContext")
        out["volumes"] = sorted(json.dumps(v, sort_keys=True) for v in spec.get("volumes", []))
        out["containers"] = [
            {"name": c["name"], "image": c["image"], "command": c.get("command"), "args": c.get("args"),
             "ports": [(p.get("name"), p["containerPort"]) for p in c.get("ports", [])],
             "env": [e["name"] for e in c.get("env", [])], "resources": c.get("resources"),
             "securityContext": c.get("securityContext"),
             "volumeMounts": sorted((m["name"], m["mountPath"]) for m in c.get("volumeMounts", []))}
            for c in spec["containers"]]
        out["replicas"] = obj["spec"].get("replicas")
    if kind in ("Role", "ClusterRole"):
        out["rules"] = sorted(json.dumps({k: sorted(v) for k, v in r.items()}, sort_keys=True) for r in obj["rules"])
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        out["roleRef"], out["subjects"] = obj["roleRef"], obj["subjects"]
    if kind == "Service":
        out["spec"] = {"type": obj["spec"].get("type"), "selector": obj["spec"]["selector"],
                       "ports": obj["spec"]["ports"]}
    if kind in ("PodDisruptionBudget", "ResourceQuota"):
        out["spec"] = obj["spec"]
    if kind == "MutatingWebhookConfiguration":
        out["webhooks"] = [{k: v for k, v in w.items() if k != "clientConfig"} | {
            "service": w["clientConfig"]["service"]} for w in obj["webhooks"]]
    if kind == "ConfigMap" and "config.yaml" in obj.get("data", {}):
        config = yaml.safe_load(obj["data"]["config.yaml"])
        out["config"] = {k: v for k, v in config.items() if k != "apiVersion"}
    if kind == "CronJob":
        out["schedule"] = obj["spec"]["schedule"]
    return out


@pytest.fixture(scope="module")
def chart(releases: dict[str, Installed]) -> list[dict[str, Any]]:
    return normalized(releases[DEFAULTS.key])


def test_same_kinds_and_names(kustomized: list[dict[str, Any]], chart: list[dict[str, Any]]) -> None:
    from_kustomize = {key(o) for o in kustomized} - KUSTOMIZE_ONLY
    from_chart = {key(o) for o in chart} - CHART_ONLY
    assert sorted(from_kustomize - from_chart) == [], "in manifests/ but not in the chart"
    assert sorted(from_chart - from_kustomize) == [], "in the chart but not in manifests/"
    assert len(from_chart) == len(chart) - len(CHART_ONLY & {key(o) for o in chart}), "an object rendered twice"


def test_each_object_agrees(kustomized: list[dict[str, Any]], chart: list[dict[str, Any]]) -> None:
    rendered = {key(o): o for o in chart}
    mismatches = []
    for obj in kustomized:
        if key(obj) in KUSTOMIZE_ONLY:
            continue
        intended_differences(obj, rendered[key(obj)])
        expected, got = projection(obj), projection(rendered[key(obj)])
        if key(obj) == ("ConfigMap", "aim-gpu-scheduler-config"):
            # The manifests are written for a GA cluster (v1); on this 1.25 pre-release the chart
            # writes v1beta3 (test_helm_render checks the choice); everything else is equal.
            assert yaml.safe_load(obj["data"]["config.yaml"])["apiVersion"].endswith("/v1")
        if expected != got:
            diff = {k: (expected[k], got.get(k)) for k in expected if expected[k] != got.get(k)}
            mismatches.append(f"{key(obj)}: {diff}")
    assert not mismatches, "\n".join(mismatches)


def test_the_certs_hook_ran_what_the_job_runs(kustomized: list[dict[str, Any]],
                                              releases: dict[str, Installed]) -> None:
    installed = releases[DEFAULTS.key]
    assert installed.hooks is not None and not installed.hooks.errors, installed.hooks and installed.hooks.errors
    job = next(o for o in kustomized if key(o) == ("Job", "aim-gpu-webhook-certs"))
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    (ran,) = installed.hooks.ran
    mapped = [a.replace(DEFAULTS.prefix, "aim-gpu").replace(DEFAULTS.namespace, DEFAULT_NAMESPACE) for a in ran]
    start = mapped.index(args[0])  # after the interpreter and its module
    assert mapped[start:start + len(args)] == args


@pytest.fixture(scope="module")
def kustomized_tls(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """manifests/ with components/tls enabled the way manifests/kustomization.yaml says: listed
    before the other components (its patch replaces the extender's args whole)."""
    copy = tmp_path_factory.mktemp("tls") / "manifests"
    shutil.copytree(MANIFESTS, copy)
    kustomization = yaml.safe_load((copy / "kustomization.yaml").read_text())
    kustomization["components"] = ["components/tls", *(kustomization.get("components") or [])]
    (copy / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return build(copy)


def test_tls_matches_the_tls_component(kustomized_tls: list[dict[str, Any]], releases: dict[str, Installed],
                                       chart: list[dict[str, Any]]) -> None:
    """extender.tls.enabled against manifests/components/tls: the scheduler's configuration and CA
    mount, and the extender's certificate volume, mounts, probes and args."""
    tls_chart = {key(o): o for o in normalized(releases[TLS.key])}
    theirs = {key(o): o for o in kustomized_tls}
    for name in (("Deployment", "aim-gpu-scheduler"), ("ConfigMap", "aim-gpu-scheduler-config")):
        intended_differences(theirs[name], tls_chart[name])
        assert projection(theirs[name]) == projection(tls_chart[name]), name
    extender = ("Deployment", "aim-gpu-extender")
    expected, got = projection(theirs[extender]), projection(tls_chart[extender])
    assert expected == got  # args included
    # and they are the plain-HTTP args plus the two TLS flags
    plain = {key(o): o for o in chart}[extender]
    our_args = _containers(tls_chart[extender])[0]["args"]
    assert [a for a in our_args if not a.startswith("--tls-")] == _containers(plain)[0]["args"]
