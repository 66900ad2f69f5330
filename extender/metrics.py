"""Prometheus collectors of one extender app, in their own registry (no global state)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter as PromCounter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from decision.partition_memory import NodePartitionMemory
from decision.reasons import ReasonCode

NAMESPACE = "aim_extender"

# Latency buckets from 0.25 ms (a small request) up to 5 s, kube-scheduler's default extender
# httpTimeout (DefaultExtenderTimeout, kubernetes pkg/scheduler/extender.go): above it the call failed.
LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Nodes per request: up to 5,000, the largest cluster Kubernetes supports (sig-scalability thresholds).
NODE_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class PartitionMemoryCollector:
    """``partition_memory_bytes{node,state=used|idle}`` and ``partitions_bound_unsized{node}``,
    computed once per scrape by ``compute`` (None: no node cache, the families have no samples)."""

    def __init__(self) -> None:
        self.compute: Callable[[], Mapping[str, NodePartitionMemory]] | None = None

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                f"{NAMESPACE}_partition_memory_bytes",
                "Memory inside partitions held by bound pods the extender can size, per node:"
                " state=used (bytes each pod needs per partition x its partitions) or idle (the rest).",
                labels=["node", "state"],
            ),
            GaugeMetricFamily(
                f"{NAMESPACE}_partitions_bound_unsized",
                "Partitions held by bound pods the extender cannot size (no or unsizable annotations,"
                " or a node of unknown partition size), per node.",
                labels=["node"],
            ),
        )

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        memory, unsized = self._families()
        if self.compute is not None:
            for node, row in sorted(self.compute().items()):
                memory.add_metric([node, "used"], row.used_bytes)
                memory.add_metric([node, "idle"], row.idle_bytes)
                unsized.add_metric([node], row.unsized_partitions)
        yield memory
        yield unsized


class ExtenderMetrics:
    """Request latency, node counts, filter decisions by reason, and node-cache state."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_seconds = Histogram(
            "request_duration_seconds",
            "Server-side time of a filter or prioritize call, from body read to reply encoded.",
            ["verb"], namespace=NAMESPACE, buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.request_nodes = Histogram(
            "request_nodes", "Nodes in a filter or prioritize request.",
            ["verb"], namespace=NAMESPACE, buckets=NODE_BUCKETS, registry=self.registry,
        )
        self.bad_requests = PromCounter(
            "bad_requests", "Requests answered HTTP 400 (malformed JSON, no Pod, ...).",
            ["verb"], namespace=NAMESPACE, registry=self.registry,
        )
        self.decisions = PromCounter(
            "filter_decisions", "Filter verdicts per node: result=pass|fail|unresolvable, reason code.",
            ["result", "reason"], namespace=NAMESPACE, registry=self.registry,
        )
        self.cache_nodes = Gauge(
            "cache_nodes", "Nodes in the node cache (0 with --node-cache off).",
            namespace=NAMESPACE, registry=self.registry,
        )
        self.cache_pods = Gauge(
            "cache_pods", "Bound pods holding gpu partitions, in the pod cache.",
            namespace=NAMESPACE, registry=self.registry,
        )
        self.cache_synced = Gauge(
            "cache_synced", "1 when the node and pod caches have completed their first list.",
            namespace=NAMESPACE, registry=self.registry,
        )
        self.cache_stale_seconds = Gauge(
            "cache_stale_seconds",
            "Seconds since the node cache was last known current (its list/watch broke); 0 when healthy.",
            namespace=NAMESPACE, registry=self.registry,
        )
        self.stale_decisions = PromCounter(
            "stale_decisions", "Filter and prioritize calls answered from a node cache whose watch was broken.",
            ["verb"], namespace=NAMESPACE, registry=self.registry,
        )
        self.partition_memory = PartitionMemoryCollector()
        self.registry.register(self.partition_memory)
        for verb in ("filter", "prioritize"):  # export zeroes before the first call
            self.request_seconds.labels(verb)
            self.request_nodes.labels(verb)
            self.bad_requests.labels(verb)
            self.stale_decisions.labels(verb)

    def watch_cache(
        self, *, nodes: Callable[[], float], pods: Callable[[], float], synced: Callable[[], float],
        stale_seconds: Callable[[], float],
        partition_memory: Callable[[], Mapping[str, NodePartitionMemory]] | None = None,
    ) -> None:
        """Read cache state at scrape time."""
        self.partition_memory.compute = partition_memory
        self.cache_nodes.set_function(nodes)
        self.cache_pods.set_function(pods)
        self.cache_synced.set_function(synced)
        self.cache_stale_seconds.set_function(stale_seconds)

    def count_decisions(self, passed: int, rejected: Counter[tuple[ReasonCode, bool]]) -> None:
        """One increment per reason per request, not per node (5,000 increments cost milliseconds)."""
        if passed:
            self.decisions.labels("pass", "").inc(passed)
        for (code, unresolvable), n in rejected.items():
            self.decisions.labels("unresolvable" if unresolvable else "fail", code.value).inc(n)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
