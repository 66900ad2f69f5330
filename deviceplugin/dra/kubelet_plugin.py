"""The kubelet side of the DRA driver: plugin registration (pluginregistration v1, socket in
/var/lib/kubelet/plugins_registry), the ``v1.DRAPlugin`` service (k8s.io/kubelet/pkg/apis/dra/v1)
on the endpoint it registers and, on the same endpoint, the ``v1alpha1.DRAResourceHealth`` stream
(k8s.io/kubelet/pkg/apis/dra-health/v1alpha1) that 1.36 kubelets open (ResourceHealthStatus, beta
and on in 1.36). gRPC in, ``prepare`` (pure) for each claim, gRPC out.

NodePrepareResources reads each claim from the API server (the kubelet sends only its name and
UID) and answers the CDI IDs of our devices in it (``cdi.py``; the spec is written by the
publishing loop for every partition, so preparing writes nothing). NodeUnprepareResources has
nothing to undo. A claim that cannot be read or prepared gets an error string; the call itself
never fails.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent import futures
from pathlib import Path
from typing import Any, Final, Protocol

import grpc

from deviceplugin.dra.node_devices import HealthSnapshot, NodeDevices
from deviceplugin.dra.prepare import prepare
from deviceplugin.dra.proto import (
    dra_health_v1alpha1_pb2,
    dra_health_v1alpha1_pb2_grpc,
    dra_v1_pb2,
    dra_v1_pb2_grpc,
    pluginregistration_pb2,
    pluginregistration_pb2_grpc,
)
from sizing.contract import DRA_DRIVER

logger = logging.getLogger(__name__)

PLUGIN_TYPE: Final = "DRAPlugin"  # pluginregistration v1 constants.go
SERVICE: Final = "v1.DRAPlugin"  # k8s.io/kubelet/pkg/apis/dra/v1 DRAPluginService
DEFAULT_REGISTRY_DIR: Final = Path("/var/lib/kubelet/plugins_registry")
DEFAULT_PLUGIN_DIR: Final = Path("/var/lib/kubelet/plugins") / DRA_DRIVER
# The kubelet sends the claims of one pod: a few. Far more is not a kubelet.
MAX_CLAIMS_PER_CALL: Final = 256
# The kubelet holds one health stream; two allow a reconnect while the old one winds down. Each
# holds a worker thread, so the workers are the calls' plus the streams'.
MAX_HEALTH_STREAMS: Final = 2
GRPC_WORKERS: Final = 4 + MAX_HEALTH_STREAMS  # the kubelet calls one pod at a time per driver
# How often an idle health stream checks that the kubelet still listens (a cancel wakes it at once).
HEALTH_WAKE_S: Final = 5.0


class ClaimReader(Protocol):
    def __call__(self, namespace: str, name: str) -> Mapping[str, Any]: ...


class ClaimReadError(Exception):
    """The claim could not be read; the message says why."""


def api_claim_reader(api_client: Any) -> ClaimReader:
    """Reads a ResourceClaim as plain JSON with the kubernetes client (resource.k8s.io/v1)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from deviceplugin.k8s import REQUEST_TIMEOUT_S

    api = client.ResourceV1Api(api_client)

    def read(namespace: str, name: str) -> Mapping[str, Any]:
        try:
            # Plain JSON (_preload_content=False): the client's models may lag the API's fields.
            response: Any = api.read_namespaced_resource_claim(name, namespace, _preload_content=False,
                                                               _request_timeout=REQUEST_TIMEOUT_S)
            document = json.loads(response.data)
        except ApiException as exc:
            raise ClaimReadError(f"GET resourceclaim {namespace}/{name}: HTTP {exc.status} {exc.reason}") from exc
        except (OSError, ValueError) as exc:
            raise ClaimReadError(f"GET resourceclaim {namespace}/{name}: {exc}") from exc
        if not isinstance(document, dict):
            raise ClaimReadError(f"GET resourceclaim {namespace}/{name}: the answer is not an object")
        return document

    return read


class DraPluginServicer(dra_v1_pb2_grpc.DRAPluginServicer):
    def __init__(self, node_name: str, read_claim: ClaimReader, devices: Callable[[], Collection[str]]) -> None:
        self.node_name = node_name
        self.read_claim = read_claim
        self.devices = devices

    def NodePrepareResources(  # noqa: N802 - gRPC method name
            self, request: dra_v1_pb2.NodePrepareResourcesRequest,
                             context: grpc.ServicerContext) -> dra_v1_pb2.NodePrepareResourcesResponse:
        response = dra_v1_pb2.NodePrepareResourcesResponse()
        known = self.devices()
        for claim in list(request.claims)[:MAX_CLAIMS_PER_CALL]:
            entry = response.claims[claim.uid]
            try:
                document = self.read_claim(claim.namespace, claim.name)
            except ClaimReadError as exc:
                entry.error = f"{exc}; the kubelet will retry"
                continue
            prepared = prepare(document, claim.uid, self.node_name, known)
            if prepared.error:
                logger.warning("claim %s/%s not prepared: %s", claim.namespace, claim.name, prepared.error)
                entry.error = prepared.error
                continue
            for device in prepared.devices:
                entry.devices.add(request_names=list(device.requests), pool_name=device.pool,
                                  device_name=device.device, cdi_device_ids=list(device.cdi_ids))
            logger.info("claim %s/%s prepared: %s", claim.namespace, claim.name,
                        ", ".join(d.device for d in prepared.devices) or "no device of ours")
        if len(request.claims) > MAX_CLAIMS_PER_CALL:
            for claim in list(request.claims)[MAX_CLAIMS_PER_CALL:]:
                response.claims[claim.uid].error = f"more than {MAX_CLAIMS_PER_CALL} claims in one call"
        return response

    def NodeUnprepareResources(  # noqa: N802 - gRPC method name
            self, request: dra_v1_pb2.NodeUnprepareResourcesRequest,
                               context: grpc.ServicerContext) -> dra_v1_pb2.NodeUnprepareResourcesResponse:
        response = dra_v1_pb2.NodeUnprepareResourcesResponse()
        for claim in request.claims:
            response.claims[claim.uid].error = ""  # nothing was written for one claim: nothing to undo
        return response


