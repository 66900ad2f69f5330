"""What NodePrepareResources answers for one claim, from the claim the API server holds. Pure.

The kubelet passes only the claim's namespace, name and UID; the devices are in its
``status.allocation.devices.results`` (resource.k8s.io/v1). Ours are the results whose driver is
``gpu-partition.amd.com``; each must be in this node's pool and be a partition this node has.
Anything else is an error string for that claim (the kubelet retries and shows it in the pod's
events), never an exception.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from deviceplugin.dra.cdi import cdi_id
from sizing.contract import DRA_DRIVER


@dataclass(frozen=True, slots=True)
class PreparedDevice:
    requests: tuple[str, ...]
    pool: str
    device: str
    cdi_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Prepared:
    devices: tuple[PreparedDevice, ...] = ()
    error: str = ""


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def prepare(claim: Mapping[str, Any], uid: str, node_name: str, known_devices: Collection[str]) -> Prepared:
    metadata = _mapping(claim.get("metadata"))
    where = f"ResourceClaim {metadata.get('namespace')}/{metadata.get('name')}"
    if metadata.get("uid") != uid:
        return Prepared(error=f"{where} has uid {metadata.get('uid')!r}, the kubelet asked for {uid!r}"
                              " (deleted and re-created?)")
    allocation = _mapping(_mapping(claim.get("status")).get("allocation"))
    results = _mapping(allocation.get("devices")).get("results")
    if not isinstance(results, list):
        return Prepared(error=f"{where} is not allocated")
    by_device: dict[tuple[str, str], list[str]] = {}
    for result in results:
        result = _mapping(result)
        if result.get("driver") != DRA_DRIVER:
            continue  # another driver's device in the same claim
        pool, device, request = (str(result.get(k, "")) for k in ("pool", "device", "request"))
        if pool != node_name:
            return Prepared(error=f"{where}: device {device} is in pool {pool!r}, not this node's ({node_name!r})")
        if device not in known_devices:
            return Prepared(error=f"{where}: device {device} is not a partition of node {node_name} now"
                                  " (repartitioned since it was allocated?)")
        by_device.setdefault((pool, device), []).append(request)
    return Prepared(tuple(PreparedDevice(tuple(requests), pool, device, (cdi_id(device),))
                          for (pool, device), requests in by_device.items()))
