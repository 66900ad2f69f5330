"""How many watches of Nodes and of Pods the test API server is serving now (its own gauge,
apiserver_longrunning_requests{resource=...,verb="WATCH"}), for the tests that prove one watch of each
per process (issue 19)."""

from __future__ import annotations

import time

from tests.controlplane.harness import ControlPlane, prometheus_samples

RESOURCES = ("nodes", "pods")
# How long a count must hold still: longer than the gap of any other client's reconnect.
STEADY_SECONDS = 2.0


def watches(plane: ControlPlane) -> dict[str, float]:
    """Watches of each of RESOURCES the API server is serving now, from every client."""
    samples = prometheus_samples(plane.kubectl("get", "--raw", "/metrics").stdout)
    return {resource: sum(value for name, value in samples.items()
                          if name.startswith("apiserver_longrunning_requests{") and 'verb="WATCH"' in name
                          and f'resource="{resource}"' in name) for resource in RESOURCES}


def steady_watches(plane: ControlPlane) -> dict[str, float]:
    """The most ``watches`` of each resource sampled for STEADY_SECONDS (another client reconnecting
    dips a count for a moment)."""
    most = dict.fromkeys(RESOURCES, 0.0)
    deadline = time.monotonic() + STEADY_SECONDS
    while time.monotonic() < deadline:
        for resource, count in watches(plane).items():
            most[resource] = max(most[resource], count)
    return most
