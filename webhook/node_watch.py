"""Keeps a ``PartitionInventory`` in step with the nodes' partition labels (list, then watch).

One daemon thread: list nodes (paged), replace the inventory, then follow changes from the list's
resourceVersion (both with ``kube.list_watch``); "410 Gone" relists at once,
any other failure backs off (the extender's ``Backoff``: 0.5 s doubling to 3 s, with jitter) and
relists. While the watch is broken the inventory keeps the last labels it saw: partition sizes
change only when an operator repartitions a GPU, so they are the best answer there is.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kubernetes.client.exceptions import ApiException

from kube.backoff import Backoff
from kube.list_watch import HTTP_GONE, WATCH_TIMEOUT_SECONDS, WatchCall, list_objects
from webhook.inventory import PartitionInventory

logger = logging.getLogger("webhook")


def _name_and_labels(node: dict[str, Any]) -> tuple[str, object] | None:
    """A Node's name and its raw ``metadata.labels`` (read by the inventory), or None without a name."""
    metadata = node.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        return None
    return metadata["name"], metadata.get("labels")


def _labels_by_name(items: list[dict[str, Any]]) -> dict[str, object]:
    return dict(named for named in map(_name_and_labels, items) if named is not None)


class NodeLabelWatcher:
    """Feeds ``inventory`` from the API server's nodes; ``start``/``stop`` from the app's lifespan."""

    def __init__(self, api: Any, inventory: PartitionInventory, *,
                 watch_timeout_seconds: int = WATCH_TIMEOUT_SECONDS) -> None:
        self._api = api  # kubernetes.client.CoreV1Api
        self._inventory = inventory
        self._watch_timeout = watch_timeout_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: WatchCall | None = None
        self.synced = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhook-node-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._current is not None:
            self._current.stop()

    def _run(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                version = self._list()
                backoff.reset()
                while not self._stopping.is_set():
                    version = self._watch(version)
            except Exception as error:  # noqa: BLE001 - the loop must survive anything the API does
                if self._stopping.is_set():
                    break
                if isinstance(error, ApiException) and error.status == HTTP_GONE:
                    logger.info("webhook node watch expired (HTTP 410 Gone); relisting now")
                    continue
                wait = backoff.next()
                reason = (f"HTTP {error.status} {error.reason}" if isinstance(error, ApiException)
                          else f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:160])
                logger.warning("webhook node list/watch failed: %s; keeping the partition sizes of %d nodes,"
                               " will retry in %.1f s", reason, self._inventory.node_count, wait)
                self._stopping.wait(wait)

    def _list(self) -> str:
        items, version = list_objects(self._api.list_node)
        self._inventory.replace_all(_labels_by_name(items))
        self.synced.set()
        logger.info("webhook: %d nodes listed, %d with partitions; watching for label changes",
                    len(items), self._inventory.node_count)
        return version

    def _watch(self, version: str) -> str:
        current = self._current = WatchCall(self._api.list_node, version, stopping=self._stopping,
                                            timeout_seconds=self._watch_timeout)
        for kind, obj in current:
            named = _name_and_labels(obj)
            if named is None:
                continue
            if kind == "DELETED":
                self._inventory.remove_node(named[0])
            else:
                self._inventory.set_node(*named)
        return current.resource_version
