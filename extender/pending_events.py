"""Writes ``extender.pending``'s note as an Event on each opted-in pod that waits for a partition size.

Runs in ``aim-extender serve`` beside the webhook, as a subscriber of the process's informers
(``kube.informer``): its one node watch (shared with the node cache and the webhook's inventory)
and its one pod watch (shared with the node cache's bound pods). The subscribers only record: the
waiting pods (Pending, unbound, kube-scheduler tried and could not place them, scheduled by the
webhook's scheduler when it routes pods to one) and each node's facts (where pods may run, its
partitions). One daemon thread writes: it explains the pods that changed, every waiting pod again
when a node's facts change, and every waiting pod once per ``resweep_seconds`` (so a write that
failed is tried again); passes are at least ``MIN_PASS_SECONDS`` apart, so a burst of changes costs
one pass. Nothing is explained before the first node list: against no nodes every pod would be
"too small".

One Event per pod and reason: remembered in memory (forgotten when the pod stops waiting), and
named ``<pod>.aim-<hash of uid and reason>``, so a second replica, or this one after a restart,
gets "409 AlreadyExists" instead of writing it again. Events are best effort: a failure is logged
(once per reason) and the pod is tried again at the next resweep.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from kubernetes.client.exceptions import ApiException

from decision.eligibility import PlacementRules
from decision.requirement import Sizer
from decision.verdict import Capacity
from extender.pending import PendingNode, PendingNote, explain_pod, is_waiting, read_pending_node
from kube.informer import Informer
from kube.list_watch import WATCH_TIMEOUT_SECONDS, short_error

logger = logging.getLogger(__name__)

# What the Events name as their source (kubectl describe: "From").
EVENT_COMPONENT: Final = "aim-gpu-extender"
EVENT_TYPE: Final = "Warning"  # a pod that cannot run as the cluster is: as kube-scheduler's FailedScheduling
# Longest Event message kept: kubectl shows it whole, and events.k8s.io caps a note at 1 KiB.
MAX_MESSAGE: Final = 1024
# Pods whose Events are remembered: far above the pending pods of a real cluster; the oldest go first.
MAX_REMEMBERED: Final = 50_000
# An API call of this loop (an Event create): a loaded API server answers within seconds.
EVENT_TIMEOUT_SECONDS: Final = 10
# Least time between two passes: kube-scheduler retries an unschedulable pod every few seconds at
# the soonest (podInitialBackoffSeconds 1 s, doubling), so a second is soon enough for its Event,
# and a burst of node or pod changes (a pool joining) costs one pass, not one per change.
MIN_PASS_SECONDS: Final = 1.0


def event_name(pod_name: str, uid: str, reason: str) -> str:
    """A name for the pod's Event of this reason, the same in every replica: at most 253 characters."""
    digest = hashlib.sha256(f"{uid}/{reason}".encode()).hexdigest()[:16]
    return f"{pod_name[:200]}.aim-{digest}"


def event_body(pod: Mapping[str, Any], note: PendingNote, now: datetime.datetime) -> dict[str, Any] | None:
    """The core/v1 Event for ``pod``; None when the pod lacks a name, namespace or uid."""
    metadata = pod.get("metadata")
    if not isinstance(metadata, Mapping):
        return None
    name, namespace, uid = metadata.get("name"), metadata.get("namespace"), metadata.get("uid")
    if not all(isinstance(v, str) and v for v in (name, namespace, uid)):
        return None
    assert isinstance(name, str) and isinstance(namespace, str) and isinstance(uid, str)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": event_name(name, uid, note.reason), "namespace": namespace},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": name, "namespace": namespace, "uid": uid},
        "reason": note.reason, "message": note.message[:MAX_MESSAGE], "type": EVENT_TYPE,
        "source": {"component": EVENT_COMPONENT}, "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
        "reportingComponent": EVENT_COMPONENT, "reportingInstance": EVENT_COMPONENT,
    }


def _uid(pod: Mapping[str, Any]) -> str | None:
    metadata = pod.get("metadata")
    uid = metadata.get("uid") if isinstance(metadata, Mapping) else None
    return uid if isinstance(uid, str) and uid else None


