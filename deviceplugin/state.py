"""The plugin's shared, thread-safe view of its devices: inventory, health, allocations, change signal.

Refresh methods do the (cheap) file reads and return whether anything the kubelet sees
changed; ListAndWatch streams block in ``wait_for_change`` and resend on every version bump.
Which partitions are allocated is tracked here too (Allocate calls, and the kubelet checkpoint
when it can be read), so reconciliation and metrics need nothing from the gRPC servicer.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from deviceplugin import discovery
from deviceplugin.health import HealthVerdict, check_health
from deviceplugin.inventory import Inventory, Partition
from deviceplugin.kubelet_api import HEALTHY
from deviceplugin.metrics import PluginMetrics
from deviceplugin.reconcile import reconcile

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class AdvertisedDevice:
    """One entry of a ListAndWatch response."""

    id: str
    health: str
    numa_node: int | None


@dataclasses.dataclass(frozen=True)
class Snapshot:
    version: int
    inventory: Inventory
    devices: tuple[AdvertisedDevice, ...]


class DeviceState:
    """Inventory + health of the advertised partitions, guarded by one condition variable."""

    def __init__(
        self,
        *,
        sysfs_root: Path,
        dev_root: Path,
        metrics: PluginMetrics,
        discover: Callable[[Path], Inventory] = discovery.discover,
    ) -> None:
        self._sysfs_root = sysfs_root
        self._dev_root = dev_root
        self._metrics = metrics
        self._discover = discover
        self._cond = threading.Condition()
        self._version = 0
        self._inventory = Inventory()
        self._lost: frozenset[str] = frozenset()
        self._verdicts: Mapping[str, HealthVerdict] = {}
        self._seen_problems: frozenset[str] = frozenset()
        self._seen_notes: frozenset[str] = frozenset()
        self._has_inventory = False
        self._discovered = Inventory()
        self._allocated_by_rpc: frozenset[str] = frozenset()
        self._allocated_by_checkpoint: frozenset[str] | None = None

    # -- reads -------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        with self._cond:
            return self._snapshot_locked()

    def _snapshot_locked(self) -> Snapshot:
        devices = tuple(
            AdvertisedDevice(
                id=p.id,
                health=self._verdicts.get(p.id, HealthVerdict(HEALTHY)).health,
                numa_node=p.numa_node,
            )
            for p in self._inventory.partitions
        )
        return Snapshot(version=self._version, inventory=self._inventory, devices=devices)

    @property
    def inventory(self) -> Inventory:
        with self._cond:
            return self._inventory

    def partitions_by_id(self) -> Mapping[str, Partition]:
        """Every advertised partition (lost ones included) by device ID."""
        with self._cond:
            return self._inventory.by_id

    def labelled_partitions(self) -> tuple[Partition, ...]:
        """The partitions the node labels describe: those that exist and are healthy now
        (never lost ones kept for the kubelet, never unhealthy ones)."""
        with self._cond:
            return tuple(
                p
                for p in self._inventory.partitions
                if p.id not in self._lost and self._verdicts.get(p.id, HealthVerdict(HEALTHY)).healthy
            )

    def allocated_ids(self) -> frozenset[str]:
        """IDs held by containers: the kubelet checkpoint when readable, else what Allocate gave."""
        with self._cond:
            return self._allocated_locked()

    def _allocated_locked(self) -> frozenset[str]:
        if self._allocated_by_checkpoint is not None:
            return self._allocated_by_checkpoint
        return self._allocated_by_rpc

    # -- allocations -------------------------------------------------------------------------
    def record_allocation(self, device_ids: Iterable[str]) -> None:
        """Remember IDs an Allocate call handed out (used while no checkpoint can be read)."""
        with self._cond:
            self._allocated_by_rpc = self._allocated_by_rpc | frozenset(device_ids)
            self._publish_metrics_locked()

    def set_checkpoint_allocated(self, device_ids: frozenset[str] | None) -> bool:
        """Take the kubelet checkpoint's view (None: unreadable). Lost partitions of a vanished GPU
        that no pod holds any more are dropped; returns True when the advertised set changed."""
        with self._cond:
            if device_ids == self._allocated_by_checkpoint:
                return False
            self._allocated_by_checkpoint = device_ids
            changed = False
            if self._has_inventory and self._lost:
                merged = reconcile(self._inventory, self._discovered, self._allocated_locked())
                if merged.removed_ids:
                    logger.info(
                        "released partition(s) %s of a vanished GPU no longer advertised",
                        ", ".join(sorted(merged.removed_ids)),
                    )
                    self._inventory, self._lost = merged.inventory, merged.lost_ids
                    self._refresh_health_locked()
                    self._bump_locked()
                    changed = True
            self._publish_metrics_locked()
            return changed

    def wait_for_change(
        self, version: int, timeout: float, give_up: Callable[[], bool] = lambda: False
    ) -> Snapshot:
        """Block until the version differs from ``version``, ``give_up()`` is true (checked
        whenever ``wake_all`` is called) or ``timeout`` passes."""
        with self._cond:
            self._cond.wait_for(lambda: self._version != version or give_up(), timeout=timeout)
            return self._snapshot_locked()

    def wake_all(self) -> None:
        """Wake every waiting stream so it re-checks ``give_up`` (shutdown, stream closed)."""
        with self._cond:
            self._cond.notify_all()

    # -- refreshes ---------------------------------------------------------------------------
    def refresh_inventory(self) -> bool:
        """Re-discover; returns True when the advertised partitions changed."""
        discovered = self._discover(self._sysfs_root)
        self._log_discovery(discovered)
        with self._cond:
            previous = self._inventory if self._has_inventory else None
            self._discovered = discovered
            merged = reconcile(previous, discovered, self._allocated_locked())
            changed = (
                previous is None
                or not previous.same_devices(merged.inventory)
                or merged.lost_ids != self._lost
            )
            if previous is not None and (merged.added_ids or merged.removed_ids):
                logger.info(
                    "inventory changed: %d partition(s) added, %d removed (repartitioned); advertising %d",
                    len(merged.added_ids),
                    len(merged.removed_ids),
                    len(merged.inventory.partitions),
                )
            for lost in sorted(merged.lost_ids - self._lost):
                logger.warning(
                    "partition %s vanished from the KFD topology; advertising it as Unhealthy "
                    "(its GPU is still there in the same mode, or a pod still holds it)",
                    lost,
                )
            if not merged.inventory.is_homogeneous and (previous is None or previous.is_homogeneous):
                logger.warning(
                    "partitions on this node differ (GPUs in different partition modes); advertising "
                    "all of them, labelling the smallest (memory-mib) and homogeneous=false"
                )
            self._inventory = merged.inventory
            self._lost = merged.lost_ids
            self._has_inventory = True
            health_changed = self._refresh_health_locked()
            if changed or health_changed:
                self._bump_locked()
            return changed

    def refresh_health(self) -> bool:
        """Re-check health; returns True when any partition's health changed."""
        with self._cond:
            if self._refresh_health_locked():
                self._bump_locked()
                return True
            return False

    def _refresh_health_locked(self) -> bool:
        verdicts = check_health(
            self._inventory.partitions,
            dev_root=self._dev_root,
            sysfs_root=self._sysfs_root,
            lost_ids=self._lost,
        )
        changed = {k: v.health for k, v in verdicts.items()} != {
            k: v.health for k, v in self._verdicts.items()
        }
        if changed:
            for device_id, verdict in verdicts.items():
                old = self._verdicts.get(device_id)
                if old is not None and old.health != verdict.health:
                    if verdict.healthy:
                        logger.info("partition %s is Healthy again", device_id)
                    else:
                        logger.warning(
                            "partition %s is Unhealthy: %s; the kubelet stops placing pods on it",
                            device_id,
                            verdict.reason,
                        )
        self._verdicts = verdicts
        return changed

    def _bump_locked(self) -> None:
        self._version += 1
        self._publish_metrics_locked()
        self._cond.notify_all()

    def _publish_metrics_locked(self) -> None:
        allocated = self._allocated_locked()
        advertised: Counter[str] = Counter()
        healthy: Counter[str] = Counter()
        held: Counter[str] = Counter()
        for p in self._inventory.partitions:
            advertised[p.product] += 1
            if p.id not in self._lost and self._verdicts.get(p.id, HealthVerdict(HEALTHY)).healthy:
                healthy[p.product] += 1
            if p.id in allocated:
                held[p.product] += 1
        self._metrics.set_partition_counts(
            advertised=advertised, healthy=healthy, allocated=held, lost=len(self._lost)
        )

    def _log_discovery(self, inventory: Inventory) -> None:
        problems = frozenset(inventory.problems)
        for problem in sorted(problems - self._seen_problems):
            logger.warning("discovery: %s", problem)
            self._metrics.discovery_errors_total.inc()
        notes = frozenset(inventory.notes)
        for note in sorted(notes - self._seen_notes):
            logger.info("discovery: %s", note)
        self._seen_problems = problems
        self._seen_notes = notes
