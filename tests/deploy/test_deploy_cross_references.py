"""The manifests refer to each other consistently, so `kubectl apply -k manifests/` yields a
working system rather than objects that are each valid but point at nothing.

Covered:
- ServiceAccounts used by workloads exist in the same namespace;
- RBAC bindings name existing (or built-in) roles and existing ServiceAccounts;
- Deployment/DaemonSet selectors match their pod labels; Service selectors match a workload;
- Service targetPorts, probe ports and --port/--metrics-port flags match declared containerPorts;
- ConfigMap and Secret volumes of the cluster pieces name objects that exist (or are documented);
- device plugin flags point at the mounted host paths, NODE_NAME comes from the downward API;
- the device plugin's node affinity lists exactly the PCI ids in sizing/data/gpus.json;
- kustomization.yaml lists every cluster manifest, and only those; image tags = package version;
- the namespaced cluster objects live in aim-gpu-sharing (one RoleBinding in kube-system).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.deploy.deploy_support import (
    MANIFESTS,
    NAMESPACE,
    REPO,
    Doc,
    cluster_objects,
    component_container_ports,
    find,
    one,
    parse_flags,
    pod_spec,
    workloads,
)

CLUSTER_DIRS = ("deviceplugin", "extender", "scheduler")
# Roles shipped by Kubernetes itself (RBAC bootstrap policy).
BUILT_IN_CLUSTER_ROLES = {"system:kube-scheduler", "system:volume-scheduler", "system:auth-delegator"}
BUILT_IN_ROLES = {("kube-system", "extension-apiserver-authentication-reader")}
# Secrets the user creates (docs/deployment.md): the TLS component's certificate, the HF token.
USER_SECRETS = {"aim-gpu-extender-tls", "hf-token"}

OBJECTS = cluster_objects()
CLUSTER = [d for d in OBJECTS if d.path.parent.name in CLUSTER_DIRS or d.path.parent == MANIFESTS]
CLUSTER_WORKLOADS = list(workloads(CLUSTER))
ALL_WORKLOADS = list(workloads(OBJECTS))


def wid(d: Doc) -> str:
    return f"{d.kind}/{d.name}"


def named_ports(container: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}


def container_ports(container: dict[str, Any]) -> set[int]:
    return {p["containerPort"] for p in container.get("ports", [])}


def resolve_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    ports = named_ports(container)
    assert port in ports, f"container {container['name']} has no port named {port!r}"
    return ports[port]


@pytest.mark.parametrize("workload", CLUSTER_WORKLOADS, ids=wid)
def test_workload_service_account_exists_in_its_namespace(workload: Doc) -> None:
    sa = pod_spec(workload).get("serviceAccountName")
    assert sa, f"{wid(workload)} must run under its own ServiceAccount, not default"
    hits = [d for d in find("ServiceAccount", sa) if d.namespace == workload.namespace]
    assert hits, f"ServiceAccount {workload.namespace}/{sa} not found"


@pytest.mark.parametrize(
    "binding",
    [d for d in OBJECTS if d.kind in {"RoleBinding", "ClusterRoleBinding"}],
    ids=lambda d: f"{d.kind}/{d.name}",
)
def test_binding_references_existing_role_and_service_accounts(binding: Doc) -> None:
    ref = binding.body["roleRef"]
    if ref["kind"] == "ClusterRole":
        assert ref["name"] in BUILT_IN_CLUSTER_ROLES or find("ClusterRole", ref["name"], docs=OBJECTS), ref
    else:
        assert binding.kind == "RoleBinding"
        same_ns = [d for d in find("Role", ref["name"], docs=OBJECTS) if d.namespace == binding.namespace]
        assert (binding.namespace, ref["name"]) in BUILT_IN_ROLES or same_ns, ref
    for subject in binding.body["subjects"]:
        assert subject["kind"] == "ServiceAccount"
        hits = [d for d in find("ServiceAccount", subject["name"], docs=OBJECTS) if d.namespace == subject["namespace"]]
        assert hits, f"{binding.name}: ServiceAccount {subject['namespace']}/{subject['name']} not found"


@pytest.mark.parametrize("workload", CLUSTER_WORKLOADS, ids=wid)
def test_every_cluster_service_account_has_its_permissions_bound(workload: Doc) -> None:
    sa = pod_spec(workload)["serviceAccountName"]
    bound = [
        b
        for b in OBJECTS
        if b.kind in {"RoleBinding", "ClusterRoleBinding"}
        and any(s["name"] == sa and s["namespace"] == workload.namespace for s in b.body["subjects"])
    ]
    assert bound, f"ServiceAccount {sa} is bound to nothing"


def test_device_plugin_may_only_read_and_patch_nodes() -> None:
    role = one("ClusterRole", "aim-gpu-deviceplugin")
    assert role.body["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "patch"]}]


def test_extender_may_only_read_nodes_and_pods_and_create_events() -> None:
    """Reads for its caches; Events (create only) on pods waiting for a partition size."""
    rules = one("ClusterRole", "aim-gpu-extender").body["rules"]
    granted = {(res, verb) for r in rules for res in r["resources"] for verb in r["verbs"]}
    reads = {(res, verb) for res in ("nodes", "pods") for verb in ("get", "list", "watch")}
    assert granted == reads | {("events", "create")}
    assert all(r["apiGroups"] == [""] and not r.get("resourceNames") for r in rules)


# Jobs (and their CronJobs) get a selector generated by the Job controller.
@pytest.mark.parametrize("workload", [w for w in ALL_WORKLOADS if w.kind not in {"Pod", "Job"}], ids=wid)
def test_selector_matches_pod_template_labels(workload: Doc) -> None:
    selector = workload.body["spec"]["selector"]["matchLabels"]
    labels = workload.body["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


@pytest.mark.parametrize("service", find("Service"), ids=lambda d: f"{d.path.parent.name}/{d.name}")
def test_service_selects_a_workload_and_targets_a_declared_port(service: Doc) -> None:
    selector = service.body["spec"]["selector"]
    targets = [
        w
        for w in ALL_WORKLOADS
        if w.namespace == service.namespace
        and selector.items() <= w.body["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert len(targets) == 1, f"Service {service.name} selects {[wid(t) for t in targets]}"
    containers = pod_spec(targets[0])["containers"]
    # A Service of a Component may target a port the same Component patches in.
    in_component = (service.path.parent / "kustomization.yaml").exists()
    extra = {"ports": component_container_ports(targets[0]) if in_component else []}
    for port in service.body["spec"]["ports"]:
        target = port.get("targetPort", port["port"])
        assert any(
            (isinstance(target, str) and target in named_ports(c))
            or (isinstance(target, int) and target in container_ports(c))
            for c in [*containers, extra]
        ), f"targetPort {target!r} is not a container port"


@pytest.mark.parametrize("workload", ALL_WORKLOADS, ids=wid)
def test_probe_ports_are_declared_container_ports(workload: Doc) -> None:
    for container in pod_spec(workload)["containers"]:
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            action = container.get(probe, {})
            handler = action.get("httpGet") or action.get("tcpSocket")
            if handler:
                assert resolve_port(container, handler["port"]) in container_ports(container)


def test_device_plugin_metrics_flag_matches_its_port_and_probe() -> None:
    container = pod_spec(one("DaemonSet", "aim-gpu-deviceplugin"))["containers"][0]
    flags = parse_flags(container["args"])
    metrics = int(flags["--metrics-port"])
    assert named_ports(container)["metrics"] == metrics
    probe = container["livenessProbe"]["httpGet"]
    assert resolve_port(container, probe["port"]) == metrics and probe["path"] == "/metrics"


def test_extender_port_flag_matches_its_port_and_probes() -> None:
    container = pod_spec(one("Deployment", "aim-gpu-extender"))["containers"][0]
    port = int(parse_flags(container["args"])["--port"])
    assert named_ports(container)["http"] == port
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert resolve_port(container, container[probe]["httpGet"]["port"]) == port


def test_device_plugin_flags_point_at_the_mounted_host_paths() -> None:
    spec = pod_spec(one("DaemonSet", "aim-gpu-deviceplugin"))
    container = spec["containers"][0]
    flags = parse_flags(container["args"])
    assert container["args"][0] == "serve"
    host_path_of = {v["name"]: v["hostPath"]["path"] for v in spec["volumes"] if "hostPath" in v}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    expected = {
        "--kubelet-dir": ("/var/lib/kubelet/device-plugins", False),
        "--sysfs-root": ("/sys", True),
        "--dev-root": ("/dev", True),
    }
    for flag, (host_path, read_only) in expected.items():
        mount = mounts.get(flags[flag])
        assert mount, f"{flag}={flags[flag]} is not a mount path"
        assert host_path_of[mount["name"]] == host_path
        assert mount.get("readOnly", False) is read_only, f"{flag}: readOnly should be {read_only}"


def test_device_plugin_node_name_comes_from_the_downward_api() -> None:
    container = pod_spec(one("DaemonSet", "aim-gpu-deviceplugin"))["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert parse_flags(container["args"])["--node-name"] == "$(NODE_NAME)"


def test_device_plugin_is_node_critical_and_tolerates_gpu_taints() -> None:
    spec = pod_spec(one("DaemonSet", "aim-gpu-deviceplugin"))
    assert spec["priorityClassName"] == "system-node-critical"
    keys = {t["key"] for t in spec["tolerations"]}
    assert {"amd.com/gpu", "CriticalAddonsOnly"} <= keys


def test_device_plugin_runs_as_root_without_privileges() -> None:
    security = pod_spec(one("DaemonSet", "aim-gpu-deviceplugin"))["containers"][0]["securityContext"]
    assert security["runAsUser"] == 0
    assert security["privileged"] is False and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]


def test_extender_and_scheduler_run_restricted() -> None:
    for workload in (one("Deployment", "aim-gpu-extender"), one("Deployment", "aim-gpu-scheduler")):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
            assert sc["capabilities"]["drop"] == ["ALL"]


def test_device_plugin_node_affinity_lists_the_catalogued_pci_ids() -> None:
    gpus = json.loads((REPO / "sizing" / "data" / "gpus.json").read_text())
    catalogued = {i.lower().removeprefix("0x") for p in gpus["products"] for i in p["pci_device_ids"]}
    terms = pod_spec(one("DaemonSet", "aim-gpu-deviceplugin"))["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    expressions = [e for t in terms for e in t["matchExpressions"] if e["key"] == "amd.com/gpu.device-id"]
    assert len(expressions) == 1 and expressions[0]["operator"] == "In"
    assert set(expressions[0]["values"]) == catalogued


def test_volumes_name_existing_config_maps_and_known_secrets() -> None:
    for workload in ALL_WORKLOADS:
        for volume in pod_spec(workload).get("volumes", []):
            if "configMap" in volume:
                hits = [
                    d
                    for d in find("ConfigMap", volume["configMap"]["name"], docs=OBJECTS)
                    if d.namespace == workload.namespace
                ]
                assert hits, f"{wid(workload)}: ConfigMap {volume['configMap']['name']} not found"
            if "secret" in volume:
                assert volume["secret"]["secretName"] in USER_SECRETS


def test_namespaced_cluster_objects_live_in_the_project_namespace() -> None:
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    for d in CLUSTER:
        if d.kind in cluster_scoped:
            assert d.namespace is None, f"{d.rel}: cluster-scoped {d.kind} has a namespace"
        elif d.kind == "RoleBinding" and d.body["roleRef"]["name"] == "extension-apiserver-authentication-reader":
            assert d.namespace == "kube-system"
        else:
            assert d.namespace == NAMESPACE, f"{d.rel}: {d.kind}/{d.name} in {d.namespace!r}"


def test_critical_priority_classes_are_covered_by_the_namespace_quota() -> None:
    quota = one("ResourceQuota", "aim-gpu-sharing-critical-pods")
    assert quota.namespace == NAMESPACE
    expression = quota.body["spec"]["scopeSelector"]["matchExpressions"][0]
    assert expression["scopeName"] == "PriorityClass" and expression["operator"] == "In"
    used = {pod_spec(w).get("priorityClassName") for w in CLUSTER_WORKLOADS} - {None}
    assert used and used <= set(expression["values"])


def test_kustomization_lists_every_cluster_manifest_and_nothing_else() -> None:
    kust = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    listed = set(kust["resources"])
    on_disk = {p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml"} | {
        str(p.relative_to(MANIFESTS))
        for d in CLUSTER_DIRS
        for p in (MANIFESTS / d).glob("*.yaml")
        if p.name != "kube-scheduler-config.yaml" and not p.name.startswith("kube-scheduler-config.")
    }
    assert listed == on_disk
    assert "namespace" not in kust, "a namespace transformer would move the kube-system RoleBinding"


def test_image_tags_are_the_package_version(pyproject: dict[str, Any]) -> None:
    version = pyproject["project"]["version"]
    kust = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    for workload in CLUSTER_WORKLOADS:
        for c in pod_spec(workload)["containers"]:
            name, _, tag = c["image"].rpartition(":")
            if name.startswith("aim-gpu-"):
                assert tag == version, f"{c['image']} != package version {version}"
    images = {i["name"]: i for i in kust["images"]}
    assert {"aim-gpu-deviceplugin", "aim-gpu-extender"} <= images.keys()
    assert all(i["newTag"] == version for i in images.values())
