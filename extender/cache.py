"""In-memory node offers and partition usage, filled by ``watch`` and read by the service.

Writers (the watch threads) and readers (request handlers) share one lock; a 5,000-node read
holds it for well under a millisecond. Besides the offers, the cache keeps each node's
``Capacity`` up to date on every write, interned as a small int, so a request needs one dict
look-up per node. Usage counts only pods bound to a node (``spec.nodeName``) that have not
finished: a Succeeded or Failed pod no longer holds devices. Pods kube-scheduler has assumed but
not yet bound are invisible here (kube-scheduler does not tell extenders about them); the in-tree
NodeResourcesFit count check still covers them.

Freshness: each watched resource reports when its list/watch is live and when it broke. The
cache is *current* while every resource is live; ``stale_seconds`` is the time since it was last
known current (0 while current), which /readyz and the metrics read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence

from decision.node_offer import NodeOffer
from decision.pod_demand import BoundPodUsage
from decision.verdict import Capacity

# How long the watch may be broken before /readyz says not ready (--stale-after): 30 s rides out an
# API-server restart or leader change (relisting starts within ~3 s of its return, see backoff.py),
# yet takes a replica whose cache really diverged out of the Service soon, instead of it deciding on
# old usage for as long as the outage lasts.
DEFAULT_STALE_AFTER_SECONDS = 30.0


class ClusterCache:
    """Node offers by name and partitions used per node; thread-safe."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._nodes: dict[str, NodeOffer] = {}
        self._pods: dict[str, BoundPodUsage] = {}
        self._used: dict[str, int] = {}
        self._capacity_ids: dict[str, int] = {}  # node name -> interned Capacity id
        self._interned: dict[Capacity, int] = {}  # interning table; append-only, a few dozen entries
        self._capacities: list[Capacity] = []
        self._nodes_synced = False
        self._pods_synced = False
        self._broken_since: dict[str, float] = {}  # resource -> when its list/watch broke

    # --- freshness (written by the watch threads) -------------------------------------------
    def mark_live(self, resource: str) -> None:
        """``resource``'s list succeeded or its watch is streaming: the cache follows the API server."""
        with self._lock:
            self._broken_since.pop(resource, None)

    def mark_broken(self, resource: str) -> None:
        """``resource``'s list or watch failed; the cache was current until now (kept if already broken)."""
        with self._lock:
            self._broken_since.setdefault(resource, self._clock())

    @property
    def stale_seconds(self) -> float:
        """Seconds since the cache was last known current; 0 while every watch is live."""
        with self._lock:
            if not self._broken_since:
                return 0.0
            return max(0.0, self._clock() - min(self._broken_since.values()))

    # --- writers ---------------------------------------------------------------------------
    def replace_nodes(self, nodes: Iterable[NodeOffer]) -> None:
        fresh = {offer.name: offer for offer in nodes}
        with self._lock:
            self._nodes = fresh
            self._recompute_all()
            self._nodes_synced = True

    def put_node(self, offer: NodeOffer) -> None:
        with self._lock:
            self._nodes[offer.name] = offer
            self._recompute(offer.name)

    def remove_node(self, name: str) -> None:
        with self._lock:
            self._nodes.pop(name, None)
            self._capacity_ids.pop(name, None)

    def replace_pods(self, usages: Mapping[str, BoundPodUsage]) -> None:
        used: dict[str, int] = {}
        for usage in usages.values():
            used[usage.node] = used.get(usage.node, 0) + usage.partitions
        with self._lock:
            self._pods = dict(usages)
            self._used = used
            self._recompute_all()
            self._pods_synced = True

    def put_pod(self, pod: str, usage: BoundPodUsage | None) -> None:
        """Record what pod ``pod`` (its uid) holds (None = nothing now, e.g. it finished)."""
        with self._lock:
            self._forget_pod(pod)
            if usage is not None:
                self._pods[pod] = usage
                self._used[usage.node] = self._used.get(usage.node, 0) + usage.partitions
                self._recompute(usage.node)

    def remove_pod(self, pod: str) -> None:
        with self._lock:
            self._forget_pod(pod)

    def _forget_pod(self, pod: str) -> None:
        old = self._pods.pop(pod, None)
        if old is not None:
            left = self._used.get(old.node, 0) - old.partitions
            if left > 0:
                self._used[old.node] = left
            else:
                self._used.pop(old.node, None)
            self._recompute(old.node)

    def _capacity(self, offer: NodeOffer) -> Capacity:
        return (offer.allocatable, offer.partition_bytes, self._used.get(offer.name, 0), offer.defect)

    def _recompute_all(self) -> None:
        self._capacity_ids = {name: self._intern(self._capacity(offer)) for name, offer in self._nodes.items()}

    def _recompute(self, name: str) -> None:
        offer = self._nodes.get(name)
        if offer is not None:
            self._capacity_ids[name] = self._intern(self._capacity(offer))

    def _intern(self, capacity: Capacity) -> int:
        found = self._interned.get(capacity)
        if found is None:
            found = self._interned[capacity] = len(self._capacities)
            self._capacities.append(capacity)
        return found

    # --- readers ---------------------------------------------------------------------------
    def capacity_ids(self, names: Sequence[str]) -> tuple[list[int | None], Callable[[Hashable], Capacity]]:
        """An interned Capacity id per name (None for a node the cache does not know), and the
        function that resolves an id to its Capacity (valid after the lock is released: the
        table only grows)."""
        with self._lock:
            return list(map(self._capacity_ids.get, names)), self._capacities.__getitem__  # type: ignore[return-value]

    def used_on(self, names: Sequence[str]) -> list[int]:
        with self._lock:
            used = self._used
            return [used.get(name, 0) for name in names]

    def offer(self, name: str) -> NodeOffer | None:
        with self._lock:
            return self._nodes.get(name)

    def bound_snapshot(self) -> tuple[list[BoundPodUsage], dict[str, int | None]]:
        """The bound pods' usages and each node's partition bytes (None = unknown), copied under
        the lock; for the metrics scrape, not for decisions."""
        with self._lock:
            return list(self._pods.values()), {name: offer.partition_bytes for name, offer in self._nodes.items()}

    @property
    def synced(self) -> bool:
        return self._nodes_synced and self._pods_synced

    @property
    def node_count(self) -> int:
        return len(self._nodes)

    @property
    def pod_count(self) -> int:
        return len(self._pods)
