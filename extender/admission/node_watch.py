"""Keeps a ``PartitionInventory`` in step with the nodes' partition labels (list, then watch).

One daemon thread: list nodes (paged), replace the inventory, then follow changes with the
kubernetes client's ``watch.Watch`` from the list's resourceVersion; "410 Gone" relists at once,
any other failure backs off (the extender's ``Backoff``: 0.5 s doubling to 3 s, with jitter) and
relists. While the watch is broken the inventory keeps the last labels it saw: partition sizes
change only when an operator repartitions a GPU, so they are the best answer there is.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Final

from kubernetes import watch as kube_watch_module
from kubernetes.client.exceptions import ApiException

from extender.admission.inventory import PartitionInventory
from extender.backoff import Backoff

logger = logging.getLogger("extender.admission")

Watch: Any = kube_watch_module.Watch  # the kubernetes client has no type hints

LIST_PAGE_SIZE: Final = 500  # client-go's pager default (k8s.io/client-go/tools/pager)
# Server-side watch timeout: client-go reflectors use 5-10 minutes so a silently dead connection
# is replaced regularly.
WATCH_TIMEOUT_SECONDS: Final = 300
READ_SLACK_SECONDS: Final = 30  # client read timeout beyond the server's watch timeout
CONNECT_TIMEOUT_SECONDS: Final = 5  # milliseconds in a cluster; 5 s notices an unreachable API server
LIST_READ_TIMEOUT_SECONDS: Final = 60  # one 500-node page is well under a second
HTTP_GONE: Final = 410


def _labels_by_name(items: list[Any]) -> dict[str, object]:
    out: dict[str, object] = {}
    for item in items:
        metadata = item.get("metadata") if isinstance(item, dict) else None
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if isinstance(name, str):
            out[name] = metadata.get("labels")  # type: ignore[union-attr]
    return out


class NodeLabelWatcher:
    """Feeds ``inventory`` from the API server's nodes; ``start``/``stop`` from the app's lifespan."""

    def __init__(self, api: Any, inventory: PartitionInventory, *,
                 watch_timeout_seconds: int = WATCH_TIMEOUT_SECONDS) -> None:
        self._api = api  # kubernetes.client.CoreV1Api
        self._inventory = inventory
        self._watch_timeout = watch_timeout_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: Any = None
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
        items: list[Any] = []
        token: str | None = None
        metadata: dict[str, Any] = {}
        while True:
            extra = {"_continue": token} if token else {}
            response = self._api.list_node(limit=LIST_PAGE_SIZE, _preload_content=False,
                                           _request_timeout=(CONNECT_TIMEOUT_SECONDS, LIST_READ_TIMEOUT_SECONDS),
                                           **extra)
            page = json.loads(response.data)
            items.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                break
        self._inventory.replace_all(_labels_by_name(items))
        self.synced.set()
        logger.info("webhook: %d nodes listed, %d with partitions; watching for label changes",
                    len(items), self._inventory.node_count)
        return str(metadata.get("resourceVersion") or "")

    def _watch(self, version: str) -> str:
        lister = self._api.list_node

        def call(**kwargs: Any) -> Any:  # no return type documented: Watch leaves objects as dicts
            return lister(**kwargs)

        self._current = Watch()
        events = self._current.stream(
            call, resource_version=version, allow_watch_bookmarks=True, timeout_seconds=self._watch_timeout,
            _request_timeout=(CONNECT_TIMEOUT_SECONDS, self._watch_timeout + READ_SLACK_SECONDS))
        for event in events:
            if self._stopping.is_set():
                self._current.stop()
                break
            kind, obj = (event.get("type"), event.get("raw_object")) if isinstance(event, dict) else (None, None)
            if not isinstance(obj, dict):
                continue
            metadata = obj.get("metadata")
            if not isinstance(metadata, dict):
                continue
            if isinstance(metadata.get("resourceVersion"), str):
                version = metadata["resourceVersion"]
            name = metadata.get("name")
            if not isinstance(name, str):
                continue
            if kind == "DELETED":
                self._inventory.remove_node(name)
            elif kind in ("ADDED", "MODIFIED"):
                self._inventory.set_node(name, metadata.get("labels"))
        return version
