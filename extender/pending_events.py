"""Writes ``extender.pending``'s note as an Event on each opted-in pod that waits for a partition size.

Runs in ``aim-extender serve`` beside the webhook, whose node watch it reads (the partition sizes
the nodes advertise). One daemon thread: list the unscheduled Pending pods (field selector, and
the scheduler's name when the webhook routes pods to one), then watch them (``kube.list_watch``);
"410 Gone" relists at once, any other failure backs off (``Backoff``) and relists. A relist (at the
latest when the watch's server timeout ends it) looks at every waiting pod again, so a pod
kube-scheduler no longer updates is still explained once the nodes are known.

One Event per pod and reason: remembered in memory (forgotten when the pod leaves the selection),
and named ``<pod>.aim-<hash of uid and reason>``, so a second replica, or this one after a restart,
gets "409 AlreadyExists" instead of writing it again. Events are best effort: a failure is logged
(once per reason) and the pod is tried again at the next relist.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from kubernetes.client.exceptions import ApiException

from decision.requirement import Sizer
from extender.pending import PartitionOffer, PendingNote, explain_pod
from kube.backoff import Backoff
from kube.list_watch import HTTP_GONE, WATCH_TIMEOUT_SECONDS, WatchCall, list_objects, short_error

logger = logging.getLogger(__name__)

# Pods kube-scheduler has not placed yet (the API server filters).
UNSCHEDULED_PENDING: Final = "spec.nodeName=,status.phase=Pending"
# What the Events name as their source (kubectl describe: "From").
EVENT_COMPONENT: Final = "aim-gpu-extender"
EVENT_TYPE: Final = "Warning"  # a pod that cannot run as the cluster is: as kube-scheduler's FailedScheduling
# Longest Event message kept: kubectl shows it whole, and events.k8s.io caps a note at 1 KiB.
MAX_MESSAGE: Final = 1024
# Pods whose Events are remembered: far above the pending pods of a real cluster; the oldest go first.
MAX_REMEMBERED: Final = 50_000
# An API call of this loop (an Event create): a loaded API server answers within seconds.
EVENT_TIMEOUT_SECONDS: Final = 10


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


class PendingExplainer:
    """Explains waiting pods with Events; ``start``/``stop`` from ``aim-extender serve``."""

    def __init__(self, api: Any, sizer: Sizer, offers: Callable[[], Sequence[PartitionOffer]], *,
                 scheduler_name: str | None = None, nodes_synced: threading.Event | None = None,
                 watch_timeout_seconds: int = WATCH_TIMEOUT_SECONDS) -> None:
        self._api = api  # kubernetes.client.CoreV1Api
        self._sizer = sizer
        self._offers = offers
        self._selector = UNSCHEDULED_PENDING + (f",spec.schedulerName={scheduler_name}" if scheduler_name else "")
        self._nodes_synced = nodes_synced
        self._watch_timeout = watch_timeout_seconds
        self._stopping = threading.Event()
        self._current: WatchCall | None = None
        self._thread: threading.Thread | None = None
        self._written: dict[str, set[str]] = {}  # pod uid -> reasons written, oldest pod first
        self._failed_reasons: set[str] = set()  # reasons whose write failure was logged

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pending-explainer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._current is not None:
            self._current.stop()

    # --- one pod ---------------------------------------------------------------------------------
    def consider(self, pod: Mapping[str, Any]) -> None:
        uid = _uid(pod)
        if uid is None:
            return
        note = explain_pod(pod, self._sizer, self._offers())
        if note is None or note.reason in self._written.get(uid, ()):
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
        except Exception as error:  # noqa: BLE001 - an Event is best effort; the next relist retries
            self._failed(note, body, short_error(error))
            return
        self._remember(uid, note.reason)

    def _failed(self, note: PendingNote, body: Mapping[str, Any], why: str) -> None:
        if note.reason not in self._failed_reasons:
            self._failed_reasons.add(note.reason)
            logger.warning("could not write Event %s on pod %s/%s: %s; will retry at the next relist (at most %d s)",
                           note.reason, body["metadata"]["namespace"], body["involvedObject"]["name"], why,
                           self._watch_timeout)

    def _remember(self, uid: str, reason: str) -> None:
        self._written.setdefault(uid, set()).add(reason)
        while len(self._written) > MAX_REMEMBERED:
            del self._written[next(iter(self._written))]

    # --- list and watch ---------------------------------------------------------------------------
    def _run(self) -> None:
        if self._nodes_synced is not None:
            while not self._nodes_synced.wait(1.0):  # explained against no nodes, every pod would be "too small"
                if self._stopping.is_set():
                    return
        backoff = Backoff()
        while not self._stopping.is_set():
            try:
                version = self._list()
                backoff.reset()
                while not self._stopping.is_set():
                    version = self._watch(version)
                    version = self._list()  # every pod again once per watch timeout (see the module doc)
            except Exception as error:  # noqa: BLE001 - the loop must survive anything the API does
                if self._stopping.is_set():
                    break
                if isinstance(error, ApiException) and error.status == HTTP_GONE:
                    continue
                wait = backoff.next()
                logger.warning("pending pod list/watch failed: %s; will retry in %.1f s", short_error(error), wait)
                self._stopping.wait(wait)

    def _list(self) -> str:
        items, version = list_objects(self._api.list_pod_for_all_namespaces, field_selector=self._selector)
        waiting = {uid for item in items if (uid := _uid(item)) is not None}
        self._written = {uid: reasons for uid, reasons in self._written.items() if uid in waiting}
        for item in items:
            self.consider(item)
        return version

    def _watch(self, version: str) -> str:
        current = self._current = WatchCall(self._api.list_pod_for_all_namespaces, version, stopping=self._stopping,
                                            timeout_seconds=self._watch_timeout, field_selector=self._selector)
        for kind, pod in current:
            if kind == "DELETED":  # bound, gone or finished: it left the selection
                self._written.pop(_uid(pod) or "", None)
            else:
                self.consider(pod)
        return current.resource_version
