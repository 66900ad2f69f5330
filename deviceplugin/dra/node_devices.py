"""What this node publishes now, shared by the publishing loop (writer) and the kubelet plugin's
gRPC threads (readers): the device names NodePrepareResources accepts, the CDI spec, and the
health snapshot the kubelet's health stream sends, with a condition to wait for the next one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from deviceplugin.dra.cdi import write_cdi_spec
from deviceplugin.dra.health import DeviceHealth, device_health
from deviceplugin.dra.slices import device, device_name
from deviceplugin.health import HealthVerdict
from deviceplugin.inventory import Inventory

HealthCheck = Callable[[Inventory], Mapping[str, HealthVerdict]]


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    sequence: int  # 0: no discovery yet
    checked_at: int  # Unix seconds
    devices: tuple[DeviceHealth, ...]


class NodeDevices:
    """Set by ``update`` after every discovery; every field holds an immutable value that is
    replaced, never changed in place, under the condition's lock."""

    def __init__(self, cdi_dir: Path, health_check: HealthCheck | None = None) -> None:
        self.cdi_dir = cdi_dir
        self.health_check = health_check
        self.names: frozenset[str] = frozenset()
        self.snapshot = HealthSnapshot(0, 0, ())
        self._changed = threading.Condition()

    def update(self, inventory: Inventory) -> None:
        write_cdi_spec(inventory, self.cdi_dir)
        verdicts = self.health_check(inventory) if self.health_check is not None else {}
        health = device_health(inventory, verdicts)
        with self._changed:
            self.names = frozenset(device_name(p) for p in inventory.partitions if device(p) is not None)
            self.snapshot = HealthSnapshot(self.snapshot.sequence + 1, int(time.time()), health)
            self._changed.notify_all()

    def __call__(self) -> frozenset[str]:
        return self.names

    def next_snapshot(self, after: int, timeout_s: float) -> HealthSnapshot | None:
        """The first snapshot newer than sequence ``after``, or None after ``timeout_s`` (or ``wake``)."""
        with self._changed:
            if self.snapshot.sequence <= after:
                self._changed.wait(timeout_s)
            return self.snapshot if self.snapshot.sequence > after else None

    def wake(self) -> None:
        """Wake every waiter (a stream the kubelet closed ends now, not at its next timeout)."""
        with self._changed:
            self._changed.notify_all()
