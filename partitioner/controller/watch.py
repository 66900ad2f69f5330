"""List, then watch nodes and pods into the ``Cache`` with the kubernetes client's ``watch.Watch``.

One daemon thread per kind: list (paged), replace, then follow changes from the list's
resourceVersion; "410 Gone" relists at once; any other failure marks the cache not live (the
loop then changes nothing), backs off (``extender.backoff``) and relists.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any, Final

from kubernetes import client, watch as kube_watch
from kubernetes.client.exceptions import ApiException

from extender.backoff import Backoff
from partitioner.controller.cache import Cache

logger = logging.getLogger(__name__)

Watch: Any = kube_watch.Watch  # the client has no type hints

# client-go's pager page size (k8s.io/client-go/tools/pager).
LIST_PAGE_SIZE: Final = 500
# Server-side watch timeout; client-go reflectors use 5-10 min so a dead connection is noticed.
WATCH_TIMEOUT_SECONDS: Final = 300
# Connect timeout to the API server: milliseconds in a cluster, 5 s tolerates a loaded one.
CONNECT_TIMEOUT_SECONDS: Final = 5
# One list page takes well under a second; 60 s bounds a hang.
LIST_READ_TIMEOUT_SECONDS: Final = 60
HTTP_GONE: Final = 410


class Watcher:
    def __init__(self, api: client.CoreV1Api, cache: Cache) -> None:
        self._api = api
        self._cache = cache
        self._stopping = threading.Event()
        self._watches: dict[str, Any] = {}

    def start(self) -> None:
        listers: dict[str, Callable[..., Any]] = {"nodes": self._api.list_node,
                                                  "pods": self._api.list_pod_for_all_namespaces}
        for kind, lister in listers.items():
            threading.Thread(target=self._run, args=(kind, lister), name=f"watch-{kind}", daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        for current in list(self._watches.values()):
            current.stop()

    def _run(self, kind: str, lister: Callable[..., Any]) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                version = self._list(kind, lister)
                backoff.reset()
                while not self._stopping.is_set():
                    version = self._watch(kind, lister, version)
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

    def _list(self, kind: str, lister: Callable[..., Any]) -> str:
        items: list[Any] = []
        token: str | None = None
        metadata: dict[str, Any] = {}
        while True:
            extra = {"_continue": token} if token else {}
            response = lister(limit=LIST_PAGE_SIZE, _preload_content=False,
                              _request_timeout=(CONNECT_TIMEOUT_SECONDS, LIST_READ_TIMEOUT_SECONDS), **extra)
            page = json.loads(response.data)
            items.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                break
        self._cache.replace(kind, items)
        version = str(metadata.get("resourceVersion") or "")
        logger.info("listed %d %s; watching for changes", len(items), kind)
        return version

    def _watch(self, kind: str, lister: Callable[..., Any], version: str) -> str:
        def call(**kwargs: Any) -> Any:  # untyped: Watch then leaves the objects as dicts
            return lister(**kwargs)

        current = self._watches[kind] = Watch()
        for event in current.stream(call, resource_version=version, allow_watch_bookmarks=True,
                                    timeout_seconds=WATCH_TIMEOUT_SECONDS,
                                    _request_timeout=(CONNECT_TIMEOUT_SECONDS, WATCH_TIMEOUT_SECONDS + 30)):
            if self._stopping.is_set():
                current.stop()
                break
            if not isinstance(event, dict):
                continue
            event_type, obj = event.get("type"), event.get("raw_object")
            if not isinstance(obj, dict):
                continue
            metadata = obj.get("metadata")
            if isinstance(metadata, dict) and isinstance(metadata.get("resourceVersion"), str):
                version = metadata["resourceVersion"]
            if event_type in ("ADDED", "MODIFIED", "DELETED"):
                self._cache.apply(kind, str(event_type), obj)
        return version


def short(error: BaseException) -> str:
    if isinstance(error, ApiException):
        return f"HTTP {error.status} {error.reason}"
    return f"{type(error).__name__}: {error}"[:200]