class HealthServicer(dra_health_v1alpha1_pb2_grpc.DRAResourceHealthServicer):
    """Sends the health of every published device after each discovery: the complete list each
    time, as the kubelet expects, with a timeout of ``timeout_s`` after which the kubelet turns a
    device's health Unknown (a few discovery intervals: a missed discovery is not an outage)."""

    def __init__(self, node_name: str, devices: NodeDevices, timeout_s: int) -> None:
        self.node_name = node_name
        self.devices = devices
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._streams = 0

    @property
    def open_streams(self) -> int:
        with self._lock:
            return self._streams

    def response(self, snapshot: HealthSnapshot) -> dra_health_v1alpha1_pb2.NodeWatchResourcesResponse:
        status = {True: dra_health_v1alpha1_pb2.HEALTHY, False: dra_health_v1alpha1_pb2.UNHEALTHY,
                  None: dra_health_v1alpha1_pb2.UNKNOWN}
        answer = dra_health_v1alpha1_pb2.NodeWatchResourcesResponse()
        for entry in snapshot.devices:
            answer.devices.add(device=dra_health_v1alpha1_pb2.DeviceIdentifier(pool_name=self.node_name,
                                                                               device_name=entry.device),
                               health=status[entry.healthy], last_updated_time=snapshot.checked_at,
                               health_check_timeout_seconds=self.timeout_s, message=entry.message)
        return answer

    def NodeWatchResources(  # noqa: N802 - gRPC method name
            self, request: dra_health_v1alpha1_pb2.NodeWatchResourcesRequest,
            context: grpc.ServicerContext) -> Iterator[dra_health_v1alpha1_pb2.NodeWatchResourcesResponse]:
        with self._lock:
            if self._streams >= MAX_HEALTH_STREAMS:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"{MAX_HEALTH_STREAMS} health streams are open already")
            self._streams += 1
        context.add_callback(self.devices.wake)
        logger.info("the kubelet watches the health of DRA driver %s's devices", DRA_DRIVER)
        try:
            sequence = 0
            while context.is_active():
                snapshot = self.devices.next_snapshot(sequence, HEALTH_WAKE_S)
                if snapshot is not None:
                    sequence = snapshot.sequence
                    yield self.response(snapshot)
        finally:
            with self._lock:
                self._streams -= 1


class RegistrationServicer(pluginregistration_pb2_grpc.RegistrationServicer):
    def __init__(self, endpoint: Path) -> None:
        self.endpoint = endpoint
        self.registered: bool | None = None

    def GetInfo(  # noqa: N802 - gRPC method name
            self, request: pluginregistration_pb2.InfoRequest,
                context: grpc.ServicerContext) -> pluginregistration_pb2.PluginInfo:
        return pluginregistration_pb2.PluginInfo(type=PLUGIN_TYPE, name=DRA_DRIVER, endpoint=str(self.endpoint),
                                                 supported_versions=[SERVICE])

    def NotifyRegistrationStatus(  # noqa: N802 - gRPC method name
            self, request: pluginregistration_pb2.RegistrationStatus,
                                 context: grpc.ServicerContext) -> pluginregistration_pb2.RegistrationStatusResponse:
        self.registered = request.plugin_registered
        if request.plugin_registered:
            logger.info("the kubelet registered DRA driver %s at %s", DRA_DRIVER, self.endpoint)
        else:
            logger.error("the kubelet refused DRA driver %s: %s", DRA_DRIVER, request.error)
        return pluginregistration_pb2.RegistrationStatusResponse()


def serve(servicer: DraPluginServicer, plugin_dir: Path = DEFAULT_PLUGIN_DIR,
          registry_dir: Path = DEFAULT_REGISTRY_DIR,
          health: HealthServicer | None = None) -> tuple[grpc.Server, RegistrationServicer]:
    """Serve the DRAPlugin service (and the health stream) on ``plugin_dir/dra.sock`` first, then
    the registration service on ``registry_dir/<driver>-reg.sock`` (the kubelet's watcher finds it
    there and calls GetInfo); stale sockets of an earlier run are replaced."""
    endpoint = plugin_dir / "dra.sock"
    registration_socket = registry_dir / f"{DRA_DRIVER}-reg.sock"
    for directory in (plugin_dir, registry_dir):
        directory.mkdir(parents=True, exist_ok=True)
    for socket in (endpoint, registration_socket):
        socket.unlink(missing_ok=True)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=GRPC_WORKERS))
    registration = RegistrationServicer(endpoint)
    dra_v1_pb2_grpc.add_DRAPluginServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    if health is not None:
        dra_health_v1alpha1_pb2_grpc.add_DRAResourceHealthServicer_to_server(  # type: ignore[no-untyped-call]
            health, server)
    pluginregistration_pb2_grpc.add_RegistrationServicer_to_server(  # type: ignore[no-untyped-call]
        registration, server)
    server.add_insecure_port(f"unix://{endpoint}")
    server.add_insecure_port(f"unix://{registration_socket}")
    server.start()
    return server, registration
