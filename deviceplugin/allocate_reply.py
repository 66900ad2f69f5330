"""Build the Allocate reply for one container (pure apart from checking card nodes exist).

Every container gets ``/dev/kfd`` (the ROCm compute interface; one for all partitions) and the
render node of each partition it was given, plus its card node when the GPU has one, all
``rw`` like the AMD plugin (ROCm/k8s-device-plugin internal/pkg/plugin/plugin.go). The
environment tells the workload what it got; see docs/deviceplugin.md "Environment".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from deviceplugin.errors import UnknownDeviceError
from deviceplugin.inventory import Inventory, Partition

# Device nodes are passed by their host path; the runtime resolves them in the host's /dev,
# whatever --dev-root the plugin itself looks at.
HOST_DEV = Path("/dev")
DEVICE_PERMISSIONS = "rw"

ENV_IDS = "AMD_GPU_PARTITION_IDS"
ENV_COUNT = "AMD_GPU_PARTITION_COUNT"
ENV_RENDER_NODES = "AMD_GPU_PARTITION_RENDER_NODES"
ENV_MEMORY_BYTES = "AMD_GPU_PARTITION_MEMORY_BYTES"
ENV_MEMORY_MIB = "AMD_GPU_PARTITION_MEMORY_MIB"
ENV_CU_COUNT = "AMD_GPU_PARTITION_CU_COUNT"
ENV_GPUS = "AMD_GPU_PARTITION_GPUS"
ENV_PRODUCT = "AMD_GPU_PARTITION_PRODUCT"
ENV_COMPUTE_MODE = "AMD_GPU_PARTITION_COMPUTE_MODE"
ENV_MEMORY_MODE = "AMD_GPU_PARTITION_MEMORY_MODE"
UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True)
class DeviceNode:
    container_path: str
    host_path: str
    permissions: str = DEVICE_PERMISSIONS


@dataclasses.dataclass(frozen=True)
class ContainerAllocateReply:
    devices: tuple[DeviceNode, ...]
    envs: Mapping[str, str]


def _node(path: Path) -> DeviceNode:
    return DeviceNode(container_path=str(path), host_path=str(path))


def _join(values: Sequence[object]) -> str:
    return ",".join(UNKNOWN if v is None else str(v) for v in values)


def _distinct(values: Sequence[str | None]) -> str:
    unique = sorted({v or UNKNOWN for v in values})
    return ",".join(unique)


def container_allocate_reply(
    device_ids: Sequence[str], inventory: Inventory, *, dev_root: Path
) -> ContainerAllocateReply:
    """DeviceSpecs and envs for one container; raises UnknownDeviceError for an unknown ID."""
    by_id = inventory.by_id
    partitions: list[Partition] = []
    for device_id in dict.fromkeys(device_ids):
        partition = by_id.get(device_id)
        if partition is None:
            raise UnknownDeviceError(device_id, known=len(by_id))
        partitions.append(partition)

    render_nodes = [HOST_DEV / "dri" / f"renderD{p.render_minor}" for p in partitions]
    devices: list[DeviceNode] = [_node(HOST_DEV / "kfd")]
    for partition, render_node in zip(partitions, render_nodes, strict=True):
        # A card node missing from /dev would make the runtime fail the container: leave it out.
        card = f"card{partition.card_minor}" if partition.card_minor is not None else None
        if card is not None and (dev_root / "dri" / card).exists():
            devices.append(_node(HOST_DEV / "dri" / card))
        devices.append(_node(render_node))

    envs = {
        ENV_IDS: _join([p.id for p in partitions]),
        ENV_COUNT: str(len(partitions)),
        ENV_RENDER_NODES: _join(render_nodes),
        ENV_MEMORY_BYTES: _join([p.memory_bytes for p in partitions]),
        ENV_MEMORY_MIB: _join(
            [None if p.memory_bytes is None else p.memory_bytes // 2**20 for p in partitions]
        ),
        ENV_CU_COUNT: _join([p.compute_units for p in partitions]),
        ENV_GPUS: ",".join(dict.fromkeys(p.gpu for p in partitions)),
        ENV_PRODUCT: _distinct([p.product for p in partitions]),
        ENV_COMPUTE_MODE: _distinct([p.compute_mode for p in partitions]),
        ENV_MEMORY_MODE: _distinct([p.memory_mode for p in partitions]),
    }
    return ContainerAllocateReply(devices=tuple(devices), envs=envs)
