"""The plugin over real gRPC on real unix sockets, driven by the test kubelet (conftest).

Aspects: Register contents; GetDevicePluginOptions; ListAndWatch inventory, IDs and NUMA;
Allocate device specs and envs; unknown ID -> INVALID_ARGUMENT; GetPreferredAllocation;
health faults (render node, KFD node) and recovery; kubelet restart; kubelet closing the
stream; repartitioning picked up without restart; node labels following; metrics."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client import generate_latest

from deviceplugin.config import PluginConfig
from deviceplugin.metrics import PluginMetrics
from deviceplugin.proto import api_pb2
from deviceplugin.runner import PluginRunner
from sizing import contract
from tests.deviceplugin.dp_support import KFD_TOPOLOGY, TestKubelet, lay_capture, lay_dev_root, wait_until

GPU = "0000:05:00.0"


class RecordingPatcher:
    node_name = "node-a"

    def __init__(self) -> None:
        self.applied: list[dict[str, str | None]] = []
        self.event = threading.Event()

    def apply(self, desired: Mapping[str, str | None]) -> object:
        self.applied.append(dict(desired))
        self.event.set()
        return desired


class Env:
    def __init__(self, root: Path, kubelet: TestKubelet) -> None:
        self.sysfs = lay_capture(
            root / "sys", "mi300x-cpx", compute_mode="CPX", memory_mode="NPS4", numa=True, xcp_separator="_"
        )
        self.dev = lay_dev_root(root / "dev", self.sysfs, cards=True)
        self.kubelet = kubelet
        self.metrics = PluginMetrics(node="node-a")
        self.patcher = RecordingPatcher()
        self.config = PluginConfig(
            sysfs_root=self.sysfs,
            dev_root=self.dev,
            kubelet_dir=kubelet.dir,
            node_name="node-a",
            node_labels=True,
            health_interval_s=0.1,
            discovery_interval_s=60.0,  # longer than any test: changes must be caught otherwise
        )
        self.runner = PluginRunner(self.config, metrics=self.metrics, label_patcher=self.patcher)

    @property
    def stub(self):  # type: ignore[no-untyped-def]
        assert self.kubelet.stub is not None
        return self.kubelet.stub

    def metric(self, name: str, text: str | None = None) -> float:
        """A sample from the exposition text (the registry's own, unless ``text`` is given)."""
        if text is None:
            text = generate_latest(self.metrics.registry).decode()
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{name} not in metrics")


def _started_env(root: Path, kubelet: TestKubelet) -> Env:
    environment = Env(root, kubelet)
    environment.runner.start()
    assert wait_until(lambda: len(kubelet.registrations) == 1, timeout=5)
    kubelet.wait_for_devices(lambda devices: len(devices) == 63)
    return environment


@pytest.fixture
def env(short_tmp: Path, test_kubelet: TestKubelet) -> Iterator[Env]:
    """A plugin of its own, for tests that change sysfs, /dev, the kubelet or the metrics."""
    environment = _started_env(short_tmp, test_kubelet)
    yield environment
    environment.runner.shutdown()


@pytest.fixture(scope="module")
def shared_env() -> Iterator[Env]:
    """One plugin for the tests that only call RPCs and read answers (saves a tree and a
    server per test). Allocate calls made here are remembered by its state: tests that count
    allocations use ``env``."""
    root = Path(tempfile.mkdtemp(prefix="dp", dir="/tmp"))
    kubelet = TestKubelet(root / "kubelet")
    kubelet.start()
    environment = _started_env(root, kubelet)
    yield environment
    environment.runner.shutdown()
    kubelet.stop()
    shutil.rmtree(root, ignore_errors=True)


def health_of(devices: list[api_pb2.Device], device_id: str) -> str | None:
    return next((d.health for d in devices if device_id == d.ID), None)


def test_plugin_registers_v1beta1_with_its_endpoint_and_preferred_allocation(shared_env: Env) -> None:
    env = shared_env
    request = env.kubelet.registrations[0]
    assert request.version == "v1beta1"
    assert request.endpoint == "amd.com_gpu-partition.sock"
    assert (env.kubelet.dir / request.endpoint).is_socket()
    assert request.resource_name == "amd.com/gpu-partition"
    assert request.options.get_preferred_allocation_available is True
    assert env.kubelet.options[0].get_preferred_allocation_available is True
    assert env.kubelet.options[0].pre_start_required is False


def test_list_and_watch_sends_every_partition_healthy_with_numa(shared_env: Env) -> None:
    env = shared_env
    devices = env.kubelet.latest
    assert devices is not None and len(devices) == 63
    assert {d.health for d in devices} == {"Healthy"}
    by_id = {d.ID: d for d in devices}
    assert [n.ID for n in by_id[f"{GPU}-p0"].topology.nodes] == [0]
    assert [n.ID for n in by_id["0000:e5:00.0-p6"].topology.nodes] == [1]
    assert "0000:e5:00.0-p7" not in by_id


def test_allocate_gives_kfd_render_and_card_nodes_and_envs(shared_env: Env) -> None:
    env = shared_env
    request = api_pb2.AllocateRequest(
        container_requests=[
            api_pb2.ContainerAllocateRequest(devices_ids=[f"{GPU}-p0", f"{GPU}-p1"]),
            api_pb2.ContainerAllocateRequest(devices_ids=["0000:e5:00.0-p6"]),
        ]
    )
    response = env.stub.Allocate(request, timeout=5)
    first, second = response.container_responses
    specs = [(d.container_path, d.host_path, d.permissions) for d in first.devices]
    assert specs == [
        ("/dev/kfd", "/dev/kfd", "rw"),
        ("/dev/dri/card1", "/dev/dri/card1", "rw"),
        ("/dev/dri/renderD128", "/dev/dri/renderD128", "rw"),
        ("/dev/dri/card2", "/dev/dri/card2", "rw"),
        ("/dev/dri/renderD129", "/dev/dri/renderD129", "rw"),
    ]
    assert dict(first.envs) == {
        "AMD_GPU_PARTITION_IDS": f"{GPU}-p0,{GPU}-p1",
        "AMD_GPU_PARTITION_COUNT": "2",
        "AMD_GPU_PARTITION_RENDER_NODES": "/dev/dri/renderD128,/dev/dri/renderD129",
        "AMD_GPU_PARTITION_MEMORY_BYTES": "25769803776,25769803776",
        "AMD_GPU_PARTITION_MEMORY_MIB": "24576,24576",
        "AMD_GPU_PARTITION_CU_COUNT": "38,38",
        "AMD_GPU_PARTITION_GPUS": GPU,
        "AMD_GPU_PARTITION_PRODUCT": "MI300X",
        "AMD_GPU_PARTITION_COMPUTE_MODE": "CPX",
        "AMD_GPU_PARTITION_MEMORY_MODE": "NPS4",
    }
    assert [d.host_path for d in second.devices][-1] == "/dev/dri/renderD190"
    assert env.metric('aim_deviceplugin_allocate_total{result="ok"}') == 1.0


def test_allocate_unknown_id_is_invalid_argument_naming_the_id(shared_env: Env) -> None:
    env = shared_env
    request = api_pb2.AllocateRequest(
        container_requests=[api_pb2.ContainerAllocateRequest(devices_ids=[f"{GPU}-p0", "gpu-does-not-exist"])]
    )
    with pytest.raises(grpc.RpcError) as caught:
        env.stub.Allocate(request, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "gpu-does-not-exist" in caught.value.details()
    assert env.metric('aim_deviceplugin_allocate_total{result="invalid"}') == 1.0


def test_get_preferred_allocation_packs_onto_one_gpu(shared_env: Env) -> None:
    env = shared_env
    all_ids = [d.ID for d in env.kubelet.latest or []]
    request = api_pb2.PreferredAllocationRequest(
        container_requests=[
            api_pb2.ContainerPreferredAllocationRequest(available_deviceIDs=all_ids, allocation_size=2),
            api_pb2.ContainerPreferredAllocationRequest(
                available_deviceIDs=all_ids, must_include_deviceIDs=[f"{GPU}-p5"], allocation_size=3
            ),
        ]
    )
    response = env.stub.GetPreferredAllocation(request, timeout=5)
    first, second = (list(r.deviceIDs) for r in response.container_responses)
    assert first == ["0000:e5:00.0-p0", "0000:e5:00.0-p1"]  # the 7-partition GPU has fewest free
    assert second == [f"{GPU}-p5", f"{GPU}-p0", f"{GPU}-p1"]


def test_allocate_leaves_out_a_card_node_missing_from_dev(env: Env) -> None:
    """The runtime fails a container whose device host_path does not exist, so a card node the
    GPU has in sysfs but that is absent from /dev is not handed out; the render node still is."""
    (env.dev / "dri" / "card2").unlink()  # card of partition 1 (see the Allocate test above)
    request = api_pb2.AllocateRequest(
        container_requests=[api_pb2.ContainerAllocateRequest(devices_ids=[f"{GPU}-p1"])]
    )
    response = env.stub.Allocate(request, timeout=5)
    host_paths = [d.host_path for d in response.container_responses[0].devices]
    assert host_paths == ["/dev/kfd", "/dev/dri/renderD129"]


def test_pre_start_container_is_accepted(shared_env: Env) -> None:
    """Not required (pre_start_required=False), but a call must still succeed, not UNIMPLEMENTED."""
    env = shared_env
    response = env.stub.PreStartContainer(
        api_pb2.PreStartContainerRequest(devices_ids=[f"{GPU}-p0"]), timeout=5
    )
    assert isinstance(response, api_pb2.PreStartContainerResponse)


def test_missing_render_node_turns_partition_unhealthy_and_back_within_2_s(env: Env) -> None:
    render = env.dev / "dri" / "renderD130"
    render.unlink()
    started = time.monotonic()
    devices = env.kubelet.wait_for_devices(lambda d: health_of(d, f"{GPU}-p2") == "Unhealthy", timeout=2)
    assert time.monotonic() - started < 2
    assert sum(1 for d in devices if d.health == "Unhealthy") == 1
    assert env.metric("aim_deviceplugin_partitions_healthy") == 62
    render.write_text("")
    env.kubelet.wait_for_devices(lambda d: health_of(d, f"{GPU}-p2") == "Healthy", timeout=2)


def test_health_polling_survives_an_unexpected_error(
    env: Env, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = env.runner.state.refresh_health
    failures = []

    def fail_once() -> bool:
        if not failures:
            failures.append(1)
            raise PermissionError("[Errno 13] Permission denied: '/dev/dri'")
        return original()

    monkeypatch.setattr(env.runner.state, "refresh_health", fail_once)
    assert wait_until(lambda: bool(failures), timeout=2)
    (env.dev / "dri" / "renderD130").unlink()
    env.kubelet.wait_for_devices(lambda d: health_of(d, f"{GPU}-p2") == "Unhealthy", timeout=2)
    assert any("poll failed" in r.getMessage() and "will retry" in r.getMessage() for r in caplog.records)


def test_vanished_kfd_node_turns_partition_unhealthy_and_keeps_it_advertised(env: Env) -> None:
    nodes = env.sysfs / KFD_TOPOLOGY / "nodes"
    node3 = nodes / "3"  # drm_render_minor 129 = 0000:05:00.0 partition 1
    parked = env.sysfs / "parked-node-3"
    node3.rename(parked)
    devices = env.kubelet.wait_for_devices(lambda d: health_of(d, f"{GPU}-p1") == "Unhealthy", timeout=2)
    assert len(devices) == 63
    time.sleep(0.3)  # the changed node list triggers a re-discovery meanwhile
    assert health_of(env.kubelet.latest or [], f"{GPU}-p1") == "Unhealthy"
    assert len(env.kubelet.latest or []) == 63
    parked.rename(node3)
    env.kubelet.wait_for_devices(lambda d: health_of(d, f"{GPU}-p1") == "Healthy", timeout=2)


def test_kubelet_restart_recreates_socket_and_reregisters_within_2_s(env: Env) -> None:
    socket = env.config.socket_path
    env.kubelet.latest = None
    env.kubelet.restart()
    restarted = time.monotonic()
    assert wait_until(lambda: len(env.kubelet.registrations) == 2, timeout=2)
    assert env.kubelet.registered_at[1] - restarted < 2
    assert socket.is_socket()
    devices = env.kubelet.wait_for_devices(lambda d: len(d) == 63, timeout=2)
    assert {d.health for d in devices} == {"Healthy"}
    response = env.stub.Allocate(
        api_pb2.AllocateRequest(
            container_requests=[api_pb2.ContainerAllocateRequest(devices_ids=[f"{GPU}-p0"])]
        ),
        timeout=5,
    )
    assert len(response.container_responses) == 1
    assert env.metric('aim_deviceplugin_registrations_total{result="ok"}') == 2


def test_closed_list_and_watch_leads_to_re_registration(env: Env) -> None:
    env.kubelet.close_stream()
    assert wait_until(lambda: len(env.kubelet.registrations) == 2, timeout=4)
    env.kubelet.wait_for_devices(lambda d: len(d) == 63, timeout=2)
    time.sleep(1.5)  # a re-registration does not trigger another one
    assert len(env.kubelet.registrations) == 2


def _repartition_to_spx(sysfs: Path, gpu_bus: int) -> None:
    """Make GPU <bus> look like SPX: one KFD node with all 304 CUs, mode file SPX."""
    nodes = sysfs / KFD_TOPOLOGY / "nodes"
    for node in list(nodes.iterdir()):
        props = (node / "properties").read_text()
        location = next(int(line.split()[1]) for line in props.splitlines() if line.startswith("location_id"))
        if (location >> 8) & 0xFF != gpu_bus:
            continue
        if location & 7:
            shutil.rmtree(node)
        else:
            (node / "properties").write_text(props.replace("simd_count 152", "simd_count 1216"))
    (sysfs / "bus/pci/devices" / f"0000:{gpu_bus:02x}:00.0" / "current_compute_partition").write_text("SPX\n")


def test_repartitioning_shows_up_in_list_and_watch_and_labels_without_restart(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    assert wait_until(lambda: bool(env.patcher.applied), timeout=2)
    assert env.patcher.applied[-1][contract.LABEL_COUNT] == "63"
    assert env.patcher.applied[-1][contract.LABEL_HOMOGENEOUS] == "true"
    _repartition_to_spx(env.sysfs, 0x05)  # KFD node list changes: noticed without SIGHUP
    devices = env.kubelet.wait_for_devices(lambda d: len(d) == 56, timeout=2)
    ids = {d.ID for d in devices}
    assert f"{GPU}-p0" in ids and f"{GPU}-p1" not in ids
    assert health_of(devices, f"{GPU}-p0") == "Healthy"
    assert wait_until(lambda: env.patcher.applied[-1][contract.LABEL_COUNT] == "56", timeout=2)
    final = env.patcher.applied[-1]
    assert final[contract.LABEL_HOMOGENEOUS] == "false"
    assert any(
        r.levelname == "WARNING" and "different partition modes" in r.getMessage() for r in caplog.records
    )
    assert final[contract.LABEL_MEMORY_MIB] == "24576"  # smallest partition
    assert final[contract.LABEL_COMPUTE_MODE] == "mixed"
    response = env.stub.Allocate(
        api_pb2.AllocateRequest(
            container_requests=[api_pb2.ContainerAllocateRequest(devices_ids=[f"{GPU}-p0"])]
        ),
        timeout=5,
    )
    assert response.container_responses[0].envs["AMD_GPU_PARTITION_CU_COUNT"] == "304"
    assert response.container_responses[0].envs["AMD_GPU_PARTITION_MEMORY_MIB"] == str(192 * 1024)


def test_metrics_report_partitions_and_registrations_over_http(env: Env) -> None:
    port = env.metrics.serve(0, addr="127.0.0.1")  # prometheus-client's own server
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert env.metric('aim_deviceplugin_partitions_advertised{node="node-a",product="MI300X"}', text) == 63
    assert env.metric('aim_deviceplugin_partitions_healthy{node="node-a",product="MI300X"}', text) == 63
    assert env.metric('aim_deviceplugin_partitions_allocated{node="node-a",product="MI300X"}', text) == 0
    assert env.metric('aim_deviceplugin_partitions_lost{node="node-a"}', text) == 0
    assert env.metric('aim_deviceplugin_registered{node="node-a"}', text) == 1
    assert env.metric('aim_deviceplugin_registrations_total{result="ok"}', text) == 1
    assert env.metric("aim_deviceplugin_discovery_errors_total", text) == 0


def test_allocated_metric_follows_the_kubelet_checkpoint(env: Env) -> None:
    checkpoint = {
        "Data": {
            "PodDeviceEntries": [
                {
                    "PodUID": "u1",
                    "ContainerName": "c",
                    "ResourceName": "amd.com/gpu-partition",
                    "DeviceIDs": {"0": [f"{GPU}-p0", f"{GPU}-p1"]},
                    "AllocResp": "",
                },
                {
                    "PodUID": "u2",
                    "ContainerName": "c",
                    "ResourceName": "amd.com/gpu",
                    "DeviceIDs": {"0": ["other"]},
                    "AllocResp": "",
                },
            ],
            "RegisteredDevices": {},
        },
        "Checksum": 1,
    }
    import json

    (env.kubelet.dir / "kubelet_internal_checkpoint").write_text(json.dumps(checkpoint))
    assert wait_until(lambda: env.metric("aim_deviceplugin_partitions_allocated") == 2, timeout=2)
    # the kubelet rewrites the checkpoint on the next allocation: the metric follows the new file
    checkpoint["Data"]["PodDeviceEntries"][0]["DeviceIDs"]["0"].append(f"{GPU}-p2")
    (env.kubelet.dir / "kubelet_internal_checkpoint").write_text(json.dumps(checkpoint))
    assert wait_until(lambda: env.metric("aim_deviceplugin_partitions_allocated") == 3, timeout=2)
    # and a release (file gone after a kubelet reset) drops back to what Allocate saw (none here)
    (env.kubelet.dir / "kubelet_internal_checkpoint").unlink()
    assert wait_until(lambda: env.metric("aim_deviceplugin_partitions_allocated") == 0, timeout=2)


def test_rediscovery_request_picks_up_a_mode_file_change(env: Env) -> None:
    """SIGHUP (runner.request_rediscovery) re-reads files the topology fingerprint does not cover."""
    assert wait_until(lambda: bool(env.patcher.applied), timeout=2)
    for pci in (env.sysfs / "bus/pci/devices").iterdir():
        (pci / "current_memory_partition").write_text("NPS1\n")
    env.runner.request_rediscovery()
    assert wait_until(lambda: env.patcher.applied[-1][contract.LABEL_MEMORY_MODE] == "NPS1", timeout=2)
    response = env.stub.Allocate(
        api_pb2.AllocateRequest(
            container_requests=[api_pb2.ContainerAllocateRequest(devices_ids=[f"{GPU}-p0"])]
        ),
        timeout=5,
    )
    assert response.container_responses[0].envs["AMD_GPU_PARTITION_MEMORY_MODE"] == "NPS1"


def test_plugin_started_before_the_kubelet_registers_when_kubelet_sock_appears(short_tmp: Path) -> None:
    kubelet = TestKubelet(short_tmp / "kubelet")
    kubelet.dir.mkdir(parents=True)
    sysfs = lay_capture(short_tmp / "sys", "mi210-xgmi")
    config = PluginConfig(
        sysfs_root=sysfs,
        dev_root=lay_dev_root(short_tmp / "dev", sysfs),
        kubelet_dir=kubelet.dir,
        node_labels=False,
        health_interval_s=0.1,
    )
    runner = PluginRunner(config)
    runner.start()
    try:
        time.sleep(0.5)
        assert config.socket_path.is_socket() and not runner.registered.is_set()
        kubelet.start()
        assert wait_until(lambda: len(kubelet.registrations) == 1, timeout=2)
        devices = kubelet.wait_for_devices(lambda d: len(d) == 8)
        assert {d.ID for d in devices} == {
            f"0000:{bus:02x}:00.0-p0" for bus in (0x03, 0x26, 0x43, 0x63, 0x83, 0xA3, 0xC3, 0xE3)
        }
    finally:
        runner.shutdown()
        kubelet.stop()


def _replace_sysfs(env: Env, capture: str) -> None:
    """Swap the whole sysfs tree under the running plugin (other GPUs, other partitions)."""
    fresh = lay_capture(
        env.sysfs.parent / "sys-next", capture, compute_mode="CPX", memory_mode="NPS1", numa=True, xcp_separator="_"
    )
    retired = env.sysfs.rename(env.sysfs.parent / "sys-retired")  # two renames: no half-deleted tree
    fresh.rename(env.sysfs)
    shutil.rmtree(retired)


def test_all_gpus_replaced_under_a_running_plugin_leave_list_and_watch_and_labels(env: Env) -> None:
    """Issue 7: 8 GPUs x 63 CPX partitions (24 GiB) replaced by 8 other GPUs x 32 partitions of
    48 GiB. Without a restart ListAndWatch and the labels describe only the 32 new partitions."""
    assert wait_until(
        lambda: bool(env.patcher.applied) and env.patcher.applied[-1][contract.LABEL_COUNT] == "63", timeout=10
    )
    old_ids = {d.ID for d in env.kubelet.latest or []}
    _replace_sysfs(env, "mi308x")
    devices = env.kubelet.wait_for_devices(lambda d: len(d) == 32, timeout=10)
    assert {d.health for d in devices} == {"Healthy"}
    assert not old_ids & {d.ID for d in devices}
    assert wait_until(lambda: env.patcher.applied[-1][contract.LABEL_COUNT] == "32", timeout=10)
    labels_now = env.patcher.applied[-1]
    assert labels_now[contract.LABEL_PRODUCT] == "MI308X"
    assert labels_now[contract.LABEL_HOMOGENEOUS] == "true"
    assert labels_now[contract.LABEL_MEMORY_MIB] == str(51_522_830_336 // 2**20)  # 48 GiB - 16 MiB
    read_back = contract.read_node_labels({k: v for k, v in labels_now.items() if v is not None})
    assert read_back.count == 32 and read_back.defects == ()
    assert env.metric('aim_deviceplugin_partitions_advertised{node="node-a",product="MI308X"}') == 32
    assert env.metric('aim_deviceplugin_partitions_healthy{node="node-a",product="MI308X"}') == 32


def test_partition_held_by_a_pod_stays_unhealthy_until_released_then_leaves(env: Env) -> None:
    held = f"{GPU}-p0"
    checkpoint = env.kubelet.dir / "kubelet_internal_checkpoint"
    entry = {"ResourceName": "amd.com/gpu-partition", "DeviceIDs": {"0": [held]}}
    checkpoint.write_text(json.dumps({"Data": {"PodDeviceEntries": [entry]}}))
    allocated = 'aim_deviceplugin_partitions_allocated{node="node-a",product="MI300X"}'
    assert wait_until(lambda: env.metric(allocated) == 1, timeout=10)
    _replace_sysfs(env, "mi308x")
    devices = env.kubelet.wait_for_devices(
        lambda d: len(d) == 33 and sum(i.ID.startswith("0000:0a:00.0-") for i in d) == 4, timeout=10
    )
    assert health_of(devices, held) == "Unhealthy"
    assert wait_until(lambda: env.patcher.applied[-1][contract.LABEL_COUNT] == "32", timeout=10)
    assert env.patcher.applied[-1][contract.LABEL_PRODUCT] == "MI308X"  # the held one never counts
    checkpoint.write_text(json.dumps({"Data": {"PodDeviceEntries": []}}))
    devices = env.kubelet.wait_for_devices(lambda d: len(d) == 32, timeout=10)
    assert held not in {d.ID for d in devices}
