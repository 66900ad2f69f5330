"""One list-then-watch loop of one kind of object, shared by every part of a process that needs it.

``Informer`` lists (paged), hands the objects to each subscriber, then follows changes from the
list's resourceVersion (``kube.list_watch``), handing each ADDED/MODIFIED/DELETED event to each
subscriber in turn. On "410 Gone" it relists at once; on any other failure it tells each subscriber
(``broken``), backs off (``kube.backoff``) and relists. So ``aim-extender serve`` keeps ONE watch of
the Nodes for its node cache and the webhook's partition inventory instead of one each (issue 19).

The loop runs in one daemon thread from the first ``start()`` to the matching last ``stop()``: each
user starts and stops it from its own lifecycle, and the connection closes when the last one stops.
Subscribers are added before the first start (a late one would miss the list); they are called from
the loop's thread, one after another, and must not block. Objects are JSON dicts, shared by all
subscribers: they only read them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from kube.backoff import Backoff
from kube.list_watch import HTTP_GONE, WATCH_TIMEOUT_SECONDS, Lister, WatchCall, list_objects, short_error

logger = logging.getLogger(__name__)


class Subscriber(Protocol):
    """What an Informer feeds."""

    def replace(self, items: list[dict[str, Any]]) -> None:
        """After each (re)list: exactly these objects exist."""

    def apply(self, event: str, obj: dict[str, Any]) -> None:
        """One change: ``event`` is ADDED, MODIFIED or DELETED."""

    def broken(self) -> None:
        """The list or watch failed; a relist follows after the backoff."""


class Informer:
    """Lists and watches ``kind`` through ``lister`` (a ``CoreV1Api`` list method) for its subscribers."""

    def __init__(self, kind: str, lister: Lister, *, field_selector: str | None = None,
                 watch_timeout_seconds: int = WATCH_TIMEOUT_SECONDS, backoff: Callable[[], Backoff] = Backoff) -> None:
        self.kind = kind
        self._lister = lister
        self._field_selector = field_selector
        self._watch_timeout = watch_timeout_seconds
        self._new_backoff = backoff
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()
        self._users = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: WatchCall | None = None
        self.synced = threading.Event()  # set after the first list has reached every subscriber

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            if self._thread is not None:
                raise RuntimeError(f"{self.kind} informer already started: subscribe before start()")
            self._subscribers.append(subscriber)

    def start(self) -> None:
        """Start the loop (the first call); later calls only count one more user."""
        with self._lock:
            self._users += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"watch-{self.kind}", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """One user less; the last one ends the loop and closes the open watch connection."""
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
        self._stopping.set()
        current = self._current
        if current is not None:
            current.stop()

    # --- the loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = self._new_backoff()
        while not self._stopping.is_set():
            try:
                version = self._list()
                backoff.reset()
                while not self._stopping.is_set():
                    version = self._watch(version)
            except Exception as error:  # noqa: BLE001 - the loop must survive anything the API does
                if self._stopping.is_set():
                    break
                if isinstance(error, ApiException) and error.status == HTTP_GONE:
                    # The resourceVersion is too old, as an HTTP status or a watch ERROR event.
                    logger.info("%s watch expired (HTTP 410 Gone); relisting now", self.kind)
                    continue
                for subscriber in self._subscribers:
                    subscriber.broken()
                wait = backoff.next()
                logger.warning("%s list/watch failed: %s; serving the last %s seen, will retry in %.1f s",
                               self.kind, short_error(error), self.kind, wait)
                self._stopping.wait(wait)

    def _list(self) -> str:
        items, version = list_objects(self._lister, field_selector=self._field_selector)
        for subscriber in self._subscribers:
            subscriber.replace(items)
        self.synced.set()
        logger.info("listed %d %s (resourceVersion %s) for %d users; watching for changes", len(items), self.kind,
                    version, len(self._subscribers))
        return version

    def _watch(self, version: str) -> str:
        """One watch call until the server's timeout; returns the last resourceVersion seen."""
        current = self._current = WatchCall(self._lister, version, stopping=self._stopping,
                                            timeout_seconds=self._watch_timeout, field_selector=self._field_selector)
        subscribers = tuple(self._subscribers)
        for event, obj in current:
            for subscriber in subscribers:
                subscriber.apply(event, obj)
        return current.resource_version
