"""The controller's Prometheus metrics, on a registry of their own (no global state). The names
are a contract: dashboards and alerts are built on them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from partitioner.controller.machine import Outcome, Phase

# Node states of aim_partitioner_nodes: the phases of a running repartition, plus why an idle
# node is not a candidate.
NODE_STATES: Final = (*(p.value for p in Phase), "cooldown", "backoff", "opted_out")
# Pending-to-running seconds: a repartition takes a minute or so (drain, DCM, device plugin)
# and DCM may retry for 30 minutes.
UNBLOCK_BUCKETS: Final = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600, float("inf"))


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.repartitions = Counter("aim_partitioner_repartitions", "Repartitions by result",
                                    ["result"], registry=self.registry)
        for outcome in Outcome:
            self.repartitions.labels(result=outcome.value)
        self.nodes = Gauge("aim_partitioner_nodes", "GPU nodes by repartition state", ["state"],
                           registry=self.registry)
        self.pods_unblocked = Counter("aim_partitioner_pods_unblocked",
                                      "Pods pending for a partition layout that were bound after a repartition",
                                      registry=self.registry)
        self.unblock_seconds = Histogram("aim_partitioner_unblock_seconds",
                                         "Seconds from a pod's creation to its binding after a repartition",
                                         buckets=UNBLOCK_BUCKETS, registry=self.registry)
        self.pending = Gauge("aim_partitioner_pending_pods", "Pods pending for a partition layout",
                             registry=self.registry)
        self.planned = Gauge("aim_partitioner_planned_changes", "Repartitions the current plan would make",
                             registry=self.registry)

    def set_nodes(self, counts: Mapping[str, int]) -> None:
        for state in NODE_STATES:
            self.nodes.labels(state=state).set(counts.get(state, 0))
