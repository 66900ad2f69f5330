"""The DevicePlugin gRPC servicer: translates between protobuf and the pure modules.

Status codes are chosen here and only here: an unknown device ID is INVALID_ARGUMENT naming
the ID (like NVIDIA's errInvalidRequest, NVIDIA/k8s-device-plugin internal/plugin/server.go).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Protocol

import grpc

from deviceplugin.allocate_reply import container_allocate_reply
from deviceplugin.errors import UnknownDeviceError
from deviceplugin.inventory import Inventory, Partition
from deviceplugin.kubelet_api import HEALTHY
from deviceplugin.metrics import PluginMetrics
from deviceplugin.preferred_allocation import preferred_device_ids
from deviceplugin.proto import api_pb2, api_pb2_grpc
from deviceplugin.registration import plugin_options
from deviceplugin.state import Snapshot

logger = logging.getLogger(__name__)

# How often a ListAndWatch stream re-checks that the kubelet is still connected while no
# device changed; bounds how long a dead stream holds a worker thread.
STREAM_POLL_S = 0.5


class DeviceSource(Protocol):
    """All the servicer may see of the device state (``state.DeviceState`` implements it)."""

    @property
    def inventory(self) -> Inventory: ...

    def snapshot(self) -> Snapshot: ...

    def wait_for_change(
        self, version: int, timeout: float, give_up: Callable[[], bool] = ...
    ) -> Snapshot: ...

    def wake_all(self) -> None: ...

    def partitions_by_id(self) -> Mapping[str, Partition]: ...

    def record_allocation(self, device_ids: Iterable[str]) -> None: ...


class StreamTracker:
    """Counts open ListAndWatch streams and remembers when the last one closed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0
        self.last_closed_at: float | None = None

    def opened(self) -> None:
        with self._lock:
            self.active += 1

    def closed(self) -> None:
        with self._lock:
            self.active -= 1
            self.last_closed_at = time.monotonic()

    def take_lonely_close(self, grace_s: float) -> bool:
        """True once when a stream closed ``grace_s`` ago and no stream is open now."""
        with self._lock:
            if self.last_closed_at is None:
                return False
            if self.active > 0:
                self.last_closed_at = None
                return False
            if time.monotonic() - self.last_closed_at < grace_s:
                return False
            self.last_closed_at = None
            return True


def _list_response(snapshot: Snapshot) -> api_pb2.ListAndWatchResponse:
    devices = []
    for device in snapshot.devices:
        topology = (
            api_pb2.TopologyInfo(nodes=[api_pb2.NUMANode(ID=device.numa_node)])
            if device.numa_node is not None
            else None
        )
        devices.append(api_pb2.Device(ID=device.id, health=device.health, topology=topology))
    return api_pb2.ListAndWatchResponse(devices=devices)


class DevicePluginServicer(api_pb2_grpc.DevicePluginServicer):
    def __init__(
        self,
        *,
        state: DeviceSource,
        metrics: PluginMetrics,
        dev_root: Path,
        streams: StreamTracker,
        stopping: Callable[[], bool],
    ) -> None:
        self._state = state
        self._metrics = metrics
        self._dev_root = dev_root
        self._streams = streams
        self._stopping = stopping

    def GetDevicePluginOptions(  # noqa: N802 - gRPC method name
        self, request: api_pb2.Empty, context: grpc.ServicerContext
    ) -> api_pb2.DevicePluginOptions:
        return plugin_options()

    def ListAndWatch(  # noqa: N802
        self, request: api_pb2.Empty, context: grpc.ServicerContext
    ) -> Iterator[api_pb2.ListAndWatchResponse]:
        self._streams.opened()

        def on_close() -> None:
            self._streams.closed()
            self._state.wake_all()  # let this stream's thread notice at once

        context.add_callback(on_close)
        snapshot = self._state.snapshot()
        logger.info("ListAndWatch: kubelet connected; sending %d partition(s)", len(snapshot.devices))
        yield _list_response(snapshot)
        while context.is_active() and not self._stopping():
            latest = self._state.wait_for_change(
                snapshot.version,
                timeout=STREAM_POLL_S,
                give_up=lambda: not context.is_active() or self._stopping(),
            )
            if latest.version != snapshot.version:
                if latest.devices != snapshot.devices:
                    unhealthy = sum(1 for d in latest.devices if d.health != HEALTHY)
                    logger.info(
                        "ListAndWatch: sending update, %d partition(s), %d unhealthy",
                        len(latest.devices),
                        unhealthy,
                    )
                    yield _list_response(latest)
                snapshot = latest

    def GetPreferredAllocation(  # noqa: N802
        self, request: api_pb2.PreferredAllocationRequest, context: grpc.ServicerContext
    ) -> api_pb2.PreferredAllocationResponse:
        partitions = self._state.partitions_by_id()
        responses = []
        for container in request.container_requests:
            chosen = preferred_device_ids(
                available=list(container.available_deviceIDs),
                must_include=list(container.must_include_deviceIDs),
                size=container.allocation_size,
                partitions=partitions,
            )
            responses.append(api_pb2.ContainerPreferredAllocationResponse(deviceIDs=chosen))
        self._metrics.preferred_allocation_total.labels(result="ok").inc()
        return api_pb2.PreferredAllocationResponse(container_responses=responses)

    def Allocate(  # noqa: N802
        self, request: api_pb2.AllocateRequest, context: grpc.ServicerContext
    ) -> api_pb2.AllocateResponse:
        started = time.perf_counter()
        result = "error"
        try:
            inventory = self._state.inventory
            responses = []
            for container in request.container_requests:
                reply = container_allocate_reply(
                    list(container.devices_ids), inventory, dev_root=self._dev_root
                )
                responses.append(
                    api_pb2.ContainerAllocateResponse(
                        envs=dict(reply.envs),
                        devices=[
                            api_pb2.DeviceSpec(
                                container_path=d.container_path,
                                host_path=d.host_path,
                                permissions=d.permissions,
                            )
                            for d in reply.devices
                        ],
                    )
                )
            self._state.record_allocation(
                device_id for container in request.container_requests for device_id in container.devices_ids
            )
            result = "ok"
            return api_pb2.AllocateResponse(container_responses=responses)
        except UnknownDeviceError as exc:
            result = "invalid"
            logger.warning("Allocate rejected: %s", exc)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise  # unreachable: abort raises
        finally:
            self._metrics.allocate_total.labels(result=result).inc()
            self._metrics.allocate_seconds.observe(time.perf_counter() - started)

    def PreStartContainer(  # noqa: N802
        self, request: api_pb2.PreStartContainerRequest, context: grpc.ServicerContext
    ) -> api_pb2.PreStartContainerResponse:
        return api_pb2.PreStartContainerResponse()
