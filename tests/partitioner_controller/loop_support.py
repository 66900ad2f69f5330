"""What the loop tests drive ``Controller`` with: a Kube that records every call and changes
nothing, and a cluster of API JSON objects read into views on every snapshot."""

from __future__ import annotations

from typing import Any

from partitioner.controller.kube import ProfilesDocument
from partitioner.controller.observe import NodeView, PodView, read_node, read_pod


class RecordingKube:
    """Every call the loop makes, recorded; none changes anything (writes report failure, the DCM
    ConfigMap is absent)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def read_profiles(self, namespace: str, name: str) -> ProfilesDocument:
        self.calls.append("read_profiles")
        return ProfilesDocument(False, None, None)

    def __getattr__(self, name: str) -> Any:
        def record(*_: Any, **__: Any) -> bool:
            self.calls.append(name)
            return False
        return record


class Cluster:
    """Nodes and pods as API JSON; ``snapshot`` is the loop's cache snapshot."""

    def __init__(self, nodes: list[dict[str, Any]] | None = None, pods: list[dict[str, Any]] | None = None) -> None:
        self.nodes: list[dict[str, Any]] = nodes or []
        self.pods: list[dict[str, Any]] = pods or []

    def snapshot(self) -> tuple[list[NodeView], list[PodView]]:
        nodes = [v for v in map(read_node, self.nodes) if v is not None]
        pods = [v for v in map(read_pod, self.pods) if v is not None]
        return nodes, pods
