"""Keep the node labels in step with the inventory, in a background thread with backoff.

Failures are logged with the next retry time and never stop the plugin: labels only steer the
scheduler extender; the kubelet keeps allocating partitions without them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Protocol

from deviceplugin.config import LABEL_BACKOFF_INITIAL_S, LABEL_BACKOFF_MAX_S, STOP_THREAD_JOIN_S
from deviceplugin.errors import LabelPatchError
from deviceplugin.metrics import PluginMetrics
from kube.backoff import Backoff

logger = logging.getLogger(__name__)


class LabelPatcher(Protocol):
    node_name: str

    def apply(self, desired: Mapping[str, str | None]) -> object: ...


class LabelSync:
    def __init__(
        self,
        *,
        patcher: LabelPatcher,
        desired_labels: Callable[[], dict[str, str | None]],
        metrics: PluginMetrics,
        backoff_initial_s: float = LABEL_BACKOFF_INITIAL_S,
        backoff_max_s: float = LABEL_BACKOFF_MAX_S,
    ) -> None:
        self._patcher = patcher
        self._desired_labels = desired_labels
        self._metrics = metrics
        self._backoff = Backoff(backoff_initial_s, backoff_max_s)
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._applied: dict[str, str | None] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._dirty.set()
        self._thread = threading.Thread(target=self._run, name="label-sync", daemon=True)
        self._thread.start()

    def mark_dirty(self) -> None:
        self._dirty.set()

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_THREAD_JOIN_S)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            self._dirty.clear()
            desired = self._desired_labels()
            if desired == self._applied:
                continue
            try:
                self._patcher.apply(desired)
            except LabelPatchError as exc:
                self._metrics.label_patches_total.labels(result="error").inc()
                delay = self._backoff.next()
                logger.warning("node labels not updated: %s; will retry in %.0f s", exc, delay)
                if self._stop.wait(delay):
                    return
                self._dirty.set()
                continue
            self._metrics.label_patches_total.labels(result="ok").inc()
            self._backoff.reset()
            self._applied = desired
            logger.info("node %s labelled: %s", self._patcher.node_name, _describe(desired))


def _describe(labels: Mapping[str, str | None]) -> str:
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in labels.items() if v is not None)
