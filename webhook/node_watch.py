"""Keeps a ``PartitionInventory`` in step with the nodes' partition labels.

A subscriber of the process's one node informer (``kube.informer``: paged list, then watch; "410 Gone"
relists at once, any other failure backs off 0.5 s doubling to 3 s with jitter and relists), which
``aim-extender serve`` shares with the extender's node cache: one watch of the Nodes per process.
While the watch is broken the inventory keeps the last labels it saw: partition sizes change only
when an operator repartitions a GPU, so they are the best answer there is.
"""

from __future__ import annotations

import threading
from typing import Any

from kube.informer import Informer
from kube.list_watch import WATCH_TIMEOUT_SECONDS
from webhook.inventory import PartitionInventory


def _name_and_labels(node: dict[str, Any]) -> tuple[str, object] | None:
    """A Node's name and its raw ``metadata.labels`` (read by the inventory), or None without a name."""
    metadata = node.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        return None
    return metadata["name"], metadata.get("labels")


class NodeLabelWatcher:
    """Feeds ``inventory`` from ``nodes`` (default: an informer of its own on ``api``, a CoreV1Api);
    ``start``/``stop`` from the app's lifespan."""

    def __init__(self, api: Any, inventory: PartitionInventory, *, nodes: Informer | None = None,
                 watch_timeout_seconds: int = WATCH_TIMEOUT_SECONDS) -> None:
        self._inventory = inventory
        self._nodes = nodes or Informer("nodes", api.list_node, watch_timeout_seconds=watch_timeout_seconds)
        self._nodes.subscribe(self)
        self.synced = threading.Event()

    def start(self) -> None:
        self._nodes.start()

    def stop(self) -> None:
        self._nodes.stop()

    # --- the informer's subscriber -------------------------------------------------------------
    def replace(self, items: list[dict[str, Any]]) -> None:
        self._inventory.replace_all(dict(named for named in map(_name_and_labels, items) if named is not None))
        self.synced.set()

    def apply(self, event: str, obj: dict[str, Any]) -> None:
        named = _name_and_labels(obj)
        if named is None:
            return
        if event == "DELETED":
            self._inventory.remove_node(named[0])
        else:
            self._inventory.set_node(*named)

    def broken(self) -> None:
        """Nothing to do: the inventory keeps the last labels it saw."""
