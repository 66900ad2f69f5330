"""The ResourceSlices (resource.k8s.io/v1) that describe one node's partitions. Pure.

One device per partition discovery found (``deviceplugin.discovery``, the same inventory the
device plugin advertises), named from its stable ID, with the attributes and the memory capacity of
``sizing.contract`` (DRA_*). A slice holds at most 128 devices (ResourceSliceMaxDevices, k8s.io/api
resource/v1 types.go); a node with more partitions gets several slices of one pool, whose
``resourceSliceCount`` says how many.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from deviceplugin.inventory import Inventory, Partition
from sizing.contract import (
    DRA_ATTRIBUTE_COMPUTE_MODE,
    DRA_ATTRIBUTE_COMPUTE_UNITS,
    DRA_ATTRIBUTE_GPU,
    DRA_ATTRIBUTE_MEMORY_MODE,
    DRA_ATTRIBUTE_PARTITION,
    DRA_ATTRIBUTE_PRODUCT,
    DRA_CAPACITY_MEMORY,
    DRA_DRIVER,
    MAX_MEMORY_MIB,
    MIB,
)

API_VERSION: Final = "resource.k8s.io/v1"
MAX_DEVICES_PER_SLICE: Final = 128  # ResourceSliceMaxDevices (resource/v1 types.go)
MAX_ATTRIBUTE_LENGTH: Final = 64  # DeviceAttributeMaxValueLength (resource/v1 types.go)
MAX_NAME_LENGTH: Final = 253  # a ResourceSlice name and a pool name are DNS subdomains
# The hash of what was published, so the publisher can tell "unchanged" without comparing
# server-normalised Quantities.
SPEC_HASH_ANNOTATION: Final = DRA_DRIVER + "/spec-hash"
_NOT_DNS_LABEL: Final = re.compile(r"[^a-z0-9-]+", re.ASCII)


@dataclass(frozen=True, slots=True)
class SliceSet:
    """The slices of one node's pool, and what was left out (logged by the shell)."""

    slices: tuple[dict[str, Any], ...]
    skipped: tuple[str, ...] = ()
    spec_hash: str = ""


def device_name(partition: Partition) -> str:
    """A DNS label (device names must be one) from the stable partition ID, e.g. ``0000:05:00.0-p3``
    -> ``gpu-0000-05-00-0-p3`` (at most 63 characters; the ID is a PCI address and an index)."""
    return ("gpu-" + _NOT_DNS_LABEL.sub("-", partition.id.lower())).strip("-")[:63].rstrip("-")


def _string(value: str) -> dict[str, str]:
    return {"string": value[:MAX_ATTRIBUTE_LENGTH]}


def device(partition: Partition) -> dict[str, Any] | None:
    """The ResourceSlice device for one partition, or None when its memory is unknown (a claim is
    matched on memory: a device without it would make every selector that reads it fail)."""
    memory = partition.memory_bytes
    if memory is None or not MIB <= memory <= MAX_MEMORY_MIB * MIB:
        return None
    attributes: dict[str, dict[str, Any]] = {
        DRA_ATTRIBUTE_PRODUCT: _string(partition.product),
        DRA_ATTRIBUTE_COMPUTE_UNITS: {"int": partition.compute_units},
        DRA_ATTRIBUTE_GPU: _string(partition.gpu),
        DRA_ATTRIBUTE_PARTITION: {"int": partition.index},
    }
    if partition.compute_mode is not None:
        attributes[DRA_ATTRIBUTE_COMPUTE_MODE] = _string(partition.compute_mode)
    if partition.memory_mode is not None:
        attributes[DRA_ATTRIBUTE_MEMORY_MODE] = _string(partition.memory_mode)
    return {"name": device_name(partition), "attributes": attributes,
            "capacity": {DRA_CAPACITY_MEMORY: {"value": str(memory)}}}


def slice_name(node_name: str, index: int) -> str:
    """``<node>-gpu-partition.amd.com-<i>``; a node name long enough to overflow 253 characters is
    replaced by its hash (names stay stable and distinct)."""
    name = f"{node_name}-{DRA_DRIVER}-{index}"
    if len(name) <= MAX_NAME_LENGTH:
        return name
    digest = hashlib.sha256(node_name.encode()).hexdigest()[:16]
    return f"{digest}-{DRA_DRIVER}-{index}"


def _chunks(items: Sequence[dict[str, Any]], size: int) -> list[Sequence[dict[str, Any]]]:
    return [items[i:i + size] for i in range(0, len(items), size)] or [()]


def spec_hash(devices: Sequence[Mapping[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(list(devices), sort_keys=True).encode()).hexdigest()[:32]


def resource_slices(inventory: Inventory, node_name: str, generation: int,
                    owner: Mapping[str, str] | None = None) -> SliceSet:
    """The node's slices at pool ``generation`` (bump it on every change: the scheduler uses only
    the newest generation of a pool). ``owner``: the Node's ``name`` and ``uid``, so the slices go
    with the node. A node without partitions publishes one empty slice (the pool exists, no devices)."""
    devices: list[dict[str, Any]] = []
    skipped: list[str] = []
    for partition in inventory.partitions:
        found = device(partition)
        if found is None:
            skipped.append(f"partition {partition.id}: memory unknown, not published")
        else:
            devices.append(found)
    digest = spec_hash(devices)
    chunks = _chunks(devices, MAX_DEVICES_PER_SLICE)
    metadata_extra: dict[str, Any] = {}
    if owner is not None:
        metadata_extra["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": owner["name"],
                                              "uid": owner["uid"], "controller": True}]
    slices = tuple(
        {
            "apiVersion": API_VERSION,
            "kind": "ResourceSlice",
            "metadata": {"name": slice_name(node_name, index),
                         "annotations": {SPEC_HASH_ANNOTATION: digest}, **metadata_extra},
            "spec": {
                "driver": DRA_DRIVER,
                "nodeName": node_name,
                "pool": {"name": node_name, "generation": generation, "resourceSliceCount": len(chunks)},
                "devices": list(chunk),
            },
        }
        for index, chunk in enumerate(chunks)
    )
    return SliceSet(slices, tuple(skipped), digest)
