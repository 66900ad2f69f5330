"""List, then watch, one kind of Kubernetes object as raw JSON dicts (the kubernetes client's ``watch.Watch``).

``list_objects`` reads a full list in pages (``limit`` + ``continue``) and returns its items and
resourceVersion; ``WatchCall`` follows one watch request from that resourceVersion and yields its
ADDED/MODIFIED/DELETED events while remembering the last resourceVersion seen (bookmarks included).
Objects stay JSON dicts: lists are read with ``_preload_content=False``, and ``Watch.stream`` is given
a plain function without a documented return type, so it hands over each event's object without the
client's model deserialisation (which would cost far more than the few fields callers read).

The retry loop around both (410 Gone, backoff, logs) with subscribers is ``kube.informer``, the only
user: the extender's node and pod caches, the webhook's node inventory, the pending explainer and the
partition controller all subscribe to informers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final

from kubernetes import watch as kube_watch_module
from kubernetes.client.exceptions import ApiException

# The kubernetes client has no type hints: its entry points are used as ``Any``.
Watch: Any = kube_watch_module.Watch

# A ``CoreV1Api`` list method such as ``list_node``; called with keyword arguments only.
Lister = Callable[..., Any]

# Page size of a list: client-go's pager default (k8s.io/client-go/tools/pager, 500).
LIST_PAGE_SIZE: Final = 500
# Server-side watch timeout; client-go reflectors pick 5-10 min at random (minWatchTimeout 5 min)
# so that watches are re-established regularly and a silent dead connection is noticed.
WATCH_TIMEOUT_SECONDS: Final = 300
# Client read timeout of a watch: the watch timeout plus slack for the server to close the stream.
READ_SLACK_SECONDS: Final = 30
# TCP (+TLS) connect to the API server: milliseconds in a cluster; 5 s tolerates a loaded control
# plane yet notices an unreachable one quickly (the callers then back off and retry).
CONNECT_TIMEOUT_SECONDS: Final = 5
# Read timeout of one list page: a 500-object page is well under a second; 60 s is generous.
LIST_READ_TIMEOUT_SECONDS: Final = 60
# The API server's answer to a watch or list from a resourceVersion it no longer has: relist.
HTTP_GONE: Final = 410
# The event types that change the set of objects; BOOKMARK only moves the resourceVersion.
CHANGE_EVENTS: Final = frozenset({"ADDED", "MODIFIED", "DELETED"})


def _selectors(field_selector: str | None, label_selector: str | None) -> dict[str, str]:
    chosen = {"field_selector": field_selector, "label_selector": label_selector}
    return {key: value for key, value in chosen.items() if value}


def list_objects(
    lister: Lister,
    *,
    page_size: int = LIST_PAGE_SIZE,
    request_timeout: tuple[float, float] = (CONNECT_TIMEOUT_SECONDS, LIST_READ_TIMEOUT_SECONDS),
    field_selector: str | None = None,
    label_selector: str | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """All objects ``lister`` returns, page by page, and the list's resourceVersion ("" if none).

    Items that are not JSON objects are dropped. API failures raise the client's ``ApiException``;
    a body that is not JSON raises ``ValueError``.
    """
    items: list[dict[str, Any]] = []
    token: str | None = None
    metadata: dict[str, Any] = {}
    selectors = _selectors(field_selector, label_selector)
    while True:
        extra = {"_continue": token} if token else {}
        response = lister(limit=page_size, _preload_content=False, _request_timeout=request_timeout,
                          **selectors, **extra)
        page = json.loads(response.data)
        items.extend(item for item in page.get("items") or [] if isinstance(item, dict))
        metadata = page.get("metadata") or {}
        token = metadata.get("continue")
        if not token:
            break
    return items, str(metadata.get("resourceVersion") or "")


class WatchCall:
    """One watch request from ``resource_version`` until the server's timeout, ``stop()`` or ``stopping``.

    Iterating yields ``(event_type, object)`` for ADDED, MODIFIED and DELETED events whose object is
    a JSON object; everything else (bookmarks, non-dict events or objects) is skipped.
    ``resource_version`` is the last resourceVersion seen, ready for the next call. Once ``stopping``
    is set, the next event the server sends (a bookmark included) closes the connection and ends the
    iteration unreported; ``stop()`` (from any thread) ends the stream after the event in hand (when
    idle, after the next one). The server's ``timeout_seconds`` bounds the wait for either. An
    expired resourceVersion raises ``ApiException`` with status ``HTTP_GONE``; other failures raise
    what the client raises.
    """

    def __init__(
        self,
        lister: Lister,
        resource_version: str,
        *,
        stopping: threading.Event,
        timeout_seconds: int = WATCH_TIMEOUT_SECONDS,
        request_timeout: tuple[float, float] | None = None,
        field_selector: str | None = None,
        label_selector: str | None = None,
    ) -> None:
        self.resource_version = resource_version
        self._lister = lister
        self._stopping = stopping
        self._timeout_seconds = timeout_seconds
        self._request_timeout = request_timeout or (CONNECT_TIMEOUT_SECONDS, timeout_seconds + READ_SLACK_SECONDS)
        self._selectors = _selectors(field_selector, label_selector)
        self._watch = Watch()

    def stop(self) -> None:
        """Close the watch connection (safe from another thread)."""
        self._watch.stop()

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        lister = self._lister

        def call(**kwargs: Any) -> Any:  # no return type documented: Watch leaves objects as dicts
            return lister(**kwargs)

        events = self._watch.stream(
            call, resource_version=self.resource_version, allow_watch_bookmarks=True,
            timeout_seconds=self._timeout_seconds, _request_timeout=self._request_timeout, **self._selectors,
        )
        for event in events:
            if self._stopping.is_set():
                self._watch.stop()
                break
            if not isinstance(event, dict):
                continue
            event_type, obj = event.get("type"), event.get("raw_object")
            if not isinstance(obj, dict):
                continue
            metadata = obj.get("metadata")
            if isinstance(metadata, dict) and isinstance(metadata.get("resourceVersion"), str):
                self.resource_version = metadata["resourceVersion"]
            if event_type in CHANGE_EVENTS:
                yield str(event_type), obj


def short_error(error: BaseException) -> str:
    """A list/watch failure in a few words for a log line: the HTTP status, else the exception, cut at 200."""
    if isinstance(error, ApiException):
        return f"HTTP {error.status} {error.reason}"
    return f"{type(error).__name__}: {error}"[:200]
