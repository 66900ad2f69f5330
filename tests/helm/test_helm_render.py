"""The chart rendered by Helm (helm-sdkpy ``Install`` into the real control plane, which reports
v1.25.0-mykubernetes) with several values combinations (tests/helm/conftest.py): every object
valid against the Kubernetes schemas, the scheduler configuration equal to what
extender/scheduler_config.py builds, the version-dependent choices, and the optional parts."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
import yaml

from extender.scheduler_config import (
    API_V1,
    API_V1BETA3,
    TLS_CA_FILE,
    ExtenderEndpoint,
    ExtenderTLS,
    default_scheduler_config,
    native_scheduler_config,
    second_scheduler_config,
)
from sizing.contract import RESOURCE_NAME
from tests.controlplane.harness import ControlPlane
from tests.deploy.deploy_support import parse_flags
from tests.helm.chart_support import CHART, install, install_error, uninstall
from tests.helm.conftest import COMBINATIONS, DEFAULTS, FULL, NATIVE, SNIPPET, TLS, V1, Combination, Installed

# Kinds of cert-manager and the Prometheus Operator: not in the Kubernetes schemas, checked below.
CUSTOM_KINDS = {"Certificate", "Issuer", "ServiceMonitor", "PodMonitor", "PrometheusRule"}
# The oldest version the chart is installed on here and the newest the schemas know.
SCHEMA_VERSIONS = ("1.25", "1.37")


def release(releases: dict[str, Installed], combination: Combination) -> Installed:
    return releases[combination.key]


def scheduler_config(installed: Installed, suffix: str = "config") -> dict[str, Any]:
    configmap = installed.release.one("ConfigMap", f"{installed.combination.prefix}-scheduler-{suffix}")
    loaded: dict[str, Any] = yaml.safe_load(configmap["data"]["config.yaml"])
    return loaded


def endpoint(combination: Combination, *, port: int = 8888, node_cache: bool = True) -> ExtenderEndpoint:
    return ExtenderEndpoint(host=f"{combination.prefix}-extender.{combination.namespace}.svc", port=port,
                            node_cache_capable=node_cache)


@pytest.mark.parametrize("combination", COMBINATIONS, ids=lambda c: c.key)
def test_every_object_is_valid(releases: dict[str, Installed], combination: Combination) -> None:
    objects = release(releases, combination).release.objects
    assert objects
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        for version in SCHEMA_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("combination", COMBINATIONS, ids=lambda c: c.key)
def test_objects_are_namespaced_and_labelled(releases: dict[str, Installed], combination: Combination) -> None:
    for obj in release(releases, combination).release.objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "aim-gpu-sharing", obj["metadata"]["name"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        namespace = obj["metadata"].get("namespace")
        if namespace is not None:
            assert namespace in (combination.namespace, "kube-system", "kube-amd-gpu"), obj["metadata"]["name"]


def test_second_scheduler_config_is_v1beta3_on_this_prerelease(releases: dict[str, Installed]) -> None:
    installed = release(releases, DEFAULTS)
    expected = second_scheduler_config(API_V1BETA3, endpoint=endpoint(DEFAULTS))
    expected["leaderElection"]["resourceNamespace"] = DEFAULTS.namespace
    assert scheduler_config(installed) == expected


def test_scheduler_image_defaults_to_the_cluster_version(releases: dict[str, Installed]) -> None:
    deployment = release(releases, DEFAULTS).release.one("Deployment", f"{DEFAULTS.prefix}-scheduler")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    # v1.25.0-mykubernetes without its suffix
    assert container["image"] == "registry.k8s.io/kube-scheduler:v1.25.0"
    checksum = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert len(checksum) == 64


def test_second_scheduler_config_is_v1_on_a_ga_cluster(releases: dict[str, Installed]) -> None:
    installed = release(releases, V1)
    expected = second_scheduler_config(API_V1, endpoint=endpoint(V1))
    expected["leaderElection"]["resourceNamespace"] = V1.namespace
    assert scheduler_config(installed) == expected
    deployment = installed.release.one("Deployment", f"{V1.prefix}-scheduler")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.k8s.io/kube-scheduler:v1.31.4"  # "+k3s1" stripped
    assert container["imagePullPolicy"] == "Always"
    assert not installed.release.find("DaemonSet")  # deviceplugin.enabled: false


def test_default_scheduler_snippet(releases: dict[str, Installed]) -> None:
    installed = release(releases, SNIPPET)
    config = scheduler_config(installed, "default-scheduler-config")
    expected = default_scheduler_config(API_V1, endpoint=endpoint(SNIPPET, node_cache=False))
    expected["extenders"][0]["managedResources"][0]["name"] = "example.com/gpu-slice"
    assert config == expected
    assert not [d for d in installed.release.find("Deployment") if d["metadata"]["name"].endswith("-scheduler")]
    assert not installed.release.find("MutatingWebhookConfiguration")
    extender = installed.release.one("Deployment", f"{SNIPPET.prefix}-extender")
    flags = parse_flags(extender["spec"]["template"]["spec"]["containers"][0]["args"])
    assert flags["--node-cache"] == "off"
    assert not any(flag.startswith("--webhook") for flag in flags)
    plugin = installed.release.one("DaemonSet", f"{SNIPPET.prefix}-deviceplugin")
    plugin_flags = parse_flags(plugin["spec"]["template"]["spec"]["containers"][0]["args"])
    assert plugin_flags["--resource-name"] == "example.com/gpu-slice"
    assert "--no-node-labels" in plugin_flags
    assert not installed.release.find("ClusterRole", f"{SNIPPET.prefix}-deviceplugin"), "no labels, no node RBAC"
    assert "get configmap" in installed.release.notes and "--config" in installed.release.notes


def test_default_scheduler_snippet_refused_before_1_25_ga(control_plane: ControlPlane,
                                                           releases: dict[str, Installed]) -> None:
    message = install_error(control_plane, "hx", "hx-ns", {"namePrefix": "hx-aim-gpu",
                                                          "scheduler": {"mode": "default-scheduler"}})
    assert "scheduler.mode=default-scheduler needs KubeSchedulerConfiguration v1" in message
    assert "1.25.0-mykubernetes" in message


@pytest.mark.parametrize(("values", "field"), [
    ({"extender": {"policy": "best-fast"}}, "at '/extender/policy': value must be one of 'best-fit', 'spread'"),
    ({"webhook": {"timeoutSeconds": 60}}, "at '/webhook/timeoutSeconds': maximum: got 60, want 30"),
    ({"scheduler": {"mode": "both"}}, "at '/scheduler/mode'"),
    ({"extender": {"polcy": "spread"}}, "at '/extender': additional properties 'polcy' not allowed"),
])
def test_helm_refuses_values_the_schema_rejects(control_plane: ControlPlane, releases: dict[str, Installed],
                                                values: dict[str, Any], field: str) -> None:
    message = install_error(control_plane, "hy", "hy-ns", {"namePrefix": "hy-aim-gpu", **values})
    assert "values don't meet the specifications of the schema" in message
    assert field in message


def test_kube_version_override_must_be_a_version(control_plane: ControlPlane, releases: dict[str, Installed]) -> None:
    message = install_error(control_plane, "hz", "hz-ns", {"namePrefix": "hz-aim-gpu", "kubeVersionOverride": "latest"})
    assert "at '/kubeVersionOverride': 'latest' does not match pattern" in message


def test_resource_name_is_one_value_everywhere(releases: dict[str, Installed]) -> None:
    installed = release(releases, DEFAULTS)
    plugin = installed.release.one("DaemonSet", f"{DEFAULTS.prefix}-deviceplugin")
    flags = parse_flags(plugin["spec"]["template"]["spec"]["containers"][0]["args"])
    managed = scheduler_config(installed)["extenders"][0]["managedResources"]
    assert flags["--resource-name"] == RESOURCE_NAME == managed[0]["name"]


def test_device_plugin_runs_on_gpu_nodes_only(releases: dict[str, Installed]) -> None:
    spec = release(releases, DEFAULTS).release.one(
        "DaemonSet", f"{DEFAULTS.prefix}-deviceplugin")["spec"]["template"]["spec"]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    keys = {e["key"] for t in terms for e in t["matchExpressions"]}
    assert keys == {"amd.com/gpu.device-id", "aim.amd.com/gpu-partition-plugin"}
    assert {"amd.com/gpu", RESOURCE_NAME} <= {t["key"] for t in spec["tolerations"]}
    assert spec["priorityClassName"] == "system-node-critical"


def test_full_combination_options(releases: dict[str, Installed]) -> None:
    installed = release(releases, FULL)
    objects = installed.release
    prefix, namespace = FULL.prefix, FULL.namespace
    webhook = objects.one("MutatingWebhookConfiguration", f"{prefix}-webhook")
    assert webhook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{namespace}/{prefix}-webhook"
    assert {w["failurePolicy"] for w in webhook["webhooks"]} == {"Ignore"}
    assert {w["timeoutSeconds"] for w in webhook["webhooks"]} == {5}
    certificate = objects.one("Certificate", f"{prefix}-webhook")
    assert certificate["spec"]["issuerRef"]["name"] == objects.one("Issuer", f"{prefix}-webhook-selfsigned")[
        "metadata"]["name"]
    assert f"{prefix}-webhook.{namespace}.svc" in certificate["spec"]["dnsNames"]
    extender = objects.one("Deployment", f"{prefix}-extender")
    pod = extender["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["webhook-tls"]["secret"]["secretName"] == certificate["spec"]["secretName"]
    assert not objects.find("Job") and not objects.find("CronJob"), "cert-manager replaces the certs Job"
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    assert extender["spec"]["replicas"] == 3
    assert parse_flags(pod["containers"][0]["args"])["--policy"] == "spread"
    assert json.loads(objects.one("ConfigMap", "aim-gpu-models")["data"]["org--model.json"]) == {"id": "org/model"}
    assert objects.one("Service", f"{prefix}-extender")["spec"]["ports"][0]["port"] == 9888
    assert scheduler_config(installed)["extenders"][0]["urlPrefix"] == f"http://{prefix}-extender.{namespace}.svc:9888"
    plugin = objects.one("DaemonSet", f"{prefix}-deviceplugin")["spec"]["template"]["spec"]
    assert plugin["nodeSelector"] == {"gpu": "amd"} and "priorityClassName" not in plugin
    assert plugin["containers"][0]["ports"][0]["containerPort"] == 9500
    for obj in installed.release.objects:
        assert obj["metadata"]["labels"]["team"] == "ml-platform"


def test_partition_controller(releases: dict[str, Installed]) -> None:
    objects = release(releases, FULL).release
    name = "hf-aim-partitioner-controller"
    container = objects.one("Deployment", name)["spec"]["template"]["spec"]["containers"][0]
    flags = parse_flags(container["args"])
    assert container["command"] == ["aim-partitioner"] and container["args"][0] == "controller"
    assert flags["--mode"] == "apply" and "--allow-eviction" in flags and flags["--lease-name"] == name
    rules = objects.one("ClusterRole", name)["rules"]
    assert {"resources": ["pods/eviction"], "verbs": ["create"], "apiGroups": [""]} in rules
    dcm = objects.one("Role", f"{name}-dcm-profiles")
    assert dcm["metadata"]["namespace"] == "kube-amd-gpu"
    assert not [d for d in release(releases, V1).release.find("Deployment") if "partitioner" in d["metadata"]["name"]]


def test_monitors_select_the_components(releases: dict[str, Installed]) -> None:
    objects = release(releases, FULL).release
    prefix = FULL.prefix
    service_monitor = objects.one("ServiceMonitor", f"{prefix}-extender")
    assert service_monitor["metadata"]["labels"]["release"] == "prometheus"
    wanted = set(service_monitor["spec"]["selector"]["matchExpressions"][0]["values"])
    services = {s["metadata"]["labels"]["app.kubernetes.io/name"]: s for s in objects.find("Service")}
    assert wanted == {f"{prefix}-extender", "hf-aim-partitioner-controller"} and wanted <= services.keys()
    ports = {p["port"] for p in service_monitor["spec"]["endpoints"]}
    for name in wanted:
        assert {p["name"] for p in services[name]["spec"]["ports"]} & ports
    pod_monitor = objects.one("PodMonitor", f"{prefix}-deviceplugin")
    pod_labels = objects.one("DaemonSet", f"{prefix}-deviceplugin")["spec"]["template"]["metadata"]["labels"]
    assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


def test_dashboards_are_configmaps_for_the_grafana_sidecar(releases: dict[str, Installed]) -> None:
    objects = release(releases, FULL).release
    boards = [c for c in objects.find("ConfigMap") if "-dashboard-" in c["metadata"]["name"]]
    assert len(boards) == 3
    for configmap in boards:
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        (key, text), = configmap["data"].items()
        assert json.loads(text) == json.loads((CHART / "dashboards" / key).read_text())
    assert len([c for c in release(releases, V1).release.find("ConfigMap") if "-dashboard-" in
                c["metadata"]["name"]]) == 2, "the partitioner dashboard only with the partitioner"
    assert not [c for c in release(releases, SNIPPET).release.find("ConfigMap") if "-dashboard-" in
                c["metadata"]["name"]]


def test_notes_say_what_to_check(releases: dict[str, Installed]) -> None:
    notes = release(releases, DEFAULTS).release.notes
    assert "kubectl describe node" in notes
    assert "schedulerName: aim-gpu-scheduler" in notes and RESOURCE_NAME in notes
    assert "kubescheduler.config.k8s.io/v1beta3" in notes
    assert f"{DEFAULTS.prefix}-webhook-tls" in notes


SCHEDULER_VERSIONS = ("v1.25.0", "v1.25.3-gke.100", "v1.24.9", "v1.23.0", "v1.26.0-eks-4f4795d", "1.37.1")


@pytest.mark.parametrize(("version", "api_version", "tag"), [
    ("v1.25.0", API_V1, "v1.25.0"),  # 1.25 GA: v1
    ("v1.25.3-gke.100", API_V1BETA3, "v1.25.3"),  # a suffixed 1.25 build: v1beta3, which every 1.25 takes
    ("v1.24.9", API_V1BETA3, "v1.24.9"),
    ("v1.23.0", API_V1BETA3, "v1.23.0"),
    ("v1.26.0-eks-4f4795d", API_V1, "v1.26.0"),
    ("1.37.1", API_V1, "v1.37.1"),
])
def test_scheduler_api_version_by_cluster_version(control_plane: ControlPlane, releases: dict[str, Installed],
                                                  version: str, api_version: str, tag: str) -> None:
    name = f"hk{SCHEDULER_VERSIONS.index(version)}"
    values = {"namePrefix": f"{name}-aim-gpu", "kubeVersionOverride": version, "webhook": {"enabled": False},
              "deviceplugin": {"enabled": False}, "monitoring": {"dashboards": {"enabled": False}}}
    rendered = install(control_plane, name, f"{name}-ns", values)
    uninstall(control_plane, name, f"{name}-ns")
    config = yaml.safe_load(rendered.one("ConfigMap", f"{name}-aim-gpu-scheduler-config")["data"]["config.yaml"])
    assert config["apiVersion"] == api_version
    pod = rendered.one("Deployment", f"{name}-aim-gpu-scheduler")["spec"]["template"]["spec"]
    image = pod["containers"][0]["image"]
    assert image == f"registry.k8s.io/kube-scheduler:{tag}"


def test_clusters_before_1_23_are_refused(control_plane: ControlPlane, releases: dict[str, Installed]) -> None:
    message = install_error(control_plane, "hw", "hw-ns",
                            {"namePrefix": "hw-aim-gpu", "kubeVersionOverride": "v1.22.4"})
    assert "needs 1.23 or newer" in message


def test_scheduler_to_extender_tls(releases: dict[str, Installed]) -> None:
    installed = release(releases, TLS)
    objects, prefix = installed.release, TLS.prefix
    host = f"{prefix}-extender.{TLS.namespace}.svc"
    tls_endpoint = ExtenderEndpoint(host=host, tls=ExtenderTLS(server_name=host))
    expected = second_scheduler_config(API_V1BETA3, endpoint=tls_endpoint)
    expected["leaderElection"]["resourceNamespace"] = TLS.namespace
    assert scheduler_config(installed) == expected
    certificate = objects.one("Certificate", f"{prefix}-extender")
    assert host in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["issuerRef"]["name"] == objects.one("Issuer", f"{prefix}-webhook-selfsigned")[
        "metadata"]["name"]
    pod = objects.one("Deployment", f"{prefix}-extender")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    flags = parse_flags(container["args"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert flags["--tls-cert-file"] == f"{mounts['tls']}/tls.crt"
    assert flags["--tls-key-file"] == f"{mounts['tls']}/tls.key"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == certificate["spec"]["secretName"]
    assert pod["securityContext"]["fsGroup"] == 65532
    scheduler = objects.one("Deployment", f"{prefix}-scheduler")["spec"]["template"]["spec"]
    ca_mount = {m["name"]: m["mountPath"] for m in scheduler["containers"][0]["volumeMounts"]}["extender-ca"]
    assert f"{ca_mount}/ca.crt" == TLS_CA_FILE
    ca_volume = {v["name"]: v for v in scheduler["volumes"]}["extender-ca"]["secret"]
    assert ca_volume["secretName"] == certificate["spec"]["secretName"]
    assert ca_volume["items"] == [{"key": "ca.crt", "path": "ca.crt"}], "the scheduler never gets the key"


def test_extender_tls_needs_the_second_scheduler(control_plane: ControlPlane, releases: dict[str, Installed]) -> None:
    message = install_error(control_plane, "hu", "hu-ns", {
        "namePrefix": "hu-aim-gpu", "kubeVersionOverride": "v1.30.0", "scheduler": {"mode": "default-scheduler"},
        "extender": {"tls": {"enabled": True}}})
    assert "extender.tls.enabled needs scheduler.mode=second-scheduler" in message


def test_native_mode_runs_the_second_scheduler_with_the_native_profile(releases: dict[str, Installed]) -> None:
    installed = release(releases, NATIVE)
    expected = native_scheduler_config(API_V1BETA3)
    expected["leaderElection"]["resourceNamespace"] = NATIVE.namespace
    assert scheduler_config(installed) == expected
    objects, prefix = installed.release, NATIVE.prefix
    pod = objects.one("Deployment", f"{prefix}-scheduler")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.k8s.io/kube-scheduler:v1.25.0"
    extender = objects.one("Deployment", f"{prefix}-extender")["spec"]["template"]["spec"]["containers"][0]
    assert parse_flags(extender["args"])["--webhook-scheduler-name"] == "aim-gpu-scheduler"
    assert "native mode" in installed.release.notes


@pytest.mark.parametrize(("values", "message"), [
    ({"webhook": {"enabled": False}}, "scheduler.mode=native needs webhook.enabled=true"),
    ({"extender": {"tls": {"enabled": True}}}, "extender.tls.enabled needs scheduler.mode=second-scheduler"),
], ids=["without-webhook", "with-extender-tls"])
def test_native_mode_refuses_what_cannot_work(control_plane: ControlPlane, releases: dict[str, Installed],
                                              values: dict[str, Any], message: str) -> None:
    refused = install_error(control_plane, "hq", "hq-ns", {"namePrefix": "hq-aim-gpu", "scheduler": {"mode": "native"},
                                                           **values})
    assert message in refused
