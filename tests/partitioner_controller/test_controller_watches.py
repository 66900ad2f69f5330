"""``aim-partitioner controller`` keeps one watch of the Nodes and one of the Pods (issue 19: its
watches are ``kube.informer`` subscribers), on the real API server (tests/controlplane; skipped without
its binaries): while it runs, the API server serves exactly one more watch of each, held steady."""

from __future__ import annotations

from tests.controlplane.harness import ControlPlane
from tests.controlplane.processes import wait_until
from tests.kube.watch_counts import RESOURCES, steady_watches, watches
from tests.partitioner_controller.controller_process import start_controller

# The controller lists and opens its watches within a second of starting; generous for a loaded machine.
TIMEOUT_SECONDS = 30.0


def test_the_controller_holds_one_node_watch_and_one_pod_watch(control_plane: ControlPlane) -> None:
    plane = control_plane
    namespace = plane.create_namespace("ctl-watch")
    before = steady_watches(plane)
    controller = start_controller(plane, "watches", namespace=namespace, configmap="dcm-watches")
    try:
        wait_until(lambda: all(watches(plane)[r] > before[r] for r in RESOURCES), TIMEOUT_SECONDS,
                   "the controller's node and pod watches")
        after = steady_watches(plane)
        assert {r: after[r] - before[r] for r in RESOURCES} == {"nodes": 1, "pods": 1}, (before, after)
    finally:
        plane.stop_process(controller.process)
        plane.delete_namespace(namespace)
