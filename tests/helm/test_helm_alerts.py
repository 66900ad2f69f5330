"""Each rendered alert evaluated (tests/helm/promql_eval.py) over two sets of sample series, a
healthy cluster and the broken state it is about: it must stay quiet on the first and fire on the
second. Every alert of the chart has its pair, so a new alert cannot land without one."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from extender.metrics import LATENCY_BUCKETS
from tests.helm.conftest import FULL, Installed
from tests.helm.promql_eval import Series, evaluate

NOW = 900.0  # seconds of sample history; every window the rules use (<= 5m, 30m) is covered or clipped
STEP = 15.0  # a scrape interval
DP_JOB, EX_JOB = f"{FULL.prefix}-deviceplugin", f"{FULL.prefix}-extender"


def gauge(name: str, labels: Mapping[str, str], value: float) -> Series:
    times = [i * STEP for i in range(int(NOW / STEP) + 1)]
    return Series({"__name__": name, **labels}, [(t, value) for t in times])


def counter(name: str, labels: Mapping[str, str], per_second: float) -> Series:
    times = [i * STEP for i in range(int(NOW / STEP) + 1)]
    return Series({"__name__": name, **labels}, [(t, 5.0 + per_second * t) for t in times])


def latency(seconds_each: float, per_second: float = 20.0) -> list[Series]:
    """The extender's filter latency histogram with every call taking ``seconds_each``."""
    name = "aim_extender_request_duration_seconds_bucket"
    series = [counter(name, {"verb": "filter", "le": str(le)}, per_second if seconds_each <= le else 0.0)
              for le in LATENCY_BUCKETS]
    return [*series, counter(name, {"verb": "filter", "le": "+Inf"}, per_second)]


PARTITIONS = {"node": "gpu-1", "product": "MI300X"}
DECISIONS = "aim_extender_filter_decisions_total"
# alert -> (healthy series, broken series)
SCENARIOS: dict[str, tuple[list[Series], list[Series]]] = {
    "AimGpuPartitionsUnhealthy": (
        [gauge("aim_deviceplugin_partitions_advertised", PARTITIONS, 8),
         gauge("aim_deviceplugin_partitions_healthy", PARTITIONS, 8)],
        [gauge("aim_deviceplugin_partitions_advertised", PARTITIONS, 8),
         gauge("aim_deviceplugin_partitions_healthy", PARTITIONS, 6)]),
    "AimGpuDevicePluginNotRegistered": (
        [gauge("aim_deviceplugin_registered", {"node": "gpu-1"}, 1)],
        [gauge("aim_deviceplugin_registered", {"node": "gpu-1"}, 0)]),
    "AimGpuDevicePluginDown": (
        [gauge("up", {"job": DP_JOB, "pod": "dp-1"}, 1)], [gauge("up", {"job": DP_JOB, "pod": "dp-1"}, 0)]),
    "AimGpuDevicePluginAbsent": (
        [gauge("up", {"job": DP_JOB, "pod": "dp-1"}, 1)], [gauge("up", {"job": EX_JOB, "pod": "ex-1"}, 1)]),
    "AimGpuExtenderDown": (
        [gauge("up", {"job": EX_JOB, "pod": "ex-1"}, 1)], [gauge("up", {"job": EX_JOB, "pod": "ex-1"}, 0)]),
    "AimGpuExtenderErrors": (
        [counter("aim_extender_bad_requests_total", {"verb": "filter"}, 0)],
        [counter("aim_extender_bad_requests_total", {"verb": "filter"}, 0.2)]),
    "AimGpuExtenderLatencyHigh": (latency(0.0008), latency(0.8)),
    "AimGpuExtenderCacheStale": (
        [gauge("aim_extender_cache_stale_seconds", {"pod": "ex-1"}, 0)],
        [gauge("aim_extender_cache_stale_seconds", {"pod": "ex-1"}, 95)]),
    "AimGpuPodsUnschedulableForPartitionSize": (
        [counter(DECISIONS, {"result": "pass", "reason": ""}, 2),
         counter(DECISIONS, {"result": "fail", "reason": "partition_too_small"}, 3)],
        # no node has ever passed: the pass series does not exist yet
        [counter(DECISIONS, {"result": "fail", "reason": "partition_too_small"}, 3),
         counter(DECISIONS, {"result": "unresolvable", "reason": "never_fits"}, 1)]),
    "AimGpuPodsPendingForPartitionLayout": (
        [gauge("aim_partitioner_pending_pods", {}, 0)], [gauge("aim_partitioner_pending_pods", {}, 3)]),
    "AimGpuRepartitionFailed": (
        [counter("aim_partitioner_repartitions_total", {"result": "failed"}, 0),
         counter("aim_partitioner_repartitions_total", {"result": "succeeded"}, 0.01)],
        [counter("aim_partitioner_repartitions_total", {"result": "failed"}, 0.01)]),
}


@pytest.fixture(scope="module")
def rules(releases: dict[str, Installed]) -> dict[str, str]:
    rule = releases[FULL.key].release.one("PrometheusRule", f"{FULL.prefix}-alerts")
    return {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}


def test_every_alert_has_a_scenario(rules: dict[str, str]) -> None:
    assert set(rules) == set(SCENARIOS)


@pytest.mark.parametrize("alert", sorted(SCENARIOS))
def test_alert_is_quiet_when_healthy_and_fires_when_broken(rules: dict[str, str], alert: str) -> None:
    healthy, broken = SCENARIOS[alert]
    assert evaluate(rules[alert], healthy, NOW) == {}, f"{alert} fires on a healthy cluster"
    fired = evaluate(rules[alert], broken, NOW)
    assert isinstance(fired, dict) and fired, f"{alert} stays quiet on the state it is about"


def test_unschedulable_alert_also_fires_when_passes_stopped(rules: dict[str, str]) -> None:
    expr = rules["AimGpuPodsUnschedulableForPartitionSize"]
    stopped = [counter(DECISIONS, {"result": "pass", "reason": ""}, 0),
               counter(DECISIONS, {"result": "fail", "reason": "not_enough_free"}, 3)]
    assert evaluate(expr, stopped, NOW)
    unrelated = [counter(DECISIONS, {"result": "fail", "reason": "node_not_in_cache"}, 3)]
    assert evaluate(expr, unrelated, NOW) == {}


def test_the_partition_alert_names_node_and_product(rules: dict[str, str]) -> None:
    fired = evaluate(rules["AimGpuPartitionsUnhealthy"], SCENARIOS["AimGpuPartitionsUnhealthy"][1], NOW)
    assert isinstance(fired, dict)
    ((labels, value),) = fired.items()
    assert dict(labels) == PARTITIONS and value == 2


def test_latency_quantile_matches_the_buckets() -> None:
    expr = "histogram_quantile(0.99, sum by (le, verb) (rate(aim_extender_request_duration_seconds_bucket[5m])))"
    (value,) = evaluate(expr, latency(0.8), NOW).values()  # type: ignore[union-attr]
    assert 0.5 < value <= 1.0  # inside the (0.5, 1.0] bucket
