"""Every dashboard query and alert expression parses (promql-parser, tests/helm/promql_selectors.py)
and names only series the components really export: the extender's /metrics (``aim-extender serve``
against the control plane, after real /filter calls), the device plugin's metrics server and the
partition controller's, each scraped over HTTP. Label matchers use labels those series carry, with
values the code can produce; ``up`` (made by Prometheus for every target) selects a job the chart's
monitors create. Then a real Prometheus (tests/helm/prometheus_server.py) scrapes the same live
components every second and answers every dashboard query with data."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families

from decision.reasons import ReasonCode
from deviceplugin.metrics import PluginMetrics
from partitioner.controller.machine import Outcome
from partitioner.controller.metrics import NODE_STATES, Metrics as PartitionerMetrics
from tests.controlplane.harness import ControlPlane
from tests.controlplane.nodes import create_node, delete_nodes
from tests.controlplane.processes import wait_until
from tests.extender.support import partition_labels
from tests.helm.chart_support import CHART
from tests.helm.conftest import FULL, Installed
from tests.helm.prometheus_server import Prometheus, Target, running
from tests.helm.promql_selectors import GRAFANA_LABEL_VALUES, PromQLError, Selector, parse

# Labels Prometheus adds to every scraped series (target labels of the chart's monitors).
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "service", "endpoint"}
# Label values the code writes (ExtenderMetrics.count_decisions, the controller's Outcome, NODE_STATES).
KNOWN_VALUES: dict[tuple[str, str], set[str]] = {
    ("aim_extender_filter_decisions_total", "reason"): {c.value for c in ReasonCode} | {""},
    ("aim_extender_filter_decisions_total", "result"): {"pass", "fail", "unresolvable"},
    ("aim_partitioner_repartitions_total", "result"): {o.value for o in Outcome},
    ("aim_partitioner_nodes", "state"): set(NODE_STATES),
    ("aim_extender_partition_memory_bytes", "state"): {"used", "idle"},
}
# Models of the catalogue (sizing/data/models.json) in fp16, for each decision of a 24 GiB partition:
SMALL_MODEL = "meta-llama/Llama-3.1-8B-Instruct"  # fits: pass
LARGE_MODEL = "meta-llama/Llama-3.1-70B-Instruct"  # fits a whole MI300X, not 24 GiB: partition_too_small
HUGE_MODEL = "deepseek-ai/DeepSeek-V3"  # more than the largest partition: unresolvable, never_fits
SIMPLE_ALTERNATIVES = re.compile(r"^[A-Za-z0-9_.\-]+(\|[A-Za-z0-9_.\-]+)*$")


@dataclass(frozen=True)
class Exported:
    """Series names and the label names each carries."""

    labels: dict[str, set[str]]

    @classmethod
    def scrape(cls, text: str) -> Exported:
        labels: dict[str, set[str]] = {}
        for family in text_string_to_metric_families(text):
            names = {
                "counter": [f"{family.name}_total"],
                "histogram": [f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum"],
            }.get(family.type, [family.name])
            for name in names:
                labels.setdefault(name, set())
            for sample in family.samples:
                labels.setdefault(sample.name, set()).update(sample.labels)
        return cls(labels)


@dataclass(frozen=True)
class Live:
    """The running components, by name, as scrape targets."""

    targets: dict[str, Target]

    def scrape(self) -> dict[str, Exported]:
        return {component: Exported.scrape(httpx.get(f"http://{t.address}{t.path}", timeout=5).text)
                for component, t in self.targets.items()}


def filter_call(model: str, nodes: list[str]) -> dict[str, Any]:
    pod = {"metadata": {"name": "p", "namespace": "default", "annotations": {
        "aim.amd.com/model": model, "aim.amd.com/precision": "fp16"}},
        "spec": {"containers": [{"name": "c", "resources": {"limits": {"amd.com/gpu-partition": "1"}}}]}}
    return {"Pod": pod, "NodeNames": nodes}


@pytest.fixture(scope="module")
def live(control_plane: ControlPlane) -> Iterator[Live]:
    # A node with a bound pod, so the extender's per-node partition-memory series have samples.
    core, node = control_plane.core, "observability-gpu-1"
    create_node(core, node, partitions=8, labels=partition_labels(memory_gib=24, count=8))
    limits = {"amd.com/gpu-partition": "1"}
    core.create_namespaced_pod("default", {"metadata": {"name": "observability-bound"}, "spec": {
        "nodeName": node, "containers": [{"name": "c", "image": "none", "resources": {"limits": limits}}]}})
    extender = control_plane.start_extender(node_cache="watch")
    plugin = PluginMetrics(node="gpu-1")
    partitioner = PartitionerMetrics()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=partitioner.registry)
    try:
        deadline = time.monotonic() + 30  # the watch lists the node and pod within a second or two
        while "aim_extender_partitions_bound_unsized{" not in extender.get("/metrics").text:
            assert time.monotonic() < deadline, "the extender never saw the bound pod"
            time.sleep(0.2)
        # Real calls, so the decision and request series have samples with their labels: a node the
        # cache lacks, each model above on the node, and a body the extender cannot read (HTTP 400).
        for call in (filter_call(SMALL_MODEL, ["no-such-node"]), filter_call(SMALL_MODEL, [node]),
                     filter_call(LARGE_MODEL, [node]), filter_call(HUGE_MODEL, [node])):
            assert extender.post("/filter", call).status_code == 200
        assert extender.post("/prioritize", filter_call(SMALL_MODEL, [node])).status_code == 200
        assert httpx.post(f"{extender.url}/filter", content=b"{", timeout=5).status_code == 400
        plugin.set_partition_counts(advertised={"MI300X": 8}, healthy={"MI300X": 7}, allocated={"MI300X": 2}, lost=1)
        plugin.set_registered(True)
        plugin.registrations_total.labels(result="ok").inc()
        plugin.label_patches_total.labels(result="ok").inc()
        plugin.discovery_errors_total.inc()
        plugin.allocate_seconds.observe(0.0002)
        plugin.allocate_total.labels(result="ok").inc()
        plugin_port = plugin.serve(0, addr="127.0.0.1")
        partitioner.set_nodes({"idle": 3})
        partitioner.pending.set(1)
        partitioner.planned.set(1)
        partitioner.repartitions.labels(result=Outcome.SUCCEEDED.value).inc()
        partitioner.pods_unblocked.inc()
        partitioner.unblock_seconds.observe(42)
        yield Live({
            "extender": Target("aim-gpu-extender", extender.url.removeprefix("http://")),
            "deviceplugin": Target("aim-gpu-deviceplugin", f"127.0.0.1:{plugin_port}"),
            "partitioner": Target("aim-partitioner-controller", f"127.0.0.1:{server.server_port}"),
        })
    finally:
        plugin.stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)
        control_plane.stop_process(extender.process)
        core.delete_namespaced_pod("observability-bound", "default", grace_period_seconds=0)
        delete_nodes(core, [node])


@pytest.fixture(scope="module")
def exported(live: Live) -> dict[str, Exported]:
    return live.scrape()


def all_series(exported: dict[str, Exported]) -> dict[str, set[str]]:
    merged: dict[str, set[str]] = {}
    for component in exported.values():
        for name, labels in component.labels.items():
            merged.setdefault(name, set()).update(labels)
    return merged


def check_selector(selector: Selector, series: dict[str, set[str]], jobs: set[str]) -> list[str]:
    problems: list[str] = []
    name = selector.metric
    if name == "up":
        for matcher in selector.matchers:
            if matcher.label == "job" and matcher.value not in jobs:
                problems.append(f"up{{job={matcher.value!r}}}: no monitor of the chart makes that job ({sorted(jobs)})")
        return problems
    if name not in series:
        return [f"{name}: not exported by any component"]
    for matcher in selector.matchers:
        if matcher.label not in series[name] | TARGET_LABELS:
            problems.append(f"{name}: no label {matcher.label!r} (it has {sorted(series[name])})")
        known = KNOWN_VALUES.get((name, matcher.label))
        if known is not None and matcher.op in ("=", "=~"):
            if matcher.op == "=~" and not SIMPLE_ALTERNATIVES.match(matcher.value):
                problems.append(f"{name}{{{matcher.label}=~{matcher.value!r}}}: not a plain list of alternatives")
                continue
            unknown = set(matcher.value.split("|")) - known
            if unknown:
                problems.append(f"{name}{{{matcher.label}}}: values {sorted(unknown)} are never written")
    return problems


@dataclass(frozen=True)
class Query:
    dashboard: str  # file name
    where: str  # "file: panel title" (or "file: $variable")
    text: str


def dashboard_queries() -> Iterator[Query]:
    for path in sorted((CHART / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield Query(path.name, f"{path.name}: {panel['title']}", target["expr"])


def dashboard_variables() -> Iterator[tuple[Query, str]]:
    """Query variables with their names."""
    for path in sorted((CHART / "dashboards").glob("*.json")):
        for variable in json.loads(path.read_text())["templating"]["list"]:
            if variable["type"] == "query":
                name = variable["name"]
                yield Query(path.name, f"{path.name}: ${name}", variable["query"]["query"]), name


def alert_rules(releases: dict[str, Installed]) -> list[dict[str, Any]]:
    rule = releases[FULL.key].release.one("PrometheusRule", f"{FULL.prefix}-alerts")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def monitor_jobs(releases: dict[str, Installed]) -> set[str]:
    """The job label values of the chart's monitors: their jobLabel's value on the scraped objects."""
    objects = releases[FULL.key].release
    jobs = set()
    for monitor in objects.find("ServiceMonitor") + objects.find("PodMonitor"):
        label = monitor["spec"]["jobLabel"]
        if monitor["kind"] == "PodMonitor":
            selected = monitor["spec"]["selector"]["matchLabels"]
            pods = [o["spec"]["template"]["metadata"]["labels"] for o in objects.find("DaemonSet")]
            jobs |= {p[label] for p in pods if selected.items() <= p.items()}
        else:
            values = set(monitor["spec"]["selector"]["matchExpressions"][0]["values"])
            jobs |= {s["metadata"]["labels"][label] for s in objects.find("Service")
                     if s["metadata"]["labels"]["app.kubernetes.io/name"] in values}
    return jobs


def test_every_dashboard_query_uses_exported_series(exported: dict[str, Exported],
                                                    releases: dict[str, Installed]) -> None:
    series, jobs = all_series(exported), monitor_jobs(releases)
    problems, used = [], set()
    for query in dashboard_queries():
        where = query.where
        try:
            parsed = parse(query.text)
        except PromQLError as error:
            problems.append(f"{where}: {error}")
            continue
        assert parsed.selectors, f"{where}: a query without any series"
        used |= parsed.metrics
        problems += [f"{where}: {p}" for s in parsed.selectors for p in check_selector(s, series, jobs)]
    for variable, _ in dashboard_variables():
        match = GRAFANA_LABEL_VALUES.match(variable.text)
        if not match or match.group(1) not in series or match.group(2) not in series[match.group(1)]:
            problems.append(f"{variable.where}: {variable.text!r} names no exported series and one of its labels")
    assert not problems, "\n".join(problems)
    # the panels the issue asks for have their series
    for name in ("aim_deviceplugin_partitions_advertised", "aim_deviceplugin_partitions_healthy",
                 "aim_deviceplugin_partitions_allocated", "aim_extender_request_duration_seconds_bucket",
                 "aim_extender_filter_decisions_total", "aim_partitioner_pending_pods", "aim_partitioner_nodes",
                 "aim_partitioner_repartitions_total"):
        assert name in used, f"no panel shows {name}"


def test_every_alert_parses_and_uses_exported_series(exported: dict[str, Exported],
                                                     releases: dict[str, Installed]) -> None:
    series, jobs = all_series(exported), monitor_jobs(releases)
    rules = alert_rules(releases)
    problems = []
    for rule in rules:
        try:
            parsed = parse(rule["expr"])
        except PromQLError as error:
            problems.append(f"{rule['alert']}: {error}")
            continue
        problems += [f"{rule['alert']}: {p}" for s in parsed.selectors for p in check_selector(s, series, jobs)]
        annotations = rule["annotations"]
        assert len(annotations["description"]) > 150, f"{rule['alert']}: a runbook needs what to check"
        assert "kubectl" in annotations["description"] or "check" in annotations["description"].lower()
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert re.fullmatch(r"[0-9]+[smh]", rule.get("for", "0s")), rule["alert"]
    assert not problems, "\n".join(problems)
    names = {r["alert"] for r in rules}
    assert {"AimGpuPartitionsUnhealthy", "AimGpuDevicePluginNotRegistered", "AimGpuDevicePluginDown",
            "AimGpuExtenderErrors", "AimGpuExtenderLatencyHigh", "AimGpuExtenderCacheStale",
            "AimGpuPodsUnschedulableForPartitionSize", "AimGpuRepartitionFailed"} <= names


def test_alert_thresholds_come_from_values(releases: dict[str, Installed]) -> None:
    rules = {r["alert"]: r for r in alert_rules(releases)}
    assert rules["AimGpuExtenderLatencyHigh"]["expr"].endswith("> 0.25")
    assert rules["AimGpuExtenderCacheStale"]["expr"].endswith("> 30")  # extender.staleAfterSeconds
    assert rules["AimGpuPodsUnschedulableForPartitionSize"]["for"] == "15m"
    assert "{{ $labels.node }}" in rules["AimGpuPartitionsUnhealthy"]["annotations"]["summary"]
    assert f"-n {FULL.namespace}" in rules["AimGpuDevicePluginDown"]["annotations"]["description"]


def test_the_checker_catches_a_made_up_metric(exported: dict[str, Exported]) -> None:
    series = all_series(exported)
    (selector,) = parse('rate(aim_extender_decisions_total{reason="x"}[5m])').selectors
    assert check_selector(selector, series, set())
    (selector,) = parse('aim_extender_filter_decisions_total{reason="too_small"}').selectors
    assert check_selector(selector, series, set())
    (selector,) = parse('aim_deviceplugin_partitions_healthy{gpu="0"}').selectors
    assert check_selector(selector, series, set())


GRAFANA_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
SCRAPED_TIMEOUT_SECONDS = 30  # measured: targets are scraped ~5 s after /-/ready (2.42), then every 1 s


def substitute(expr: str, values: dict[str, str]) -> str:
    """The query Grafana sends: each $variable replaced by its value."""
    return GRAFANA_VARIABLE.sub(lambda match: values.get(match.group(1), match.group(0)), expr)


def scraped_twice(prometheus: Prometheus, jobs: set[str]) -> bool:
    """Every job up, with two samples or more: rate() and increase() have two points to work with."""
    counts = {r["metric"]["job"]: float(r["value"][1]) for r in prometheus.query("count_over_time(up[1m])")}
    ups = {r["metric"]["job"]: float(r["value"][1]) for r in prometheus.query("up")}
    return all(counts.get(job, 0) >= 2 and ups.get(job) == 1 for job in jobs)


def test_a_real_prometheus_answers_every_dashboard_query(live: Live, tmp_path: Path) -> None:
    jobs = {t.job for t in live.targets.values()}
    with running(list(live.targets.values()), tmp_path) as prometheus:
        wait_until(lambda: scraped_twice(prometheus, jobs), SCRAPED_TIMEOUT_SECONDS,
                   f"two scrapes of {sorted(jobs)} by prometheus")
        problems: list[str] = []
        values: dict[tuple[str, str], str] = {}  # (dashboard, variable) -> the first value Prometheus lists
        for variable, name in dashboard_variables():
            match = GRAFANA_LABEL_VALUES.match(variable.text)
            assert match, f"{variable.where}: not a label_values query"
            found = prometheus.label_values(match.group(2), match.group(1))
            if not found:
                problems.append(f"{variable.where}: {variable.text} has no values")
            values[variable.dashboard, name] = found[0] if found else "none"
        queries = list(dashboard_queries())
        for query in queries:
            expr = substitute(query.text, {name: v for (board, name), v in values.items() if board == query.dashboard})
            if not prometheus.query(expr):
                problems.append(f"{query.where}: {expr}: no data")
    assert not problems, "\n".join(problems)
    assert queries, f"no query in {CHART / 'dashboards'}"