class _Nodes:
    """The explainer as a subscriber of the node informer."""

    def __init__(self, explainer: PendingExplainer) -> None:
        self._explainer = explainer

    def replace(self, items: list[dict[str, Any]]) -> None:
        nodes = {node.facts.name: node for node in map(read_pending_node, items) if node is not None}
        self._explainer.nodes_changed(nodes, listed=True)

    def apply(self, event: str, obj: dict[str, Any]) -> None:
        node = read_pending_node(obj)
        if node is not None:
            self._explainer.node_changed(node, deleted=event == "DELETED")

    def broken(self) -> None:
        """Nothing to do: the partition sizes change only when a GPU is repartitioned."""


class _Pods:
    """The explainer as a subscriber of the pod informer."""

    def __init__(self, explainer: PendingExplainer) -> None:
        self._explainer = explainer

    def replace(self, items: list[dict[str, Any]]) -> None:
        self._explainer.pods_listed(items)

    def apply(self, event: str, obj: dict[str, Any]) -> None:
        self._explainer.pod_changed(obj, deleted=event == "DELETED")

    def broken(self) -> None:
        """Nothing to do: the pods seen last are explained until the relist."""


class PendingExplainer:
    """Explains waiting pods with Events; subscribes to ``nodes`` and ``pods`` (the process's
    informers: the pod informer must include the unbound Pending pods); ``start``/``stop`` from
    ``aim-extender serve``."""

    def __init__(self, api: Any, sizer: Sizer, *, nodes: Informer, pods: Informer, scheduler_name: str | None = None,
                 resweep_seconds: float = WATCH_TIMEOUT_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._api = api  # kubernetes.client.CoreV1Api
        self._sizer = sizer
        self._scheduler_name = scheduler_name
        self._resweep_seconds = resweep_seconds
        self._clock = clock
        self._informers = (nodes, pods)
        self.nodes, self.pods = _Nodes(self), _Pods(self)
        nodes.subscribe(self.nodes)
        pods.subscribe(self.pods)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._nodes: dict[str, PendingNode] = {}
        self._nodes_listed = False
        self._waiting: dict[str, Mapping[str, Any]] = {}  # pod uid -> the pod, while it waits
        self._dirty: set[str] = set()  # waiting pods to explain at the next pass
        self._everything = False  # every waiting pod at the next pass (a node changed)
        self._written: dict[str, set[str]] = {}  # pod uid -> reasons written, oldest pod first
        self._failed_reasons: set[str] = set()  # reasons whose write failure was logged

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pending-explainer", daemon=True)
        self._thread.start()
        for informer in self._informers:
            informer.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        for informer in self._informers:
            informer.stop()

    # --- what the informers report (their threads; records only, never blocks) ---------------------
    def nodes_changed(self, nodes: dict[str, PendingNode], *, listed: bool) -> None:
        with self._lock:
            self._nodes = nodes
            self._nodes_listed = self._nodes_listed or listed
            self._everything = True
        self._wake.set()

    def node_changed(self, node: PendingNode, *, deleted: bool) -> None:
        name = node.facts.name
        with self._lock:
            if deleted:
                if self._nodes.pop(name, None) is None:
                    return
            elif self._nodes.get(name) == node:
                return  # a status update: nothing a note reads
            else:
                self._nodes[name] = node
            self._everything = True
        self._wake.set()

    def _ours(self, pod: Mapping[str, Any]) -> bool:
        if not is_waiting(pod):
            return False
        if self._scheduler_name is None:
            return True
        spec = pod.get("spec")
        return isinstance(spec, Mapping) and spec.get("schedulerName") == self._scheduler_name

    def pods_listed(self, items: list[dict[str, Any]]) -> None:
        waiting = {uid: item for item in items if (uid := _uid(item)) is not None and self._ours(item)}
        with self._lock:
            self._waiting = dict(list(waiting.items())[-MAX_REMEMBERED:])
            self._everything = True
        self._wake.set()

    def pod_changed(self, pod: Mapping[str, Any], *, deleted: bool) -> None:
        uid = _uid(pod)
        if uid is None:
            return
        with self._lock:
            if deleted or not self._ours(pod):  # bound, gone, finished or no longer unschedulable
                self._waiting.pop(uid, None)
                self._dirty.discard(uid)
                return
            self._waiting[uid] = pod
            while len(self._waiting) > MAX_REMEMBERED:
                del self._waiting[next(iter(self._waiting))]
            self._dirty.add(uid)
        self._wake.set()

    # --- the writer --------------------------------------------------------------------------------
    def _run(self) -> None:
        next_sweep = self._clock() + self._resweep_seconds
        while not self._stopping.is_set():
            self._wake.wait(max(0.0, next_sweep - self._clock()))
            if self._stopping.is_set():
                break
            self._wake.clear()
            if self._clock() >= next_sweep:
                next_sweep = self._clock() + self._resweep_seconds
                with self._lock:
                    self._everything = True
            try:
                self.explain_waiting()
            except Exception:  # the writer outlives any one bad pass
                logger.exception("explaining the pending pods failed; will retry at the next change or in %.0f s",
                                 self._resweep_seconds)
            self._stopping.wait(MIN_PASS_SECONDS)

    def explain_waiting(self) -> int:
        """One pass: the waiting pods that changed (all of them after a node change or at a resweep)
        explained against the nodes; returns how many were looked at."""
        with self._lock:
            if not self._nodes_listed:
                return 0
            nodes = list(self._nodes.values())
            chosen = self._waiting if self._everything else {u: self._waiting[u] for u in self._dirty
                                                             if u in self._waiting}
            pods = list(chosen.items())
            waiting = set(self._waiting)
            self._dirty.clear()
            self._everything = False
        self._written = {uid: reasons for uid, reasons in self._written.items() if uid in waiting}
        alike: dict[PlacementRules, tuple[list[Capacity], str]] = {}  # pods of one workload: one look
        for uid, pod in pods:
            self._explain(uid, pod, nodes, alike)
        return len(pods)

    def consider(self, pod: Mapping[str, Any]) -> None:
        """Explain one pod now against the nodes seen (once per pod and reason)."""
        uid = _uid(pod)
        if uid is not None and self._ours(pod):
            with self._lock:
                nodes = list(self._nodes.values())
            self._explain(uid, pod, nodes, {})

    def _explain(self, uid: str, pod: Mapping[str, Any], nodes: list[PendingNode],
                 alike: dict[PlacementRules, tuple[list[Capacity], str]]) -> None:
        note = explain_pod(pod, self._sizer, nodes, alike)
        if note is not None:
            self._write(uid, pod, note)

    def _write(self, uid: str, pod: Mapping[str, Any], note: PendingNote) -> None:
        if note.reason in self._written.get(uid, ()):
            return
        body = event_body(pod, note, datetime.datetime.now(datetime.UTC))
        if body is None:
            return
        try:
            self._api.create_namespaced_event(body["metadata"]["namespace"], body,
                                              _request_timeout=EVENT_TIMEOUT_SECONDS)
        except ApiException as error:
            if error.status != 409:  # 409: another replica (or this one before a restart) wrote it
                self._failed(note, body, short_error(error))
                return
        except Exception as error:  # noqa: BLE001 - an Event is best effort; the next resweep retries
            self._failed(note, body, short_error(error))
            return
        self._remember(uid, note.reason)

    def _failed(self, note: PendingNote, body: Mapping[str, Any], why: str) -> None:
        if note.reason not in self._failed_reasons:
            self._failed_reasons.add(note.reason)
            logger.warning("could not write Event %s on pod %s/%s: %s; will retry in at most %.0f s",
                           note.reason, body["metadata"]["namespace"], body["involvedObject"]["name"], why,
                           self._resweep_seconds)

    def _remember(self, uid: str, reason: str) -> None:
        self._written.setdefault(uid, set()).add(reason)
        while len(self._written) > MAX_REMEMBERED:
            del self._written[next(iter(self._written))]
