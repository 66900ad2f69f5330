"""List and watch nodes and pods from the API server into a ``ClusterCache``.

One daemon thread per resource runs the reflector loop client-go made standard: list (paged),
replace the cache, watch from the list's resourceVersion, apply events; on "410 Gone" relist; on
any other failure log, back off and relist. Objects are kept as JSON: only names, labels,
allocatable and pod resources are read, and the kubernetes client's model deserialisation would
cost far more than that.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

from extender.cache import ClusterCache, PodUsage, pod_key, pod_usage
from extender.nodefacts import facts_from_node_object

logger = logging.getLogger(__name__)

# Page size of the initial list: client-go's pager default (k8s.io/client-go/tools/pager, 500).
LIST_PAGE_SIZE = 500
# Server-side watch timeout; client-go reflectors pick 5-10 min at random (minWatchTimeout 5 min)
# so that watches are re-established regularly and a silent dead connection is noticed.
WATCH_TIMEOUT_SECONDS = 300
# Client read timeout: the watch timeout plus slack for the server to close the stream.
READ_SLACK_SECONDS = 30
# TCP (+TLS) connect to the API server: milliseconds in a cluster; 10 s tolerates a loaded control
# plane yet notices an unreachable one quickly (then back off and retry, below).
CONNECT_TIMEOUT_SECONDS = 10
# Read timeout of one list page: a 500-object page is well under a second; 60 s is generous.
LIST_READ_TIMEOUT_SECONDS = 60
# Backoff after a failed list/watch: 1 s doubling to 30 s, like client-go's reflector backoff
# (initial 800 ms, cap 30 s; k8s.io/client-go/tools/cache/reflector.go).
BACKOFF_INITIAL_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
# The API server's answer to a watch or list from a resourceVersion it no longer has: relist.
HTTP_GONE = 410
# Pods that can hold devices: bound and not finished. The API server filters; DELETED events
# arrive when a pod leaves the selection (e.g. it finishes).
BOUND_RUNNING_PODS = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"


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
        backoff_max_seconds: float = BACKOFF_MAX_SECONDS,
    ) -> None:
        self._api = api
        self._cache = cache
        self._watch_timeout = watch_timeout_seconds
        self._backoff_max = backoff_max_seconds
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        for resource in (self._nodes(), self._pods()):
            thread = threading.Thread(target=self._run, args=(resource,), name=f"watch-{resource.kind}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Ask the loops to end; they finish at the next event or watch timeout (daemon threads)."""
        self._stopping.set()

    # --- resources ---------------------------------------------------------------------------
    def _nodes(self) -> _Resource:
        cache = self._cache

        def replace(items: list[dict[str, Any]]) -> None:
            cache.replace_nodes(f for f in (facts_from_node_object(item) for item in items) if f is not None)

        def apply(kind: str, obj: dict[str, Any]) -> None:
            facts = facts_from_node_object(obj)
            if facts is None:
                return
            if kind == "DELETED":
                cache.remove_node(facts.name)
            else:
                cache.put_node(facts)

        return _Resource("nodes", self._api.list_node, None, replace, apply)

    def _pods(self) -> _Resource:
        cache = self._cache

        def replace(items: list[dict[str, Any]]) -> None:
            usages: dict[str, PodUsage] = {}
            for item in items:
                key, usage = pod_key(item), pod_usage(item)
                if key is not None and usage is not None:
                    usages[key] = usage
            cache.replace_pods(usages)

        def apply(kind: str, obj: dict[str, Any]) -> None:
            key = pod_key(obj)
            if key is None:
                return
            if kind == "DELETED":
                cache.remove_pod(key)
            else:
                cache.put_pod(key, pod_usage(obj))

        return _Resource("pods", self._api.list_pod_for_all_namespaces, BOUND_RUNNING_PODS, replace, apply)

    # --- reflector loop ----------------------------------------------------------------------
    def _run(self, resource: _Resource) -> None:
        backoff = BACKOFF_INITIAL_SECONDS
        while not self._stopping.is_set():
            try:
                version = self._list(resource)
                backoff = BACKOFF_INITIAL_SECONDS
                while not self._stopping.is_set():
                    version = self._watch(resource, version)
            except Exception as error:  # noqa: BLE001 - the loop must survive anything the API does
                if self._stopping.is_set():
                    break
                if isinstance(error, ApiException) and error.status == HTTP_GONE:
                    # The resourceVersion is too old, as an HTTP status or a watch ERROR event.
                    logger.info("%s watch expired (HTTP 410 Gone); relisting now", resource.kind)
                    continue
                logger.warning("%s list/watch failed: %s; serving the cached %s, will retry in %.0f s",
                               resource.kind, _short(error), resource.kind, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max)

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
        response = resource.lister(
            watch=True, resource_version=version, allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout, _preload_content=False,
            _request_timeout=(CONNECT_TIMEOUT_SECONDS, self._watch_timeout + READ_SLACK_SECONDS),
            **self._selector(resource),
        )
        try:
            for event in _events(response):
                if self._stopping.is_set():
                    break
                kind, obj = event.get("type"), event.get("object")
                if not isinstance(obj, dict):
                    continue
                if kind == "ERROR":  # a metav1.Status; 410 Gone is handled (relist) in _run
                    raise ApiException(status=obj.get("code"), reason=str(obj.get("message")))
                metadata = obj.get("metadata") or {}
                version = str(metadata.get("resourceVersion") or version)
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    resource.apply(kind, obj)
        finally:
            response.close()
            response.release_conn()
        return version


def _events(response: Any) -> Iterator[dict[str, Any]]:
    for line in iter_resp_lines(response):
        if not line or line.isspace():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            logger.warning("ignoring a watch line that is not JSON: %.80s", line)
            continue
        if isinstance(event, dict):
            yield event


def _short(error: BaseException) -> str:
    if isinstance(error, ApiException):
        return f"HTTP {error.status} {error.reason}"
    return f"{type(error).__name__}: {error}"[:200]


def core_api(kubeconfig: str | None) -> client.CoreV1Api:
    """CoreV1Api from a kubeconfig file, else in-cluster config, else the default kubeconfig."""
    from kubernetes import config as kube_config

    if kubeconfig:
        api_client = kube_config.new_client_from_config(config_file=kubeconfig)
        return client.CoreV1Api(api_client)
    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException:
        kube_config.load_kube_config()
    return client.CoreV1Api()
