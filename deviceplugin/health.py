"""Partition health from what is on disk right now (no side effects beyond ``stat``).

A partition is Unhealthy only on an explicit bad signal: its render node is gone from the
device root, or its KFD topology node is gone. When the signal itself cannot be read (no
``dri`` directory in the device root at all, e.g. /dev not mounted into the plugin's
container) health is unknown and stays Healthy, as the AMD plugin does since
ROCm/k8s-device-plugin PR #195 (false Unhealthy at startup took whole nodes out).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path

from deviceplugin.discovery import kfd_nodes_dir
from deviceplugin.inventory import Partition
from deviceplugin.kubelet_api import HEALTHY, UNHEALTHY


@dataclasses.dataclass(frozen=True)
class HealthVerdict:
    """Health of one partition and, when it is not plainly healthy, why."""

    health: str
    reason: str | None = None

    @property
    def healthy(self) -> bool:
        return self.health == HEALTHY


def render_node_path(dev_root: Path, partition: Partition) -> Path:
    return dev_root / "dri" / f"renderD{partition.render_minor}"


def check_health(
    partitions: Iterable[Partition],
    *,
    dev_root: Path,
    sysfs_root: Path,
    lost_ids: frozenset[str] = frozenset(),
) -> Mapping[str, HealthVerdict]:
    """Verdict per partition ID. ``lost_ids`` are partitions re-discovery no longer finds."""
    dri_present = (dev_root / "dri").is_dir()
    nodes_dir = kfd_nodes_dir(sysfs_root)
    verdicts: dict[str, HealthVerdict] = {}
    for partition in partitions:
        if partition.id in lost_ids:
            verdicts[partition.id] = HealthVerdict(
                UNHEALTHY, f"KFD node for {partition.id} no longer in the topology"
            )
            continue
        if not (nodes_dir / str(partition.kfd_node) / "properties").exists():
            verdicts[partition.id] = HealthVerdict(UNHEALTHY, f"KFD node {partition.kfd_node} disappeared")
            continue
        if not dri_present:
            verdicts[partition.id] = HealthVerdict(
                HEALTHY, f"{dev_root / 'dri'} not present; render node health unknown"
            )
            continue
        render = render_node_path(dev_root, partition)
        if not render.exists():
            verdicts[partition.id] = HealthVerdict(UNHEALTHY, f"render node {render} disappeared")
            continue
        verdicts[partition.id] = HealthVerdict(HEALTHY)
    return verdicts
