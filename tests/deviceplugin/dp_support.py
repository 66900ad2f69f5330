"""Test helpers for the device plugin: captures laid under a temporary root, device roots,
a test kubelet, partition builders.

The captures in tests/fixtures/sysfs are only read; every test works on its own copy
(plus synthesized PCI partition-mode files, NUMA files and amdgpu_xcp platform devices where a
test needs them, since the captures contain KFD topology only).
"""

from __future__ import annotations

import queue
import shutil
import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path

import grpc

from deviceplugin.inventory import Partition, partition_id
from deviceplugin.proto import api_pb2, api_pb2_grpc
from tests.fixtures import FIXTURES

CAPTURES = FIXTURES / "sysfs"
KFD_TOPOLOGY = Path("class/kfd/kfd/topology")


def read_props(path: Path) -> dict[str, int]:
    values = {}
    for line in path.read_text().splitlines():
        key, value = line.split()
        values[key] = int(value)
    return values


def gpu_nodes(root: Path) -> list[tuple[Path, dict[str, int]]]:
    """(node dir, properties) of every GPU KFD node under a laid-out sysfs root."""
    nodes = []
    for node in sorted((root / KFD_TOPOLOGY / "nodes").iterdir(), key=lambda p: int(p.name)):
        props = read_props(node / "properties")
        if props["simd_count"] > 0:
            nodes.append((node, props))
    return nodes


def address_of(props: dict[str, int]) -> str:
    loc = props["location_id"]
    return f"{props['domain']:04x}:{(loc >> 8) & 0xFF:02x}:{(loc >> 3) & 0x1F:02x}.0"


# Directories the tests never modify (io_links, p2p_links, caches: ~4,000 small files on the
# MI300X capture) are symlinked to the read-only capture instead of copied, so each test gets
# its own tree in milliseconds. Nothing writes through these links; removing one (unlink,
# rmtree of a node directory) removes only the link.
_LINKED_DIRS = frozenset({"io_links", "p2p_links", "caches"})


