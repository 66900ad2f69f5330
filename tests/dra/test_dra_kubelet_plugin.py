"""The kubelet side of the DRA driver over real gRPC on unix sockets: a test kubelet made from the
stubs of the kubelet's own protos (k8s.io/kubelet/pkg/apis/pluginregistration/v1 and
.../dra/v1, deviceplugin/dra/proto) finds the registration socket, reads the plugin info, then calls
NodePrepareResources/NodeUnprepareResources with claims shaped as resource.k8s.io/v1 returns them
(the real API server's claim, allocated by the real scheduler, is in test_dra_controlplane.py)."""

from __future__ import annotations

import functools
import json
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest

from deviceplugin.discovery import kfd_nodes_dir
from deviceplugin.dra.__main__ import check_inventory
from deviceplugin.dra.cdi import CDI_KIND, SPEC_FILE, cdi_spec
from deviceplugin.dra.kubelet_plugin import (
    HEALTH_WAKE_S,
    MAX_HEALTH_STREAMS,
    ClaimReadError,
    DraPluginServicer,
    HealthServicer,
    serve,
)
from deviceplugin.dra.node_devices import NodeDevices
from deviceplugin.dra.proto import (
    dra_health_v1alpha1_pb2,
    dra_health_v1alpha1_pb2_grpc,
    dra_v1_pb2,
    dra_v1_pb2_grpc,
    pluginregistration_pb2,
    pluginregistration_pb2_grpc,
)
from deviceplugin.dra.slices import device_name
from deviceplugin.health import render_node_path
from deviceplugin.inventory import Inventory
from sizing.contract import DRA_DRIVER
from tests.controlplane.processes import wait_until
from tests.deviceplugin.proto_stamps import without_version_stamps
from tests.dra.test_dra_controlplane import inventory

NODE = "node-a"
DEVICES = [device_name(p) for p in inventory().partitions]


def claim(uid: str, results: list[dict[str, str]] | None) -> dict[str, Any]:
    status: dict[str, Any] = {} if results is None else {"allocation": {"devices": {"results": results}}}
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": f"c-{uid}", "namespace": "team-a", "uid": uid}, "status": status}


def ours(device: str, request: str = "gpu/below-65536mi", pool: str = NODE) -> dict[str, str]:
    return {"request": request, "driver": DRA_DRIVER, "pool": pool, "device": device}


CLAIMS: dict[str, Mapping[str, Any]] = {
    "c-ok": claim("ok", [ours(DEVICES[3])]),
    "c-two": claim("two", [ours(DEVICES[3], "gpu/x"), ours(DEVICES[4], "gpu/x"),
                           {"request": "nic", "driver": "nic.example.com", "pool": NODE, "device": "eth0"}]),
    "c-pending": claim("pending", None),
    "c-elsewhere": claim("elsewhere", [ours(DEVICES[3], pool="node-b")]),
    "c-gone": claim("gone", [ours("gpu-0000-99-00-0-p0")]),
}


def read_claim(namespace: str, name: str) -> Mapping[str, Any]:
    if name == "c-unreadable":
        raise ClaimReadError(f"GET resourceclaim {namespace}/{name}: HTTP 503 Service Unavailable")
    return CLAIMS[name]


@pytest.fixture
def kubelet() -> Iterator[tuple[Path, Path, NodeDevices]]:
    # A short directory: a unix socket path holds at most 107 bytes, pytest's tmp_path is longer.
    with tempfile.TemporaryDirectory(prefix="aim-dra-") as short:
        yield from _serving(Path(short))


def _serving(tmp_path: Path) -> Iterator[tuple[Path, Path, NodeDevices]]:
    devices = NodeDevices(tmp_path / "cdi")
    devices.update(inventory())
    server, _ = serve(DraPluginServicer(NODE, read_claim, devices), tmp_path / "plugins" / DRA_DRIVER,
                      tmp_path / "plugins_registry")
    try:
        yield tmp_path / "plugins_registry" / f"{DRA_DRIVER}-reg.sock", tmp_path / "plugins" / DRA_DRIVER, devices
    finally:
        server.stop(0).wait()


