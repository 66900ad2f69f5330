"""Register this plugin with the kubelet (client of the kubelet's Registration service)."""

from __future__ import annotations

from pathlib import Path

import grpc

from deviceplugin.errors import RegistrationError
from deviceplugin.kubelet_api import API_VERSION
from deviceplugin.proto import api_pb2, api_pb2_grpc


def plugin_options() -> api_pb2.DevicePluginOptions:
    """What this plugin offers: no PreStartContainer, GetPreferredAllocation yes. Sent in
    Register and answered by GetDevicePluginOptions; one source so the two always agree."""
    return api_pb2.DevicePluginOptions(pre_start_required=False, get_preferred_allocation_available=True)


def register(kubelet_socket: Path, *, endpoint: str, resource_name: str, timeout_s: float) -> None:
    """Call Registration/Register; raises RegistrationError with the kubelet's reason."""
    request = api_pb2.RegisterRequest(
        version=API_VERSION,
        endpoint=endpoint,
        resource_name=resource_name,
        options=plugin_options(),
    )
    try:
        with grpc.insecure_channel(f"unix://{kubelet_socket.absolute()}") as channel:
            api_pb2_grpc.RegistrationStub(channel).Register(request, timeout=timeout_s)
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        raise RegistrationError(
            f"Register {resource_name} at {kubelet_socket} failed: {code.name if code else 'error'}: {details}"
        ) from exc
