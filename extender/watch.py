"""List and watch nodes and pods from the API server into a ``ClusterCache``.

One daemon thread per resource: list (paged), replace the cache, then follow changes with the
kubernetes client's ``watch.Watch`` from the list's resourceVersion; on "410 Gone" relist at once;
on any other failure mark the cache broken, back off (0.5 s doubling to 3 s, with jitter) and
relist. Objects are kept as JSON dicts: ``Watch.stream`` is given a plain function without a
documented return type, so it hands over each event's object without the client's model
deserialisation (which would cost far more than the few fields read here).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from kubernetes import client, config as kube_config_module, watch as kube_watch_module
from kubernetes.client.exceptions import ApiException

from extender.backoff import Backoff
from extender.cache import ClusterCache
from extender.node_offer import read_node_offer
from extender.pod_demand import BoundPodUsage, bound_pod_usage, pod_id

logger = logging.getLogger(__name__)

# The kubernetes client has no type hints: its entry points are used as ``Any``.
Watch: Any = kube_watch_module.Watch
kube_config: Any = kube_config_module

# Page size of the initial list: client-go's pager default (k8s.io/client-go/tools/pager, 500).
LIST_PAGE_SIZE: Final = 500
# Server-side watch timeout; client-go reflectors pick 5-10 min at random (minWatchTimeout 5 min)
# so that watches are re-established regularly and a silent dead connection is noticed.
WATCH_TIMEOUT_SECONDS: Final = 300
# Client read timeout: the watch timeout plus slack for the server to close the stream.
READ_SLACK_SECONDS: Final = 30
# TCP (+TLS) connect to the API server: milliseconds in a cluster; 5 s tolerates a loaded control
# plane yet notices an unreachable one quickly (then back off and retry, below).
CONNECT_TIMEOUT_SECONDS: Final = 5
# Read timeout of one list page: a 500-object page is well under a second; 60 s is generous.
LIST_READ_TIMEOUT_SECONDS: Final = 60
# The API server's answer to a watch or list from a resourceVersion it no longer has: relist.
HTTP_GONE: Final = 410
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
        self._watches: dict[str, Any] = {}  # resource -> its current kubernetes.watch.Watch

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
                               resource.kind, _short(error), resource.kind, wait)
                self._stopping.wait(wait)

    def _selector(self, resource: _Resource) -> dict[str, Any]:
        return {"field_selector": resource.field_selector} if resource.field_selector else {}

    def _list(self, resource: _Resource) -> str:
        items: list[dict[str, Any]] = []
        token: str | None = None
        metadata: dict[str, Any] = {}
        while True:
            extra = {"_continue": token} if token else {}
            response = resource.lister(
                limit=LIST_PAGE_SIZE, _preload_content=False,
                _request_timeout=(CONNECT_TIMEOUT_SECONDS, LIST_READ_TIMEOUT_SECONDS),
                **self._selector(resource), **extra,
            )
            page = json.loads(response.data)
            items.extend(item for item in page.get("items") or [] if isinstance(item, dict))
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                break
        resource.replace(items)
        version = str(metadata.get("resourceVersion") or "")
        logger.info("listed %d %s (resourceVersion %s); watching for changes", len(items), resource.kind, version)
        return version

    def _watch(self, resource: _Resource, version: str) -> str:
        """One watch call until the server's timeout; returns the last resourceVersion seen."""
        lister = resource.lister

        def call(**kwargs: Any) -> Any:  # no return type documented: Watch leaves objects as dicts
            return lister(**kwargs)

        current = self._watches[resource.kind] = Watch()
        events = current.stream(
            call, resource_version=version, allow_watch_bookmarks=True, timeout_seconds=self._watch_timeout,
            _request_timeout=(CONNECT_TIMEOUT_SECONDS, self._watch_timeout + READ_SLACK_SECONDS),
            **self._selector(resource),
        )
        for event in events:
            if self._stopping.is_set():
                current.stop()
                break
            if not isinstance(event, dict):
                continue
            kind, obj = event.get("type"), event.get("raw_object")
            if not isinstance(obj, dict):
                continue
            metadata = obj.get("metadata")
            if isinstance(metadata, dict) and isinstance(metadata.get("resourceVersion"), str):
                version = metadata["resourceVersion"]
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                resource.apply(kind, obj)
        return version


def _short(error: BaseException) -> str:
    if isinstance(error, ApiException):
        return f"HTTP {error.status} {error.reason}"
    return f"{type(error).__name__}: {error}"[:200]


def core_api(kubeconfig: str | None) -> client.CoreV1Api:
    """CoreV1Api from a kubeconfig file, else in-cluster config, else the default kubeconfig."""
    if kubeconfig:
        api_client = kube_config.new_client_from_config(config_file=kubeconfig)
        return client.CoreV1Api(api_client)
    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()
    return client.CoreV1Api()
