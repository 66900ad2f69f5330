"""The health of each published device, for the kubelet's DRA health stream
(``v1alpha1.DRAResourceHealth``, Kubernetes 1.36's ResourceHealthStatus). Pure.

The verdicts are the device plugin's (``deviceplugin.health.check_health``: a partition is Unhealthy
only when its KFD node or render node is gone); a partition that is not published (unknown memory,
``slices.device``) has no device and is left out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from deviceplugin.dra.slices import device, device_name
from deviceplugin.health import HealthVerdict
from deviceplugin.inventory import Inventory

# DeviceHealth.message: "Maximum length is 1024 characters" (dra-health/v1alpha1/api.proto).
MAX_MESSAGE: Final = 1024


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    device: str
    healthy: bool | None  # None: no verdict (unknown)
    message: str


def device_health(inventory: Inventory, verdicts: Mapping[str, HealthVerdict]) -> tuple[DeviceHealth, ...]:
    """One entry per published device, in the inventory's order."""
    found: list[DeviceHealth] = []
    for partition in inventory.partitions:
        if device(partition) is None:
            continue
        verdict = verdicts.get(partition.id)
        if verdict is None:
            found.append(DeviceHealth(device_name(partition), None, "not checked"))
            continue
        found.append(DeviceHealth(device_name(partition), verdict.healthy, (verdict.reason or "")[:MAX_MESSAGE]))
    return tuple(found)
