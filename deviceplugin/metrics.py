"""Prometheus metrics of one plugin instance, on its own CollectorRegistry (no global state).

Names follow ``aim_deviceplugin_<thing>`` with ``_total`` counters labelled by ``result`` and
``_seconds`` histograms, recorded around each RPC (pattern of kubernetes-sigs/dra-example-driver
pkg/metrics).
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

# How often the metrics server checks for shutdown; bounds how long stop() takes.
SHUTDOWN_POLL_S = 0.05

# Allocate answers from memory in well under a millisecond (bench/bench_deviceplugin.py);
# buckets resolve 100 us .. 1 s so a slow disk or lock contention shows up.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.25, 1.0)


class PluginMetrics:
    """All metrics of one plugin; pass ``registry`` to share one (tests pass a fresh one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.partitions_advertised = Gauge(
            "aim_deviceplugin_partitions_advertised", "Partitions sent in ListAndWatch.", registry=r
        )
        self.partitions_healthy = Gauge(
            "aim_deviceplugin_partitions_healthy", "Advertised partitions that are Healthy.", registry=r
        )
        self.partitions_allocated = Gauge(
            "aim_deviceplugin_partitions_allocated",
            "Partitions assigned to containers (kubelet checkpoint, else Allocate calls).",
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
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def serve(self, port: int, addr: str = "0.0.0.0") -> int:  # noqa: S104 - metrics for Prometheus
        """Start the /metrics HTTP server; returns the bound port (useful with port 0)."""
        server = make_server(addr, port, make_wsgi_app(self.registry), handler_class=_QuietHandler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_S},
            name="metrics",
            daemon=True,
        )
        self._thread.start()
        return int(server.server_port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _QuietHandler(WSGIRequestHandler):
    """Do not log every scrape to stderr."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass
