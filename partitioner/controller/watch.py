"""List, then watch nodes and pods into the ``Cache``: one ``kube.informer.Informer`` per kind (paged
list, then watch from the list's resourceVersion; "410 Gone" relists at once; any other failure
marks the cache not live, so the loop changes nothing, backs off with ``kube.backoff`` and relists).
The controller process keeps one watch of the Nodes and one of the Pods.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from kube.informer import Informer
from kube.list_watch import short_error
from partitioner.controller.cache import Cache


def short(error: BaseException) -> str:
    """A failure in a few words for a log line."""
    return short_error(error)


class _Feed:
    """One kind of the cache as a subscriber of its informer."""

    def __init__(self, cache: Cache, kind: str) -> None:
        self._cache, self._kind = cache, kind

    def replace(self, items: list[dict[str, Any]]) -> None:
        self._cache.replace(self._kind, items)

    def apply(self, event: str, obj: dict[str, Any]) -> None:
        self._cache.apply(self._kind, event, obj)

    def broken(self) -> None:
        self._cache.mark_broken(self._kind)


class Watcher:
    def __init__(self, api: client.CoreV1Api, cache: Cache) -> None:
        self._informers = (Informer("nodes", api.list_node), Informer("pods", api.list_pod_for_all_namespaces))
        for informer in self._informers:
            informer.subscribe(_Feed(cache, informer.kind))

    def start(self) -> None:
        for informer in self._informers:
            informer.start()

    def stop(self) -> None:
        """End both loops; their open watch connections are shut down."""
        for informer in self._informers:
            informer.stop()
