"""Keep a ``ClusterCache`` in step with the API server's nodes and bound pods.

Each kind through a ``kube.informer.Informer`` (paged list, then watch from the list's
resourceVersion, objects kept as JSON dicts; "410 Gone" relists at once; any other failure marks
the cache broken, backs off 0.5 s doubling to 3 s with jitter, and relists). The nodes informer
may be shared: ``aim-extender serve`` hands the same one to the webhook's inventory, so the
process keeps one watch of the Nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from kubernetes import client

from decision.node_offer import read_node_offer
from decision.pod_demand import BoundPodUsage, bound_pod_usage, pod_id
from extender.cache import ClusterCache
from kube.backoff import Backoff
from kube.client import load_api_client
from kube.informer import Informer
from kube.list_watch import WATCH_TIMEOUT_SECONDS

# Pods that can hold devices: bound and not finished. The API server filters; DELETED events
# arrive when a pod leaves the selection (e.g. it finishes).
BOUND_RUNNING_PODS: Final = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"


class _Nodes:
    """The node cache as a subscriber of the nodes informer."""

    def __init__(self, cache: ClusterCache) -> None:
        self._cache = cache

    def replace(self, items: list[dict[str, Any]]) -> None:
        self._cache.replace_nodes(offer for offer in map(read_node_offer, items) if offer is not None)
        self._cache.mark_live("nodes")

    def apply(self, event: str, obj: dict[str, Any]) -> None:
        offer = read_node_offer(obj)
        if offer is None:
            return
        if event == "DELETED":
            self._cache.remove_node(offer.name)
        else:
            self._cache.put_node(offer)

    def broken(self) -> None:
        self._cache.mark_broken("nodes")


class _Pods:
    """The pod cache as a subscriber of the bound-pods informer."""

    def __init__(self, cache: ClusterCache) -> None:
        self._cache = cache

    def replace(self, items: list[dict[str, Any]]) -> None:
        usages: dict[str, BoundPodUsage] = {}
        for item in items:
            pod, usage = pod_id(item), bound_pod_usage(item)
            if pod is not None and usage is not None:
                usages[pod] = usage
        self._cache.replace_pods(usages)
        self._cache.mark_live("pods")

    def apply(self, event: str, obj: dict[str, Any]) -> None:
        pod = pod_id(obj)
        if pod is None:
            return
        if event == "DELETED":
            self._cache.remove_pod(pod)
        else:
            self._cache.put_pod(pod, bound_pod_usage(obj))

    def broken(self) -> None:
        self._cache.mark_broken("pods")


def node_informer(api: client.CoreV1Api, *, watch_timeout_seconds: int = WATCH_TIMEOUT_SECONDS,
                  backoff: Callable[[], Backoff] = Backoff) -> Informer:
    """The process's one list/watch of the Nodes (the node cache and the webhook subscribe to it)."""
    return Informer("nodes", api.list_node, watch_timeout_seconds=watch_timeout_seconds, backoff=backoff)


class ClusterWatcher:
    """Keeps ``cache`` in step with the API server's nodes and bound pods; ``nodes``: a node informer
    shared with other subscribers (default: one of its own)."""

    def __init__(
        self,
        api: client.CoreV1Api,
        cache: ClusterCache,
        *,
        nodes: Informer | None = None,
        watch_timeout_seconds: int = WATCH_TIMEOUT_SECONDS,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self._nodes = nodes or node_informer(api, watch_timeout_seconds=watch_timeout_seconds, backoff=backoff)
        self._pods = Informer("pods", api.list_pod_for_all_namespaces, field_selector=BOUND_RUNNING_PODS,
                              watch_timeout_seconds=watch_timeout_seconds, backoff=backoff)
        self._nodes.subscribe(_Nodes(cache))
        self._pods.subscribe(_Pods(cache))

    def start(self) -> None:
        self._nodes.start()
        self._pods.start()

    def stop(self) -> None:
        """End the loops (the shared node watch once its last user stops): open watch connections are
        shut down, so the threads end promptly."""
        self._nodes.stop()
        self._pods.stop()


def core_api(kubeconfig: str | None) -> client.CoreV1Api:
    """CoreV1Api from a kubeconfig file, else in-cluster config, else the default kubeconfig (``kube.client``)."""
    return client.CoreV1Api(load_api_client(kubeconfig))
