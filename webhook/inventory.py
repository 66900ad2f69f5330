"""The partition sizes that exist in the cluster, from the node labels the device plugin writes.

``PartitionInventory`` is fed node by node (from a watch) and read by every admission review; it
keeps one ``Offer`` per labelled node and hands out a snapshot of the distinct offers.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from decision.fits import Offer
from sizing.contract import read_node_labels


def offer_from_labels(labels: object) -> Offer | None:
    """The node's offer, or None when it advertises no readable partition size or no partitions."""
    facts = read_node_labels(labels)
    if facts.memory_bytes is None or facts.count == 0:
        return None
    return Offer(facts.memory_bytes, facts.count)


class PartitionInventory:
    """Offers by node name; safe to update from a watch thread while reviews read it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_node: dict[str, Offer] = {}
        self._snapshot: tuple[Offer, ...] = ()

    def set_node(self, name: str, labels: object) -> None:
        offer = offer_from_labels(labels)
        with self._lock:
            if offer is None:
                self._by_node.pop(name, None)
            else:
                self._by_node[name] = offer
            self._snapshot = tuple(sorted(set(self._by_node.values())))

    def remove_node(self, name: str) -> None:
        with self._lock:
            self._by_node.pop(name, None)
            self._snapshot = tuple(sorted(set(self._by_node.values())))

    def replace_all(self, labels_by_node: Mapping[str, object]) -> None:
        """After a (re)list: exactly these nodes."""
        offers = {name: o for name, labels in labels_by_node.items() if (o := offer_from_labels(labels)) is not None}
        with self._lock:
            self._by_node = offers
            self._snapshot = tuple(sorted(set(offers.values())))

    def offers(self) -> tuple[Offer, ...]:
        """Distinct offers, smallest first (a tuple built on change: reading it takes no lock)."""
        return self._snapshot

    @property
    def node_count(self) -> int:
        return len(self._by_node)
