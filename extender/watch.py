"""Keep a ``ClusterCache`` in step with the API server's nodes and bound pods.

Each kind through a ``kube.informer.Informer`` (paged list, then watch from the list's
resourceVersion, objects kept as JSON dicts; "410 Gone" relists at once; any other failure marks
the cache broken, backs off 0.5 s doubling to 3 s with jitter, and relists). The nodes informer
and pods informers may be shared: ``aim-extender serve`` hands the same node informer to the
webhook's inventory and the pending explainer, and the same pod informer to the explainer (then
it watches every unfinished pod, not only the bound ones), so the process keeps one watch of each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

from kubernetes import client

from decision.node_offer import NodeOffer, read_node_offer
from decision.pod_demand import BoundPodUsage, bound_pod_usage, pod_id
from extender.cache import ClusterCache
from kube.backoff import Backoff
from kube.client import load_api_client
from kube.informer import Informer
from kube.list_watch import WATCH_TIMEOUT_SECONDS

# Pods that can hold devices: bound and not finished. The API server filters; DELETED events
# arrive when a pod leaves the selection (e.g. it finishes).
BOUND_RUNNING_PODS: Final = "spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed"
# The same with the pods not bound yet, for a pod watch shared with the pending explainer.
UNFINISHED_PODS: Final = "status.phase!=Succeeded,status.phase!=Failed"
T = TypeVar("T")


class _Feed(Generic[T]):
    """One resource of the cache as a subscriber of its informer. ``read`` gives an object's key and
    value (None: nothing to keep, e.g. a pod that holds no partitions) or None when it has no key;
    ``replace``, ``put`` and ``remove`` are the cache's writers of that resource."""

    def __init__(self, cache: ClusterCache, resource: str, read: Callable[[object], tuple[str, T | None] | None],
                 replace: Callable[[dict[str, T]], None], put: Callable[[str, T | None], None],
                 remove: Callable[[str], None]) -> None:
        self._cache, self._resource, self._read = cache, resource, read
        self._replace, self._put, self._remove = replace, put, remove

    def replace(self, items: list[dict[str, Any]]) -> None:
        self._replace({key: value for key, value in filter(None, map(self._read, items)) if value is not None})
        self._cache.mark_live(self._resource)

    def apply(self, event: str, obj: dict[str, Any]) -> None:
        found = self._read(obj)
        if found is None:
            return
        if event == "DELETED":
            self._remove(found[0])
        else:
            self._put(*found)

    def broken(self) -> None:
        self._cache.mark_broken(self._resource)


def _node(obj: object) -> tuple[str, NodeOffer] | None:
    offer = read_node_offer(obj)
    return None if offer is None else (offer.name, offer)


def _pod(obj: object) -> tuple[str, BoundPodUsage | None] | None:
    pod = pod_id(obj)
    return None if pod is None else (pod, bound_pod_usage(obj))


def node_feed(cache: ClusterCache) -> _Feed[NodeOffer]:
    """The node cache as a subscriber of the nodes informer."""

    def put(_: str, offer: NodeOffer | None) -> None:
        if offer is not None:
            cache.put_node(offer)

    return _Feed(cache, "nodes", _node, lambda offers: cache.replace_nodes(offers.values()), put, cache.remove_node)


def pod_feed(cache: ClusterCache) -> _Feed[BoundPodUsage]:
    """The bound pods' usage as a subscriber of the pods informer (unbound pods hold nothing)."""
    return _Feed(cache, "pods", _pod, cache.replace_pods, cache.put_pod, cache.remove_pod)


def node_informer(api: client.CoreV1Api, *, watch_timeout_seconds: int = WATCH_TIMEOUT_SECONDS,
                  backoff: Callable[[], Backoff] = Backoff) -> Informer:
    """The process's one list/watch of the Nodes (the node cache, the webhook and the pending
    explainer subscribe to it)."""
    return Informer("nodes", api.list_node, watch_timeout_seconds=watch_timeout_seconds, backoff=backoff)


def pod_informer(api: client.CoreV1Api, *, pending: bool = False, watch_timeout_seconds: int = WATCH_TIMEOUT_SECONDS,
                 backoff: Callable[[], Backoff] = Backoff) -> Informer:
    """The process's one list/watch of the Pods: the bound ones (the node cache), and with ``pending``
    the unbound ones too (the pending explainer shares it)."""
    return Informer("pods", api.list_pod_for_all_namespaces, field_selector=UNFINISHED_PODS if pending
                    else BOUND_RUNNING_PODS, watch_timeout_seconds=watch_timeout_seconds, backoff=backoff)


class ClusterWatcher:
    """Keeps ``cache`` in step with the API server's nodes and bound pods; ``nodes`` and ``pods``:
    informers shared with other subscribers (default: ones of its own)."""

    def __init__(
        self,
        api: client.CoreV1Api,
        cache: ClusterCache,
        *,
        nodes: Informer | None = None,
        pods: Informer | None = None,
        watch_timeout_seconds: int = WATCH_TIMEOUT_SECONDS,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self._nodes = nodes or node_informer(api, watch_timeout_seconds=watch_timeout_seconds, backoff=backoff)
        self._pods = pods or pod_informer(api, watch_timeout_seconds=watch_timeout_seconds, backoff=backoff)
        self._nodes.subscribe(node_feed(cache))
        self._pods.subscribe(pod_feed(cache))

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
