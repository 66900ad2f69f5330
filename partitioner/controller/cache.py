"""Nodes and pods as the watches last reported them, read into views (``observe``); the watch
threads write, the control loop reads a snapshot. ``changed`` wakes the loop."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from partitioner.controller.observe import NodeView, PodView, read_node, read_pod


class Cache:
    KINDS = ("nodes", "pods")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[str, NodeView] = {}
        self._pods: dict[str, PodView] = {}
        self._live: set[str] = set()
        self.changed = threading.Event()

    @staticmethod
    def _keep(pod: PodView) -> bool:
        return pod.partitions > 0 or pod.layout_blocked is not None

    def replace(self, kind: str, items: Iterable[object]) -> None:
        with self._lock:
            if kind == "nodes":
                self._nodes = {v.name: v for v in map(read_node, items) if v is not None}
            else:
                self._pods = {v.key: v for v in map(read_pod, items) if v is not None and self._keep(v)}
            self._live.add(kind)
        self.changed.set()

    def apply(self, kind: str, event: str, obj: object) -> None:
        with self._lock:
            if kind == "nodes":
                node = read_node(obj)
                if node is None:
                    return
                if event == "DELETED":
                    self._nodes.pop(node.name, None)
                else:
                    self._nodes[node.name] = node
            else:
                pod = read_pod(obj)
                if pod is None:
                    return
                if event == "DELETED" or not self._keep(pod):
                    self._pods.pop(pod.key, None)
                else:
                    self._pods[pod.key] = pod
        self.changed.set()

    def mark_broken(self, kind: str) -> None:
        with self._lock:
            self._live.discard(kind)

    @property
    def live(self) -> bool:
        """Both kinds listed and their watches running."""
        with self._lock:
            return self._live >= set(self.KINDS)

    def snapshot(self) -> tuple[list[NodeView], list[PodView]]:
        with self._lock:
            return sorted(self._nodes.values(), key=lambda n: n.name), list(self._pods.values())
