"""Which device IDs the kubelet has assigned, from its device-manager checkpoint.

The kubelet never tells a plugin when a device is released; its checkpoint
``<device-plugin dir>/kubelet_internal_checkpoint`` (JSON: ``Data.PodDeviceEntries[]`` with
``ResourceName`` and ``DeviceIDs``, a list before Kubernetes 1.20 and a NUMA-node -> list map
since; kubernetes/kubernetes pkg/kubelet/cm/devicemanager/checkpoint) is the source of truth.
"""

from __future__ import annotations

import json
from pathlib import Path

from kube.regular_file import read_regular_file

CHECKPOINT_NAME = "kubelet_internal_checkpoint"
# Our IDs are "<PCI address>-p<n>" (about 16 characters); anything much longer is not ours.
MAX_DEVICE_ID_LENGTH = 256
# The checkpoint holds a few entries per pod; 64 MiB is far above any real node's file.
MAX_CHECKPOINT_BYTES = 64 << 20


def allocated_ids(checkpoint_text: str, resource_name: str) -> frozenset[str] | None:
    """IDs of ``resource_name`` held by pods; None when the text is not a readable checkpoint."""
    try:
        data = json.loads(checkpoint_text)
        entries = data["Data"]["PodDeviceEntries"] or []
    except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: absurd nesting
        return None
    if not isinstance(entries, list):
        return None
    ids: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("ResourceName") != resource_name:
            continue
        device_ids = entry.get("DeviceIDs") or []
        groups = device_ids.values() if isinstance(device_ids, dict) else [device_ids]
        for group in groups:
            if isinstance(group, list):
                ids.update(i for i in group if isinstance(i, str) and len(i) <= MAX_DEVICE_ID_LENGTH)
    return frozenset(ids)


def read_allocated_ids(kubelet_dir: Path, resource_name: str) -> frozenset[str] | None:
    try:
        raw = read_regular_file(kubelet_dir / CHECKPOINT_NAME, MAX_CHECKPOINT_BYTES)  # a FIFO must not block
    except OSError:
        return None
    if len(raw) > MAX_CHECKPOINT_BYTES:
        return None
    text = raw.decode("utf-8", errors="replace")
    return allocated_ids(text, resource_name)


class CheckpointReader:
    """``read_allocated_ids`` that re-reads the file only when its mtime or size changed.

    The health loop asks every second; the kubelet rewrites the checkpoint only on allocation.
    """

    def __init__(self, kubelet_dir: Path, resource_name: str) -> None:
        self._path = kubelet_dir / CHECKPOINT_NAME
        self._resource_name = resource_name
        self._stamp: tuple[int, int] | None = None
        self._ids: frozenset[str] | None = None

    def allocated(self) -> frozenset[str] | None:
        try:
            stat = self._path.stat()
        except OSError:
            self._stamp, self._ids = None, None
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._stamp = stamp
            self._ids = read_allocated_ids(self._path.parent, self._resource_name)
        return self._ids