def _copy_tree(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        if entry.is_dir():
            if entry.name in _LINKED_DIRS:
                (dst / entry.name).symlink_to(entry, target_is_directory=True)
            else:
                _copy_tree(entry, dst / entry.name)
        else:
            shutil.copyfile(entry, dst / entry.name)


def lay_capture(
    root: Path,
    capture: str,
    *,
    compute_mode: str | None = None,
    memory_mode: str | None = None,
    numa: bool = False,
    xcp_separator: str | None = None,
) -> Path:
    """Copy a capture under ``root`` as a sysfs tree; optionally synthesize the PCI extras."""
    source = CAPTURES / capture
    target = root / KFD_TOPOLOGY
    target.parent.mkdir(parents=True, exist_ok=True)
    if (source / "topology").is_dir():
        _copy_tree(source / "topology", target)
    else:  # mi210 capture: nodes/ without the topology/ level
        _copy_tree(source / "nodes", target / "nodes")
    if compute_mode or memory_mode or numa or xcp_separator:
        card = 1  # card0 is the BMC VGA device on real MI300X boxes
        xcp = 0
        for _node, props in gpu_nodes(root):
            pci = root / "bus/pci/devices" / address_of(props)
            first_of_gpu = not pci.exists()
            pci.mkdir(parents=True, exist_ok=True)
            if compute_mode and first_of_gpu:
                (pci / "current_compute_partition").write_text(compute_mode + "\n")
                (pci / "available_compute_partition").write_text("SPX, DPX, QPX, CPX\n")
            if memory_mode and first_of_gpu:
                (pci / "current_memory_partition").write_text(memory_mode + "\n")
                (pci / "available_memory_partition").write_text("NPS1, NPS4\n")
            if numa and first_of_gpu:
                (pci / "numa_node").write_text(
                    f"{1 if ((props['location_id'] >> 8) & 0xFF) >= 0x80 else 0}\n"
                )
            index = props["location_id"] & 7
            if xcp_separator is not None:
                if index == 0:
                    drm = pci / "drm"
                else:
                    xcp += 1
                    drm = root / "devices/platform" / f"amdgpu_xcp{xcp_separator}{xcp}" / "drm"
                drm.mkdir(parents=True, exist_ok=True)
                (drm / f"card{card}").mkdir()
                (drm / f"renderD{props['drm_render_minor']}").mkdir()
                card += 1
    return root


def lay_dev_root(dev_root: Path, sysfs_root: Path, *, cards: bool = False) -> Path:
    (dev_root / "dri").mkdir(parents=True, exist_ok=True)
    (dev_root / "kfd").write_text("")
    for _node, props in gpu_nodes(sysfs_root):
        (dev_root / "dri" / f"renderD{props['drm_render_minor']}").write_text("")
    if cards:
        for card in range(1, 70):
            (dev_root / "dri" / f"card{card}").write_text("")
    return dev_root


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


class TestKubelet(api_pb2_grpc.RegistrationServicer):
    """A kubelet stand-in built from the same proto: serves Registration on kubelet.sock,
    and on Register dials the plugin back, calls GetDevicePluginOptions and consumes
    ListAndWatch in a thread (like pkg/kubelet/cm/devicemanager/plugin/v1beta1)."""

    __test__ = False  # not a test class

    def __init__(self, kubelet_dir: Path) -> None:
        self.dir = kubelet_dir
        self.socket = kubelet_dir / "kubelet.sock"
        self.registrations: list[api_pb2.RegisterRequest] = []
        self.registered_at: list[float] = []
        self.options: list[api_pb2.DevicePluginOptions] = []
        self.updates: queue.Queue[list[api_pb2.Device]] = queue.Queue()
        self.latest: list[api_pb2.Device] | None = None
        self.stream: grpc.Future | None = None
        self.channel: grpc.Channel | None = None
        self.stub: api_pb2_grpc.DevicePluginStub | None = None
        self._server: grpc.Server | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        api_pb2_grpc.add_RegistrationServicer_to_server(self, server)
        server.add_insecure_port(f"unix://{self.socket}")
        server.start()
        self._server = server

    def Register(self, request: api_pb2.RegisterRequest, context: grpc.ServicerContext) -> api_pb2.Empty:  # noqa: N802
        if request.version != "v1beta1":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unsupported version {request.version}")
        channel = grpc.insecure_channel(f"unix://{self.dir / request.endpoint}")
        stub = api_pb2_grpc.DevicePluginStub(channel)
        options = stub.GetDevicePluginOptions(api_pb2.Empty(), timeout=5)
        with self._lock:
            self._close_plugin_connection()
            self.channel, self.stub = channel, stub
            self.registrations.append(request)
            self.registered_at.append(time.monotonic())
            self.options.append(options)
            self.stream = stub.ListAndWatch(api_pb2.Empty())
            threading.Thread(target=self._consume, args=(self.stream,), daemon=True).start()
        return api_pb2.Empty()

    def _consume(self, stream: grpc.Future) -> None:
        try:
            for response in stream:  # type: ignore[attr-defined]
                devices = list(response.devices)
                self.latest = devices
                self.updates.put(devices)
        except grpc.RpcError:
            pass

    def _close_plugin_connection(self) -> None:
        if self.stream is not None:
            self.stream.cancel()
        if self.channel is not None:
            self.channel.close()
        self.stream = self.channel = self.stub = None

    def wait_for_devices(
        self, predicate: Callable[[list[api_pb2.Device]], bool], timeout: float = 5.0
    ) -> list[api_pb2.Device]:
        """Return the first ListAndWatch update (including the latest seen) matching predicate."""
        if self.latest is not None and predicate(self.latest):
            return self.latest
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no ListAndWatch update matched within {timeout} s; latest: {self.latest}"
                )
            try:
                devices = self.updates.get(timeout=remaining)
            except queue.Empty:
                continue
            if predicate(devices):
                return devices

    def close_stream(self) -> None:
        """Cancel ListAndWatch without registering again (the kubelet dropped the plugin)."""
        with self._lock:
            self._close_plugin_connection()

    def stop(self) -> None:
        with self._lock:
            self._close_plugin_connection()
        if self._server is not None:
            self._server.stop(grace=0).wait(timeout=2)
            self._server = None

    def restart(self) -> None:
        """Kubelet restart: stop, wipe every socket in the directory, serve kubelet.sock anew."""
        self.stop()
        for entry in self.dir.iterdir():
            if entry.is_socket():
                entry.unlink()
        self.start()


def make_partition(gpu: str, index: int, *, numa: int | None = 0, hive: int | None = 1) -> Partition:
    """An MI300X CPX/NPS4 partition (24 GiB, 38 CUs) for pure-function tests."""
    return Partition(
        id=partition_id(gpu, index),
        gpu=gpu,
        index=index,
        kfd_node=index + 2,
        render_minor=128 + index,
        card_minor=None,
        memory_bytes=24 * 2**30,
        memory_source="geometry",
        compute_units=38,
        numa_node=numa,
        numa_source="sysfs",
        hive_id=hive,
        compute_mode="CPX",
        compute_mode_source="sysfs",
        memory_mode="NPS4",
        memory_mode_source="sysfs",
        product="MI300X",
        device_id=0x74A1,
        partitionable=True,
    )