def test_registration_names_the_driver_and_the_v1_service(kubelet: tuple[Path, Path, NodeDevices]) -> None:
    registration_socket, plugin_dir, _ = kubelet
    with grpc.insecure_channel(f"unix://{registration_socket}") as channel:
        stub = pluginregistration_pb2_grpc.RegistrationStub(channel)
        info = stub.GetInfo(pluginregistration_pb2.InfoRequest(), timeout=5)
        stub.NotifyRegistrationStatus(pluginregistration_pb2.RegistrationStatus(plugin_registered=True), timeout=5)
    assert (info.type, info.name, list(info.supported_versions)) == ("DRAPlugin", DRA_DRIVER, ["v1.DRAPlugin"])
    assert info.endpoint == str(plugin_dir / "dra.sock") and Path(info.endpoint).is_socket()


def prepare(endpoint: Path, *uids: str) -> dra_v1_pb2.NodePrepareResourcesResponse:
    with grpc.insecure_channel(f"unix://{endpoint}") as channel:
        request = dra_v1_pb2.NodePrepareResourcesRequest(
            claims=[dra_v1_pb2.Claim(namespace="team-a", name=f"c-{u}", uid=u) for u in uids])
        return dra_v1_pb2_grpc.DRAPluginStub(channel).NodePrepareResources(request, timeout=5)


def test_prepare_answers_the_cdi_id_of_the_allocated_partition(kubelet: tuple[Path, Path, NodeDevices]) -> None:
    _, plugin_dir, _ = kubelet
    response = prepare(plugin_dir / "dra.sock", "ok", "two")
    ok = response.claims["ok"]
    assert ok.error == ""
    (found,) = ok.devices
    assert (list(found.request_names), found.pool_name, found.device_name) == (["gpu/below-65536mi"], NODE, DEVICES[3])
    assert list(found.cdi_device_ids) == [f"{CDI_KIND}={DEVICES[3]}"]
    assert not found.HasField("share_id")  # a whole partition, not a share of consumable capacity (1.36)
    two = response.claims["two"]
    assert two.error == "" and [d.device_name for d in two.devices] == [DEVICES[3], DEVICES[4]]


@pytest.mark.parametrize(("uid", "words"), [
    ("pending", "is not allocated"),
    ("elsewhere", "pool 'node-b'"),
    ("gone", "is not a partition of node node-a"),
    ("unreadable", "HTTP 503"),
])
def test_a_claim_that_cannot_be_prepared_gets_an_error_not_a_failed_call(
        kubelet: tuple[Path, Path, NodeDevices], uid: str, words: str) -> None:
    _, plugin_dir, _ = kubelet
    response = prepare(plugin_dir / "dra.sock", uid, "ok")
    assert words in response.claims[uid].error and not response.claims[uid].devices
    assert response.claims["ok"].error == ""  # one bad claim does not spoil the others


def test_uid_mismatch_is_an_error(kubelet: tuple[Path, Path, NodeDevices]) -> None:
    _, plugin_dir, _ = kubelet
    with grpc.insecure_channel(f"unix://{plugin_dir / 'dra.sock'}") as channel:
        request = dra_v1_pb2.NodePrepareResourcesRequest(claims=[dra_v1_pb2.Claim(namespace="team-a", name="c-ok",
                                                                                  uid="other")])
        response = dra_v1_pb2_grpc.DRAPluginStub(channel).NodePrepareResources(request, timeout=5)
    assert "re-created" in response.claims["other"].error


def test_repartitioned_node_refuses_a_stale_device(kubelet: tuple[Path, Path, NodeDevices]) -> None:
    _, plugin_dir, devices = kubelet
    devices.update(Inventory())  # every partition gone (e.g. the GPU was repartitioned)
    assert "is not a partition" in prepare(plugin_dir / "dra.sock", "ok").claims["ok"].error


