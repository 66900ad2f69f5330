"""Prometheus metrics of one plugin instance, on its own CollectorRegistry (no global state),
served by prometheus-client's own HTTP server (``start_http_server``).

Names follow ``aim_deviceplugin_<thing>`` with ``_total`` counters labelled by ``result`` and
``_seconds`` histograms, recorded around each RPC (pattern of kubernetes-sigs/dra-example-driver
pkg/metrics). Partition gauges carry ``node`` and ``product`` so one dashboard covers a cluster.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Allocate answers from memory in well under a millisecond (bench/bench_deviceplugin.py);
# buckets resolve 100 us .. 1 s so a slow disk or lock contention shows up.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.25, 1.0)


class PluginMetrics:
    """All metrics of one plugin; pass ``registry`` to share one (tests pass a fresh one).

    ``node`` is the value of the ``node`` label of the partition gauges (the node name, or ""
    when the plugin runs without one).
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, node: str = "") -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.node = node
        r = self.registry
        per_product = ["node", "product"]
        self.partitions_advertised = Gauge(
            "aim_deviceplugin_partitions_advertised",
            "Partitions sent in ListAndWatch (healthy or not).",
            per_product,
            registry=r,
        )
        self.partitions_healthy = Gauge(
            "aim_deviceplugin_partitions_healthy",
            "Advertised partitions that are Healthy (what the node labels count).",
            per_product,
            registry=r,
        )
        self.partitions_allocated = Gauge(
            "aim_deviceplugin_partitions_allocated",
            "Advertised partitions assigned to containers (kubelet checkpoint, else Allocate calls).",
            per_product,
            registry=r,
        )
        self.partitions_lost = Gauge(
            "aim_deviceplugin_partitions_lost",
            "Partitions gone from the KFD topology but still advertised as Unhealthy.",
            ["node"],
            registry=r,
        )
        self.registered = Gauge(
            "aim_deviceplugin_registered",
            "1 while the plugin is registered with the kubelet, 0 while (re-)registering.",
            ["node"],
            registry=r,
        )
        self.allocate_total = Counter(
            "aim_deviceplugin_allocate", "Allocate calls by result.", ["result"], registry=r
        )
        self.allocate_seconds = Histogram(
            "aim_deviceplugin_allocate_duration_seconds",
            "Allocate call latency.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.preferred_allocation_total = Counter(
            "aim_deviceplugin_preferred_allocation",
            "GetPreferredAllocation calls by result.",
            ["result"],
            registry=r,
        )
        self.registrations_total = Counter(
            "aim_deviceplugin_registrations",
            "Register calls to the kubelet by result.",
            ["result"],
            registry=r,
        )
        self.discovery_errors_total = Counter(
            "aim_deviceplugin_discovery_errors",
            "Newly seen discovery problems (missing or garbled sysfs files).",
            registry=r,
        )
        self.label_patches_total = Counter(
            "aim_deviceplugin_label_patches", "Node label patches by result.", ["result"], registry=r
        )
        self.registered.labels(node=node).set(0)
        self.partitions_lost.labels(node=node).set(0)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def set_partition_counts(
        self,
        *,
        advertised: Mapping[str, int],
        healthy: Mapping[str, int],
        allocated: Mapping[str, int],
        lost: int,
    ) -> None:
        """Set the partition gauges from per-product counts; products no longer present vanish."""
        for gauge, counts in (
            (self.partitions_advertised, advertised),
            (self.partitions_healthy, healthy),
            (self.partitions_allocated, allocated),
        ):
            gauge.clear()
            for product in advertised:
                gauge.labels(node=self.node, product=product).set(counts.get(product, 0))
        self.partitions_lost.labels(node=self.node).set(lost)

    def set_registered(self, registered: bool) -> None:
        self.registered.labels(node=self.node).set(1 if registered else 0)

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:  # noqa: S104 - metrics for Prometheus
        """Start prometheus-client's /metrics server; returns the bound port (useful with port 0)."""
        self._server, self._thread = start_http_server(port, addr=addr, registry=self.registry)
        return int(self._server.server_port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
