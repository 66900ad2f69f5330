"""The KubeSchedulerConfiguration files register the extender the way docs/deployment.md says.

Covered:
- extender fields: urlPrefix, verbs, weight, nodeCacheCapable, managedResources, httpTimeout,
  ignorable; percentageOfNodesToScore 100 for the aim-gpu-scheduler profile;
- the weight makes one step of the extender score outrank the in-tree score plugins;
- the ConfigMap of the second scheduler embeds exactly the standalone file; the default-scheduler
  and TLS variants differ from it only where they must;
- urlPrefix points at the extender Service (name, namespace, port) and the scheme matches TLS;
- leader election uses a lease the scheduler's Role may update;
- the schedulerName is the one every example uses.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.deploy_support import (
    MANIFESTS,
    NAMESPACE,
    RESOURCE,
    SCHEDULER_NAME,
    find,
    one,
    parse_flags,
    pod_spec,
)
from tools.render_manifests import HEADER as GENERATED_HEADER

STANDALONE = MANIFESTS / "scheduler" / "kube-scheduler-config.yaml"
DEFAULT_SCHEDULER = MANIFESTS / "scheduler" / "kube-scheduler-config.default-scheduler.yaml"
TLS = MANIFESTS / "components" / "tls" / "kube-scheduler-config.yaml"
ALL_CONFIGS = [STANDALONE, DEFAULT_SCHEDULER, TLS]

# Default score plugins and weights, kubernetes/kubernetes pkg/scheduler/apis/config/v1/default_plugins.go.
IN_TREE_SCORE_WEIGHTS = {
    "TaintToleration": 3,
    "NodeAffinity": 2,
    "PodTopologySpread": 2,
    "InterPodAffinity": 2,
    "NodeResourcesFit": 1,
    "NodeResourcesBalancedAllocation": 1,
    "ImageLocality": 1,
}
MAX_NODE_SCORE = 100  # framework.MaxNodeScore
MAX_EXTENDER_PRIORITY = 10  # extender/v1 MaxExtenderPriority


def load_config(path: Path) -> dict[str, Any]:
    config = yaml.safe_load(path.read_text())
    assert config["apiVersion"] == "kubescheduler.config.k8s.io/v1"
    assert config["kind"] == "KubeSchedulerConfiguration"
    return config


def only_extender(config: dict[str, Any]) -> dict[str, Any]:
    assert len(config["extenders"]) == 1, "exactly one extender expected"
    return config["extenders"][0]


def embedded_config() -> tuple[str, dict[str, Any]]:
    cm = one("ConfigMap", "aim-gpu-scheduler-config")
    text = cm.body["data"]["config.yaml"]
    return text, yaml.safe_load(text)


def scheduler_deployment():
    return one("Deployment", SCHEDULER_NAME)


def extender_service():
    return one("Service", "aim-gpu-extender")


def duration_seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", text)
    assert m, f"not a Go duration this test understands: {text!r}"
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: p.name if p != TLS else "tls/" + p.name)
def test_extender_is_registered_with_filter_prioritize_and_node_cache(path: Path) -> None:
    ext = only_extender(load_config(path))
    assert ext["filterVerb"] == "filter"
    assert ext["prioritizeVerb"] == "prioritize"
    assert "bindVerb" not in ext, "the extender serves no bind"
    assert ext["preemptVerb"] == "preempt", "without it preemption evicts on nodes too small for the pod"
    assert ext["nodeCacheCapable"] is True
    assert ext["managedResources"] == [{"name": RESOURCE, "ignoredByScheduler": False}]
    assert ext["ignorable"] is False
    assert 0 < duration_seconds(ext["httpTimeout"]) <= 5, "the filter timeout fails the pod: keep it short"
    assert isinstance(ext["weight"], int) and ext["weight"] > 0


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: p.name if p != TLS else "tls/" + p.name)
def test_aim_gpu_scheduler_profile_scores_every_node(path: Path) -> None:
    config = load_config(path)
    profiles = {p["schedulerName"]: p for p in config["profiles"]}
    assert SCHEDULER_NAME in profiles
    pct = profiles[SCHEDULER_NAME].get("percentageOfNodesToScore", config.get("percentageOfNodesToScore"))
    assert pct == 100


def test_one_step_of_best_fit_outranks_every_in_tree_score_plugin() -> None:
    weight = only_extender(load_config(STANDALONE))["weight"]
    in_tree_max = MAX_NODE_SCORE * sum(IN_TREE_SCORE_WEIGHTS.values())
    assert in_tree_max == 1200
    one_step = 1 * weight * (MAX_NODE_SCORE // MAX_EXTENDER_PRIORITY)
    assert one_step > in_tree_max, f"weight {weight}: one extender step = {one_step} <= {in_tree_max}"


def test_configmap_embeds_the_standalone_file_verbatim() -> None:
    text, parsed = embedded_config()
    assert parsed == load_config(STANDALONE)
    assert text == STANDALONE.read_text().removeprefix(GENERATED_HEADER)


def test_default_scheduler_variant_registers_the_same_extender() -> None:
    assert only_extender(load_config(DEFAULT_SCHEDULER)) == only_extender(load_config(STANDALONE))
    profiles = [p["schedulerName"] for p in load_config(DEFAULT_SCHEDULER)["profiles"]]
    assert profiles[0] == "default-scheduler" and SCHEDULER_NAME in profiles


def test_default_scheduler_variant_keeps_the_adaptive_percentage_for_other_pods() -> None:
    config = load_config(DEFAULT_SCHEDULER)
    assert "percentageOfNodesToScore" not in config
    default = next(p for p in config["profiles"] if p["schedulerName"] == "default-scheduler")
    assert "percentageOfNodesToScore" not in default


def test_tls_variant_differs_only_in_transport_and_verifies_the_server() -> None:
    plain, tls = load_config(STANDALONE), load_config(TLS)
    tls_ext = only_extender(tls)
    assert tls_ext["enableHTTPS"] is True
    tls_config = tls_ext["tlsConfig"]
    assert tls_config.get("caFile") or tls_config.get("caData"), "without a CA kube-scheduler skips verification"
    assert tls_config.get("insecure", False) is False
    assert urlsplit(tls_ext["urlPrefix"]).scheme == "https"
    assert urlsplit(tls_ext["urlPrefix"]).hostname == tls_config["serverName"]

    def transport_free(config: dict[str, Any]) -> dict[str, Any]:
        c = copy.deepcopy(config)
        for ext in c["extenders"]:
            for key in ("urlPrefix", "enableHTTPS", "tlsConfig"):
                ext.pop(key, None)
        return c

    assert transport_free(plain) == transport_free(tls)
    assert urlsplit(only_extender(plain)["urlPrefix"])._replace(scheme="https") == urlsplit(tls_ext["urlPrefix"])


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: p.name if p != TLS else "tls/" + p.name)
def test_url_prefix_reaches_the_extender_service(path: Path) -> None:
    ext = only_extender(load_config(path))
    url = urlsplit(ext["urlPrefix"])
    assert url.scheme == ("https" if ext.get("enableHTTPS") else "http")
    svc = extender_service()
    assert url.hostname in {
        f"{svc.name}.{svc.namespace}.svc",
        f"{svc.name}.{svc.namespace}.svc.cluster.local",
    }
    assert url.port in {p["port"] for p in svc.body["spec"]["ports"]}
    assert url.path in {"", "/"}, "the extender serves /filter and /prioritize at the root"


def test_extender_runs_with_the_node_cache_the_scheduler_expects() -> None:
    container = pod_spec(one("Deployment", "aim-gpu-extender"))["containers"][0]
    flags = parse_flags(container["args"])
    assert flags["--node-cache"] == "watch", "nodeCacheCapable: true needs the extender's own node cache"
    assert int(flags["--port"]) == urlsplit(only_extender(load_config(STANDALONE))["urlPrefix"]).port


def test_managed_resource_is_what_the_device_plugin_advertises() -> None:
    container = pod_spec(one("DaemonSet", "aim-gpu-deviceplugin"))["containers"][0]
    assert parse_flags(container["args"])["--resource-name"] == RESOURCE


def test_leader_election_lease_is_the_one_the_scheduler_may_update() -> None:
    election = load_config(STANDALONE)["leaderElection"]
    assert election["leaderElect"] is True and election["resourceLock"] == "leases"
    assert election["resourceName"] != "kube-scheduler", "must not compete with the default scheduler"
    role = one("Role", "aim-gpu-scheduler-leader-election")
    assert role.namespace == election["resourceNamespace"]
    update_rules = [r for r in role.body["rules"] if "update" in r["verbs"] and "leases" in r["resources"]]
    assert any(election["resourceName"] in r.get("resourceNames", []) for r in update_rules)


def test_scheduler_deployment_runs_the_configmap_config_with_a_current_stock_image() -> None:
    spec = pod_spec(scheduler_deployment())
    container = spec["containers"][0]
    image, _, tag = container["image"].rpartition(":")
    assert image == "registry.k8s.io/kube-scheduler"
    assert re.fullmatch(r"v1\.(3[1-9]|[4-9]\d)\.\d+", tag), f"pin a current release tag, got {tag}"
    config_flag = parse_flags(container["command"])["--config"]
    mount = next(m for m in container["volumeMounts"] if config_flag.startswith(m["mountPath"] + "/"))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == "aim-gpu-scheduler-config"
    key = config_flag[len(mount["mountPath"]) + 1 :]
    assert key in one("ConfigMap", "aim-gpu-scheduler-config").body["data"]


def test_every_example_opts_into_the_scheduler_that_runs_the_extender() -> None:
    names = set()
    for d in find("InferenceService"):
        names.add(d.body["spec"]["predictor"]["schedulerName"])
    for d in find("Deployment"):
        if "examples" in d.path.parts:
            names.add(pod_spec(d)["schedulerName"])
    assert names == {SCHEDULER_NAME}
    assert SCHEDULER_NAME in {p["schedulerName"] for p in load_config(STANDALONE)["profiles"]}


def test_scheduler_namespace_is_the_project_namespace() -> None:
    assert load_config(STANDALONE)["leaderElection"]["resourceNamespace"] == NAMESPACE


def test_extender_app_serves_the_configured_verbs_and_probe_paths() -> None:
    """The paths kube-scheduler and the kubelet call exist in the extender's FastAPI app."""
    app_module = pytest.importorskip("extender.app", reason="the extender package is not importable")
    app = app_module.create_app()
    routes = {(method, route.path) for route in app.routes for method in getattr(route, "methods", set()) or set()}
    ext = only_extender(load_config(STANDALONE))
    prefix = urlsplit(ext["urlPrefix"]).path.rstrip("/")
    assert ("POST", f"{prefix}/{ext['filterVerb']}") in routes
    assert ("POST", f"{prefix}/{ext['prioritizeVerb']}") in routes
    container = pod_spec(one("Deployment", "aim-gpu-extender"))["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert ("GET", container[probe]["httpGet"]["path"]) in routes


# --- one source: the shipped files are what extender.scheduler_config generates ---------------


def test_shipped_configurations_are_the_generators_v1_output() -> None:
    """The manifests and the configurations the control-plane tests run cannot drift apart."""
    from extender import scheduler_config as gen

    assert load_config(STANDALONE) == gen.second_scheduler_config(gen.API_V1)
    assert load_config(TLS) == gen.second_scheduler_config(
        gen.API_V1, endpoint=gen.ExtenderEndpoint(tls=gen.ExtenderTLS())
    )
    assert load_config(DEFAULT_SCHEDULER) == gen.default_scheduler_config(gen.API_V1)
    assert embedded_config()[1] == gen.second_scheduler_config(gen.API_V1)


def test_v1beta3_output_differs_from_v1_only_in_the_api_version() -> None:
    from extender import scheduler_config as gen

    v1, v1beta3 = gen.second_scheduler_config(gen.API_V1), gen.second_scheduler_config(gen.API_V1BETA3)
    assert v1beta3.pop("apiVersion") == "kubescheduler.config.k8s.io/v1beta3"
    v1.pop("apiVersion")
    assert v1 == v1beta3


def test_generator_refuses_what_kube_scheduler_would_reject_or_not_verify() -> None:
    from extender import scheduler_config as gen

    with pytest.raises(ValueError, match="percentageOfNodesToScore per profile"):
        gen.default_scheduler_config(gen.API_V1BETA3)
    with pytest.raises(ValueError, match="expected one of"):
        gen.second_scheduler_config("kubescheduler.config.k8s.io/v1beta1")
    with pytest.raises(ValueError, match="without a CA"):
        gen.ExtenderTLS(ca_file=None)
    off = gen.second_scheduler_config(endpoint=gen.ExtenderEndpoint(node_cache_capable=False))
    assert off["extenders"][0]["nodeCacheCapable"] is False


def test_rendered_yaml_reads_back_as_the_generated_document() -> None:
    from extender import scheduler_config as gen

    for config in (gen.second_scheduler_config(gen.API_V1BETA3), gen.default_scheduler_config()):
        text = gen.to_yaml(config)
        assert yaml.safe_load(text) == config
        assert text.startswith("apiVersion: kubescheduler.config.k8s.io/")


@pytest.mark.parametrize(("argv", "shipped"), [
    ([], STANDALONE),
    (["--tls"], TLS),
    (["--variant", "default-scheduler"], DEFAULT_SCHEDULER),
], ids=["second-scheduler", "tls", "default-scheduler"])
def test_cli_prints_the_shipped_configuration(
    argv: list[str], shipped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from extender.cli import main

    assert main(["scheduler-config", *argv], environ={}) == 0
    assert yaml.safe_load(capsys.readouterr().out) == load_config(shipped)


def test_cli_refuses_the_default_scheduler_variant_in_v1beta3(capsys: pytest.CaptureFixture[str]) -> None:
    from extender.cli import main

    assert main(["scheduler-config", "--api-version", "v1beta3", "--variant", "default-scheduler"], environ={}) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "percentageOfNodesToScore per profile" in captured.err


NATIVE = MANIFESTS / "scheduler" / "kube-scheduler-config.native.yaml"
NATIVE_COMPONENT = MANIFESTS / "components" / "native" / "kube-scheduler-config.yaml"


@pytest.mark.parametrize("path", [NATIVE, NATIVE_COMPONENT], ids=["scheduler/native", "components/native"])
def test_native_files_are_the_generators_output(path: Path) -> None:
    from extender import scheduler_config as gen

    assert load_config(path) == gen.native_scheduler_config(gen.API_V1)


def test_cli_prints_the_native_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    from extender.cli import main

    assert main(["scheduler-config", "--variant", "native"], environ={}) == 0
    assert yaml.safe_load(capsys.readouterr().out) == load_config(NATIVE)
    assert main(["scheduler-config", "--variant", "native", "--api-version", "v1beta3"], environ={}) == 0
    v1beta3 = yaml.safe_load(capsys.readouterr().out)
    assert v1beta3.pop("apiVersion") == "kubescheduler.config.k8s.io/v1beta3"
    assert v1beta3 == {k: v for k, v in load_config(NATIVE).items() if k != "apiVersion"}
    assert main(["scheduler-config", "--variant", "native", "--tls"], environ={}) == 2
    assert "does not call" in capsys.readouterr().err


def test_native_profile_calls_no_extender_and_scores_every_node() -> None:
    config = load_config(NATIVE)
    assert "extenders" not in config
    assert config["percentageOfNodesToScore"] == 100
    (profile,) = config["profiles"]
    assert profile["schedulerName"] == SCHEDULER_NAME
    (fit,) = [c for c in profile["pluginConfig"] if c["name"] == "NodeResourcesFit"]
    assert fit["args"]["scoringStrategy"] == {"type": "MostAllocated", "resources": [{"name": RESOURCE, "weight": 1}]}
    assert config["leaderElection"] == load_config(STANDALONE)["leaderElection"]


def test_native_profile_turns_off_only_the_cpu_memory_balance_score() -> None:
    """NodeResourcesBalancedAllocation only broke ties after size and fullness and was 12 % of
    kube-scheduler's CPU at 5,000 nodes: off in native mode; every filter and the other scores stay."""
    plugins = load_config(NATIVE)["profiles"][0]["plugins"]
    assert set(plugins) == {"score"}, "no extension point but score is changed"
    assert plugins["score"]["disabled"] == [{"name": "NodeResourcesBalancedAllocation"}]
    assert "NodeResourcesBalancedAllocation" in IN_TREE_SCORE_WEIGHTS  # a real plugin name, not a typo


def test_native_weights_rank_size_then_fullness_then_the_rest() -> None:
    """One point of the preferred terms outranks everything else; one point of fullness
    outranks every other default score plugin (their default weights, in-tree table above)."""
    score = load_config(NATIVE)["profiles"][0]["plugins"]["score"]
    weights = {p["name"]: p["weight"] for p in score["enabled"]}
    disabled = {p["name"] for p in score["disabled"]}
    others = sum(w for name, w in IN_TREE_SCORE_WEIGHTS.items() if name not in weights and name not in disabled)
    assert others == 8
    assert weights["NodeResourcesFit"] > MAX_NODE_SCORE * others
    assert weights["NodeAffinity"] > MAX_NODE_SCORE * (others + weights["NodeResourcesFit"])
    assert weights["NodeAffinity"] < 2**31, "weights are int32 in the API"