def test_unprepare_answers_every_claim(kubelet: tuple[Path, Path, NodeDevices]) -> None:
    _, plugin_dir, _ = kubelet
    with grpc.insecure_channel(f"unix://{plugin_dir / 'dra.sock'}") as channel:
        request = dra_v1_pb2.NodeUnprepareResourcesRequest(claims=[dra_v1_pb2.Claim(namespace="n", name="a", uid="u1")])
        response = dra_v1_pb2_grpc.DRAPluginStub(channel).NodeUnprepareResources(request, timeout=5)
    assert set(response.claims) == {"u1"} and response.claims["u1"].error == ""


def test_cdi_spec_names_each_partitions_render_node_and_kfd(kubelet: tuple[Path, Path, NodeDevices]) -> None:
    _, _, devices = kubelet
    written = json.loads((devices.cdi_dir / SPEC_FILE).read_text())
    assert written == cdi_spec(inventory())
    assert written["kind"] == CDI_KIND and written["containerEdits"] == {"deviceNodes": [{"path": "/dev/kfd"}]}
    by_name = {d["name"]: d for d in written["devices"]}
    first = inventory().partitions[0]
    assert by_name[device_name(first)]["containerEdits"]["deviceNodes"] == [
        {"path": f"/dev/dri/renderD{first.render_minor}"}]
    assert len(by_name) == len(inventory().partitions)


def test_committed_stubs_are_what_the_protos_generate(tmp_path: Path) -> None:
    from deviceplugin.dra.proto import regenerate

    fresh = regenerate.regenerate(tmp_path)
    assert len(fresh) == 9
    for path in fresh:
        committed = (regenerate.PROTO_DIR / path.name).read_text()
        assert without_version_stamps(path.read_text()) == without_version_stamps(committed), f"{path.name} is stale"


def test_wire_names_are_the_kubelets() -> None:
    """The full method names the kubelet calls (api.pb.go / api_grpc.pb.go of Kubernetes 1.34)."""
    dra = dra_v1_pb2.DESCRIPTOR.services_by_name["DRAPlugin"]
    assert dra.full_name == "k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin"
    assert {m.name for m in dra.methods} == {"NodePrepareResources", "NodeUnprepareResources"}
    registration = pluginregistration_pb2.DESCRIPTOR.services_by_name["Registration"]
    assert registration.full_name == "pluginregistration.Registration"


# The kubelet's messages, field name -> number, in k8s.io/kubelet/pkg/apis/dra/v1/api.proto of
# Kubernetes v1.34.9 and v1.36.2 (microshift release-4.21 and main): 1.36 added Device.share_id.
KUBELET_DRA_V1_FIELDS = {
    "v1.34.9": {"Claim": {"namespace": 1, "uid": 2, "name": 3},
                "Device": {"request_names": 1, "pool_name": 2, "device_name": 3, "cdi_device_ids": 4},
                "NodePrepareResourceResponse": {"devices": 1, "error": 2},
                "NodeUnprepareResourceResponse": {"error": 1},
                "NodePrepareResourcesRequest": {"claims": 1}, "NodePrepareResourcesResponse": {"claims": 1},
                "NodeUnprepareResourcesRequest": {"claims": 1}, "NodeUnprepareResourcesResponse": {"claims": 1}},
}
KUBELET_DRA_V1_FIELDS["v1.36.2"] = {**KUBELET_DRA_V1_FIELDS["v1.34.9"], "Device": {
    **KUBELET_DRA_V1_FIELDS["v1.34.9"]["Device"], "share_id": 5}}


@pytest.mark.parametrize("version", sorted(KUBELET_DRA_V1_FIELDS))
def test_every_kubelet_field_is_in_our_proto_with_its_number(version: str) -> None:
    """Our dra_v1.proto has every field of each kubelet's (1.36's is a superset of 1.34's, so one
    proto serves both; a field 1.34 does not know is skipped by its decoder)."""
    for message, fields in KUBELET_DRA_V1_FIELDS[version].items():
        ours = {f.name: f.number for f in dra_v1_pb2.DESCRIPTOR.message_types_by_name[message].fields}
        assert {name: ours.get(name) for name in fields} == fields, message


# --- the health stream 1.36 kubelets open (v1alpha1.DRAResourceHealth, ResourceHealthStatus) ---------

