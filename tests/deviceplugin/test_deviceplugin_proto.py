"""The committed stubs match api.proto, and api.proto matches kubelet's v1beta1 wire contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deviceplugin.proto import api_pb2, regenerate
from tests.deviceplugin.proto_stamps import without_version_stamps


def test_committed_stubs_are_what_protoc_generates_now(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    fresh = regenerate.regenerate(tmp_path)
    for path in fresh:
        committed = regenerate.PROTO_DIR / path.name
        assert without_version_stamps(committed.read_text()) == without_version_stamps(path.read_text()), (
            f"{committed.name} is stale: run `python -m deviceplugin.proto.regenerate`"
        )


def test_installed_runtimes_satisfy_the_committed_stubs() -> None:
    """The stubs' own version checks pass at import; this names the floor they demand."""
    import grpc
    from google.protobuf import __version__ as protobuf_version

    text = (regenerate.PROTO_DIR / "api_pb2.py").read_text()
    stamp = re.search(r"Protobuf Python Version: (\d+)\.(\d+)\.(\d+)", text)
    assert stamp is not None
    demanded = tuple(int(x) for x in stamp.groups())
    assert tuple(int(x) for x in protobuf_version.split(".")[:3]) >= demanded
    grpc_stamp = re.search(
        r"GRPC_GENERATED_VERSION = '(\d+)\.(\d+)\.(\d+)'",
        (regenerate.PROTO_DIR / "api_pb2_grpc.py").read_text(),
    )
    assert grpc_stamp is not None
    assert tuple(int(x) for x in grpc.__version__.split(".")[:3]) >= tuple(
        int(x) for x in grpc_stamp.groups()
    )


# (message, field, number) from k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1/api.proto.
KUBELET_FIELDS = [
    ("DevicePluginOptions", "pre_start_required", 1),
    ("DevicePluginOptions", "get_preferred_allocation_available", 2),
    ("RegisterRequest", "version", 1),
    ("RegisterRequest", "endpoint", 2),
    ("RegisterRequest", "resource_name", 3),
    ("RegisterRequest", "options", 4),
    ("ListAndWatchResponse", "devices", 1),
    ("TopologyInfo", "nodes", 1),
    ("NUMANode", "ID", 1),
    ("Device", "ID", 1),
    ("Device", "health", 2),
    ("Device", "topology", 3),
    ("PreStartContainerRequest", "devices_ids", 1),
    ("PreferredAllocationRequest", "container_requests", 1),
    ("ContainerPreferredAllocationRequest", "available_deviceIDs", 1),
    ("ContainerPreferredAllocationRequest", "must_include_deviceIDs", 2),
    ("ContainerPreferredAllocationRequest", "allocation_size", 3),
    ("PreferredAllocationResponse", "container_responses", 1),
    ("ContainerPreferredAllocationResponse", "deviceIDs", 1),
    ("AllocateRequest", "container_requests", 1),
    ("ContainerAllocateRequest", "devices_ids", 1),
    ("CDIDevice", "name", 1),
    ("AllocateResponse", "container_responses", 1),
    ("ContainerAllocateResponse", "envs", 1),
    ("ContainerAllocateResponse", "mounts", 2),
    ("ContainerAllocateResponse", "devices", 3),
    ("ContainerAllocateResponse", "annotations", 4),
    ("ContainerAllocateResponse", "cdi_devices", 5),
    ("Mount", "container_path", 1),
    ("Mount", "host_path", 2),
    ("Mount", "read_only", 3),
    ("DeviceSpec", "container_path", 1),
    ("DeviceSpec", "host_path", 2),
    ("DeviceSpec", "permissions", 3),
]


@pytest.mark.parametrize("message,field,number", KUBELET_FIELDS, ids=lambda v: str(v))
def test_field_numbers_match_kubelet(message: str, field: str, number: int) -> None:
    descriptor = api_pb2.DESCRIPTOR.message_types_by_name[message]
    assert descriptor.fields_by_name[field].number == number
    assert api_pb2.DESCRIPTOR.package == "v1beta1"


def test_services_and_methods_match_kubelet() -> None:
    services = api_pb2.DESCRIPTOR.services_by_name
    assert [m.full_name for m in services["Registration"].methods] == ["v1beta1.Registration.Register"]
    methods = {m.name: m for m in services["DevicePlugin"].methods}
    assert list(methods) == [
        "GetDevicePluginOptions",
        "ListAndWatch",
        "GetPreferredAllocation",
        "Allocate",
        "PreStartContainer",
    ]
    assert methods["ListAndWatch"].server_streaming is True
    assert methods["Allocate"].input_type.name == "AllocateRequest"
    assert len(api_pb2.DESCRIPTOR.message_types_by_name) == 20
