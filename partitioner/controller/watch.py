"""List, then watch nodes and pods into the ``Cache`` with the extender's list-then-watch helper
(``kube.list_watch``: paged list, the kubernetes client's ``watch.Watch``).

One daemon thread per kind: list, replace, then follow changes from the list's resourceVersion;
"410 Gone" relists at once; any other failure marks the cache not live (the loop then changes
nothing), backs off (``kube.backoff``) and relists.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube.backoff import Backoff
from kube.list_watch import HTTP_GONE, Lister, WatchCall, list_objects, short_error
from partitioner.controller.cache import Cache

logger = logging.getLogger(__name__)


def short(error: BaseException) -> str:
    """A failure in a few words for a log line."""
    return short_error(error)


class Watcher:
    def __init__(self, api: client.CoreV1Api, cache: Cache) -> None:
        self._api = api
        self._cache = cache
        self._stopping = threading.Event()
        self._calls: dict[str, Any] = {}  # kind -> its current WatchCall

    def start(self) -> None:
        listers: dict[str, Lister] = {"nodes": self._api.list_node, "pods": self._api.list_pod_for_all_namespaces}
        for kind, lister in listers.items():
            threading.Thread(target=self._run, args=(kind, lister), name=f"watch-{kind}", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        for call in list(self._calls.values()):
            call.stop()

    def _run(self, kind: str, lister: Lister) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                items, version = list_objects(lister)
                self._cache.replace(kind, items)
                logger.info("listed %d %s; watching for changes", len(items), kind)
                backoff.reset()
                while not self._stopping.is_set():
                    call = self._calls[kind] = WatchCall(lister, version, stopping=self._stopping)
                    for event_type, obj in call:
                        self._cache.apply(kind, event_type, obj)
                    version = call.resource_version
            except Exception as error:  # noqa: BLE001 - the loop must survive anything the API does
                if self._stopping.is_set():
                    break
                if isinstance(error, ApiException) and error.status == HTTP_GONE:
                    logger.info("%s watch expired (HTTP 410 Gone); relisting now", kind)
                    continue
                self._cache.mark_broken(kind)
                wait = backoff.next()
                logger.warning("%s list/watch failed: %s; making no changes until it works again, will retry"
                               " in %.1f s", kind, short(error), wait)
                self._stopping.wait(wait)
