"""List and watch nodes and pods from the API server into a ``ClusterCache``.

One daemon thread per resource: list (paged), replace the cache, then follow changes from the
list's resourceVersion (both with ``kube.list_watch``, objects kept as JSON dicts); on
"410 Gone" relist at once; on any other failure mark the cache broken, back off (0.5 s doubling
to 3 s, with jitter) and relist.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from decision.node_offer import read_node_offer
from decision.pod_demand import BoundPodUsage, bound_pod_usage, pod_id
from extender.cache import ClusterCache
from kube.backoff import Backoff
from kube.client import load_api_client
from kube.list_watch import HTTP_GONE, WATCH_TIMEOUT_SECONDS, WatchCall, list_objects, short_error

logger = logging.getLogger(__name__)

# Pods that can hold devices: bound and not finished. The API server filters; DELETED events
# arrive when a pod leaves the selection (e.g. it finishes).
BOUND_RUNNING_PODS: Final = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"


@dataclass(frozen=True)
class _Resource:
    """How to list, watch and store one kind."""

    kind: str
    lister: Callable[..., Any]
    field_selector: str | None
    replace: Callable[[list[dict[str, Any]]], None]
    apply: Callable[[str, dict[str, Any]], None]


class ClusterWatcher:
    """Keeps ``cache`` in step with the API server's nodes and bound pods."""

    def __init__(
        self,
        api: client.CoreV1Api,
        cache: ClusterCache,
        *,
        watch_timeout_seconds: int = WATCH_TIMEOUT_SECONDS,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self._api = api
        self._cache = cache
        self._watch_timeout = watch_timeout_seconds
        self._new_backoff = backoff
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watches: dict[str, WatchCall] = {}  # resource -> its current watch request

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        for resource in (self._nodes(), self._pods()):
            thread = threading.Thread(target=self._run, args=(resource,), name=f"watch-{resource.kind}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """End the loops: open watch connections are shut down, so the threads end promptly."""
        self._stopping.set()
        for current in list(self._watches.values()):
            current.stop()

    # --- resources ---------------------------------------------------------------------------
    def _nodes(self) -> _Resource:
        cache = self._cache

        def replace(items: list[dict[str, Any]]) -> None:
            cache.replace_nodes(offer for offer in map(read_node_offer, items) if offer is not None)

        def apply(kind: str, obj: dict[str, Any]) -> None:
            offer = read_node_offer(obj)
            if offer is None:
                return
            if kind == "DELETED":
                cache.remove_node(offer.name)
            else:
                cache.put_node(offer)

        return _Resource("nodes", self._api.list_node, None, replace, apply)

    def _pods(self) -> _Resource:
        cache = self._cache

        def replace(items: list[dict[str, Any]]) -> None:
            usages: dict[str, BoundPodUsage] = {}
            for item in items:
                pod, usage = pod_id(item), bound_pod_usage(item)
                if pod is not None and usage is not None:
                    usages[pod] = usage
            cache.replace_pods(usages)

        def apply(kind: str, obj: dict[str, Any]) -> None:
            pod = pod_id(obj)
            if pod is None:
                return
            if kind == "DELETED":
                cache.remove_pod(pod)
            else:
                cache.put_pod(pod, bound_pod_usage(obj))

        return _Resource("pods", self._api.list_pod_for_all_namespaces, BOUND_RUNNING_PODS, replace, apply)

    # --- list, then watch ----------------------------------------------------------------------
    def _run(self, resource: _Resource) -> None:
        backoff = self._new_backoff()
        while not self._stopping.is_set():
            try:
                version = self._list(resource)
                self._cache.mark_live(resource.kind)
                backoff.reset()
                while not self._stopping.is_set():
                    version = self._watch(resource, version)
            except Exception as error:  # noqa: BLE001 - the loop must survive anything the API does
                if self._stopping.is_set():
                    break
                if isinstance(error, ApiException) and error.status == HTTP_GONE:
                    # The resourceVersion is too old, as an HTTP status or a watch ERROR event.
                    logger.info("%s watch expired (HTTP 410 Gone); relisting now", resource.kind)
                    continue
                self._cache.mark_broken(resource.kind)
                wait = backoff.next()
                logger.warning("%s list/watch failed: %s; serving the cached %s, will retry in %.1f s",
                               resource.kind, short_error(error), resource.kind, wait)
                self._stopping.wait(wait)

    def _list(self, resource: _Resource) -> str:
        items, version = list_objects(resource.lister, field_selector=resource.field_selector)
        resource.replace(items)
        logger.info("listed %d %s (resourceVersion %s); watching for changes", len(items), resource.kind, version)
        return version

    def _watch(self, resource: _Resource, version: str) -> str:
        """One watch call until the server's timeout; returns the last resourceVersion seen."""
        current = self._watches[resource.kind] = WatchCall(
            resource.lister, version, stopping=self._stopping, timeout_seconds=self._watch_timeout,
            field_selector=resource.field_selector,
        )
        for kind, obj in current:
            resource.apply(kind, obj)
        return current.resource_version


def core_api(kubeconfig: str | None) -> client.CoreV1Api:
    """CoreV1Api from a kubeconfig file, else in-cluster config, else the default kubeconfig (``kube.client``)."""
    return client.CoreV1Api(load_api_client(kubeconfig))
