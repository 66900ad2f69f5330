"""One node watch and one pod watch per ``aim-extender serve`` process (issue 19), on the real API server
(tests/controlplane; skipped without its binaries): with the node cache (--node-cache watch) and the
admission webhook (with the pending explainer beside it) both on, the API server serves ONE more watch
of the Nodes and ONE more of the Pods while the process runs (its own gauge,
apiserver_longrunning_requests{resource=...,verb="WATCH"}; two node watches before the shared
``kube.informer``, then two pod watches while the explainer kept a loop of its own), and a node created
afterwards reaches both the node cache (aim_extender_cache_nodes) and the webhook's partition inventory
(aim_webhook_inventory_nodes)."""

from __future__ import annotations

from collections.abc import Callable

from tests.controlplane.gpu_cluster import NodeSpec, Pool, create_pool, delete_pool
from tests.controlplane.harness import ControlPlane, RunningExtender
from tests.controlplane.processes import free_port, wait_until
from tests.kube.watch_counts import steady_watches

# The extender lists within a second of starting; a watch event arrives in milliseconds. Generous for a
# loaded machine, and only a broken run waits that long.
TIMEOUT_SECONDS = 30.0
NEW = (NodeSpec("qpx", "MI300X", "QPX", "NPS1", 76, 48, 4),)


def gauge(extender: RunningExtender, name: str) -> Callable[[], float]:
    return lambda: extender.metrics().get(name, -1.0)


def test_the_node_cache_the_webhook_and_the_explainer_share_one_node_and_one_pod_watch(
        control_plane: ControlPlane) -> None:
    plane = control_plane
    tls = plane.ca.issue("one-node-watch", "127.0.0.1", ip_addresses=("127.0.0.1",), server=True)
    before = steady_watches(plane)
    extender = plane.start_extender(node_cache="watch", extra_args=[
        f"--webhook-port={free_port()}", f"--webhook-cert-file={tls.cert}", f"--webhook-key-file={tls.key}"])
    pool: Pool | None = None
    try:
        cache_nodes = gauge(extender, "aim_extender_cache_nodes")
        inventory_nodes = gauge(extender, "aim_webhook_inventory_nodes")
        wait_until(lambda: extender.metrics().get("aim_extender_cache_synced") == 1.0 and inventory_nodes() >= 0,
                   TIMEOUT_SECONDS, "the node cache and the webhook inventory to list the nodes")
        cached, inventoried = cache_nodes(), inventory_nodes()

        pool = create_pool(plane, "one-watch", NEW)
        wait_until(lambda: cache_nodes() == cached + 1 and inventory_nodes() == inventoried + 1, TIMEOUT_SECONDS,
                   "the new node in the node cache and in the webhook's inventory")
        # Both have listed and seen an event: their watches are open now.
        after = steady_watches(plane)
        assert after["nodes"] - before["nodes"] == 1, f"aim-extender serve holds {after} watches, before {before}"
        assert after["pods"] - before["pods"] == 1, f"aim-extender serve holds {after} watches, before {before}"
    finally:
        if pool is not None:
            delete_pool(plane, pool)
        plane.stop_process(extender.process)