def node_files(root: Path) -> tuple[Path, Path]:
    """A sysfs and a /dev with every partition's KFD node and render node, as the health check reads them."""
    sysfs, dev = root / "sys", root / "dev"
    for partition in inventory().partitions:
        node = kfd_nodes_dir(sysfs) / str(partition.kfd_node)
        node.mkdir(parents=True)
        (node / "properties").write_text("simd_count 1\n")
        render_node_path(dev, partition).parent.mkdir(parents=True, exist_ok=True)
        render_node_path(dev, partition).touch()
    return sysfs, dev


@pytest.fixture
def health_kubelet() -> Iterator[tuple[Path, NodeDevices, HealthServicer, Path]]:
    with tempfile.TemporaryDirectory(prefix="aim-dra-") as short:
        root = Path(short)
        sysfs, dev = node_files(root)
        devices = NodeDevices(root / "cdi", functools.partial(check_inventory, dev_root=dev, sysfs_root=sysfs))
        devices.update(inventory())
        health = HealthServicer(NODE, devices, timeout_s=91)
        server, _ = serve(DraPluginServicer(NODE, read_claim, devices), root / "plugin", root / "registry", health)
        try:
            yield root / "plugin" / "dra.sock", devices, health, dev
        finally:
            server.stop(0).wait()


def test_health_stream_sends_every_device_then_each_discovery(
        health_kubelet: tuple[Path, NodeDevices, HealthServicer, Path]) -> None:
    endpoint, devices, _, dev = health_kubelet
    with grpc.insecure_channel(f"unix://{endpoint}") as channel:
        stream = dra_health_v1alpha1_pb2_grpc.DRAResourceHealthStub(channel).NodeWatchResources(
            dra_health_v1alpha1_pb2.NodeWatchResourcesRequest(), timeout=10)
        first = next(stream)
        assert [d.device.device_name for d in first.devices] == DEVICES
        assert {(d.device.pool_name, d.health, d.health_check_timeout_seconds) for d in first.devices} == {
            (NODE, dra_health_v1alpha1_pb2.HEALTHY, 91)}
        gone = inventory().partitions[3]
        render_node_path(dev, gone).unlink()  # the render node of one partition disappears
        devices.update(inventory())
        second = {d.device.device_name: d for d in next(stream).devices}
        stream.cancel()
    assert second[DEVICES[3]].health == dra_health_v1alpha1_pb2.UNHEALTHY
    assert "disappeared" in second[DEVICES[3]].message
    assert second[DEVICES[0]].health == dra_health_v1alpha1_pb2.HEALTHY and len(second) == len(DEVICES)
    assert second[DEVICES[3]].last_updated_time >= first.devices[3].last_updated_time > 0


def test_health_streams_are_bounded_and_end_with_the_kubelets_call(
        health_kubelet: tuple[Path, NodeDevices, HealthServicer, Path]) -> None:
    endpoint, _, health, _ = health_kubelet
    with grpc.insecure_channel(f"unix://{endpoint}") as channel:
        stub = dra_health_v1alpha1_pb2_grpc.DRAResourceHealthStub(channel)
        streams = [stub.NodeWatchResources(dra_health_v1alpha1_pb2.NodeWatchResourcesRequest(), timeout=10)
                   for _ in range(MAX_HEALTH_STREAMS)]
        for stream in streams:
            next(stream)
        extra = stub.NodeWatchResources(dra_health_v1alpha1_pb2.NodeWatchResourcesRequest(), timeout=10)
        with pytest.raises(grpc.RpcError) as refused:
            next(extra)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        for stream in streams:
            stream.cancel()
        # A cancelled stream frees its worker at once (woken by the cancel, not by HEALTH_WAKE_S).
        start = time.monotonic()
        wait_until(lambda: health.open_streams == 0, 3.0, "the cancelled health streams to end")
        assert time.monotonic() - start < HEALTH_WAKE_S
        # A new stream is served again and a call is answered beside it.
        assert len(next(stub.NodeWatchResources(dra_health_v1alpha1_pb2.NodeWatchResourcesRequest(),
                                                timeout=10)).devices) == len(DEVICES)
