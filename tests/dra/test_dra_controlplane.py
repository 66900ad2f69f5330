"""DRA mode end to end on a real Kubernetes 1.34 control plane (resource.k8s.io/v1): our driver
code publishes one node's partitions of four sizes as ResourceSlices, the DeviceClass of
manifests/dra selects them, the webhook (``aim-extender serve --webhook-port``, called by the API
server over TLS through manifests/dra's MutatingWebhookConfiguration) fills in the pod's
ResourceClaimTemplate, kube-controller-manager makes the claim, and kube-scheduler allocates the
smallest partition that holds the model, although the slice lists the largest first (a claim
asking only for "enough memory" gets that one: the control below). Skipped without the binaries
(tests/dra/binaries.py)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml

from deviceplugin.dra.cdi import cdi_id
from deviceplugin.dra.kubelet_plugin import DraPluginServicer, api_claim_reader, serve
from deviceplugin.dra.node_devices import NodeDevices
from deviceplugin.dra.proto import dra_v1_pb2, dra_v1_pb2_grpc
from deviceplugin.dra.publish import SlicePublisher
from deviceplugin.dra.slices import device_name
from deviceplugin.inventory import Inventory, Partition
from sizing.contract import DRA_DEVICE_CLASS, DRA_DRIVER
from tests.controlplane.harness import ControlPlane
from tests.controlplane.processes import free_port, wait_until
from webhook.dra import selector

pytestmark = pytest.mark.optional_tools

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "dra"
SYSFS = Path(__file__).resolve().parents[1] / "fixtures" / "sysfs"
GIB = 1 << 30
MODEL = "Qwen/Qwen2.5-14B-Instruct"  # fp16 at 8k context: ~34.5 GiB, more than 24, less than 48
TIMEOUT = 60.0
# One GPU per mode, the largest partitions first in the slice (lowest PCI address): a selector
# that only asks for enough memory gets the 192 GiB partition.
SHAPES = (("0000:05:00.0", "SPX", 1, 192), ("0000:15:00.0", "DPX", 2, 96), ("0000:25:00.0", "QPX", 4, 48),
          ("0000:35:00.0", "CPX", 8, 24))


def inventory() -> Inventory:
    parts = [Partition(id=f"{gpu}-p{i}", gpu=gpu, index=i, kfd_node=n * 8 + i + 1, render_minor=128 + n * 8 + i,
                       card_minor=None, memory_bytes=gib * GIB, memory_source="kfd", compute_units=304 // count,
                       numa_node=0, numa_source="sysfs", hive_id=None, compute_mode=mode, compute_mode_source="sysfs",
                       memory_mode="NPS1", memory_mode_source="sysfs", product="MI300X", device_id=0x74A1,
                       partitionable=True)
             for n, (gpu, mode, count, gib) in enumerate(SHAPES) for i in range(count)]
    return Inventory().with_partitions(parts)


def get_json(plane: ControlPlane, *args: str) -> dict[str, Any]:
    return json.loads(plane.kubectl("get", "-o", "json", *args).stdout)


def pod(namespace: str, name: str, claim: dict[str, str],
        node_selector: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            # One node: 1.34's DynamicResources plugin does not score, so between nodes the choice
            # is not the allocator's (docs/dra.md); on the node, the smallest band must win.
            "spec": {"nodeSelector": node_selector or {"kubernetes.io/hostname": "dra-node"},
                     "resourceClaims": [{"name": "gpu", **claim}],
                     "containers": [{"name": "vllm", "image": "vllm/vllm-openai:latest",
                                     "resources": {"claims": [{"name": "gpu"}]}}]}}


def allocated(plane: ControlPlane, namespace: str, pod_name: str) -> dict[str, Any]:
    """The allocation result of the pod's claim, once kube-scheduler bound the pod."""
    def bound() -> dict[str, Any] | None:
        found = get_json(plane, "pod", "-n", namespace, pod_name)
        # A claim made from a template is named in the status; a claim the pod names, in its spec.
        statuses = found.get("status", {}).get("resourceClaimStatuses") or found["spec"]["resourceClaims"]
        name = statuses[0].get("resourceClaimName")
        if not found["spec"].get("nodeName") or not name:
            return None
        claim = get_json(plane, "resourceclaim", "-n", namespace, name)
        return claim if claim.get("status", {}).get("allocation") else None

    try:
        claim = wait_until(bound, TIMEOUT, f"pod {pod_name} bound with its claim allocated")
    except TimeoutError as error:
        events = plane.kubectl("get", "events", "-n", namespace, "-o",
                               "custom-columns=OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message").stdout
        raise AssertionError(f"{error}; events:\n{events}") from None
    assert isinstance(claim, dict)
    (result,) = claim["status"]["allocation"]["devices"]["results"]
    return dict(result)


@pytest.fixture(scope="module")
def cluster(dra_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ControlPlane, str]]:
    plane = dra_plane
    namespace = plane.create_namespace("aim-dra")
    plane.kubectl("label", "namespace", namespace, "aim.amd.com/admission=enabled")
    plane.create_node("dra-node", partitions=None)
    plane.kubectl("apply", "-f", str(MANIFESTS / "deviceclass.yaml"))
    tls = plane.ca.issue("dra-webhook", "aim-gpu-webhook", ip_addresses=("127.0.0.1",), server=True)
    port = free_port()
    plane.start_extender(node_cache="off", extra_args=[
        f"--kubeconfig={plane.kubeconfig}", f"--webhook-port={port}",
        f"--webhook-cert-file={tls.cert}", f"--webhook-key-file={tls.key}"])
    wait_until(lambda: httpx.get(f"https://127.0.0.1:{port}/healthz", verify=plane.ssl_context(),
                                 timeout=2).status_code == 200, TIMEOUT, "the webhook's /healthz over TLS")
    (configuration,) = yaml.safe_load_all((MANIFESTS / "mutatingwebhookconfiguration.yaml").read_text())
    (hook,) = configuration["webhooks"]
    hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}/mutate",
                            "caBundle": base64.b64encode(plane.ca.cert_path.read_bytes()).decode()}
    hook["namespaceSelector"]["matchExpressions"].append(
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]})
    plane.kubectl("apply", "-f", "-", stdin=json.dumps(configuration))
    yield plane, namespace


def test_publisher_writes_valid_slices_once(cluster: tuple[ControlPlane, str]) -> None:
    plane, _ = cluster
    plane.create_node("dra-publish", partitions=None)
    publisher = SlicePublisher("dra-publish", api_client=plane.api)
    first = publisher.publish(inventory())  # the API server validates every field
    assert first.changed and first.devices == 15
    again = publisher.publish(inventory())
    assert not again.changed and again.generation == first.generation
    slices = get_json(plane, "resourceslices", "--field-selector=spec.nodeName=dra-publish")["items"]
    (stored,) = slices
    assert stored["spec"]["driver"] == DRA_DRIVER and stored["spec"]["pool"]["generation"] == first.generation
    assert stored["metadata"]["ownerReferences"][0]["kind"] == "Node"
    devices = stored["spec"]["devices"]
    assert devices[0]["name"] == device_name(inventory().partitions[0])
    assert devices[0]["capacity"]["memory"]["value"] in ("192Gi", str(192 * GIB))
    smaller = Inventory().with_partitions(inventory().partitions[1:])
    changed = publisher.publish(smaller)
    assert changed.changed and changed.generation == first.generation + 1 and changed.devices == 14
    (stored,) = get_json(plane, "resourceslices", "--field-selector=spec.nodeName=dra-publish")["items"]
    assert stored["spec"]["pool"]["generation"] == changed.generation and len(stored["spec"]["devices"]) == 14


def test_command_publishes_a_captured_node(cluster: tuple[ControlPlane, str]) -> None:
    """``python -m deviceplugin.dra --once`` with a kubeconfig: discovery of the MI308X capture
    (32 partitions of 48 GiB, KFD's last one per GPU 16 MiB less) becomes one valid slice."""
    plane, _ = cluster
    plane.create_node("dra-mi308x", partitions=None)
    argv = [sys.executable, "-m", "deviceplugin.dra", "--node-name=dra-mi308x", "--once",
            f"--sysfs-root={SYSFS / 'mi308x'}"]
    done = subprocess.run(argv, env=dict(os.environ, KUBECONFIG=str(plane.kubeconfig)), capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "32 device(s)" in done.stdout
    (stored,) = get_json(plane, "resourceslices", "--field-selector=spec.nodeName=dra-mi308x")["items"]
    assert {d["attributes"]["product"]["string"] for d in stored["spec"]["devices"]} == {"MI308X"}


def test_pod_gets_the_smallest_partition_that_holds_the_model(cluster: tuple[ControlPlane, str]) -> None:
    plane, namespace = cluster
    SlicePublisher("dra-node", api_client=plane.api).publish(inventory())
    template = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
                "metadata": {"name": "qwen", "namespace": namespace, "annotations": {"aim.amd.com/model": MODEL}},
                "spec": {"spec": {"devices": {}}}}
    plane.kubectl("create", "-f", "-", stdin=json.dumps(template))
    stored = get_json(plane, "resourceclaimtemplate", "-n", namespace, "qwen")
    (request,) = stored["spec"]["spec"]["devices"]["requests"]
    assert request["firstAvailable"][0]["deviceClassName"] == DRA_DEVICE_CLASS
    plane.kubectl("create", "-f", "-", stdin=json.dumps(pod(namespace, "llm", {"resourceClaimTemplateName": "qwen"})))
    result = allocated(plane, namespace, "llm")
    qpx = {device_name(p) for p in inventory().partitions if p.compute_mode == "QPX"}
    assert result["driver"] == DRA_DRIVER and result["pool"] == "dra-node"
    assert result["device"] in qpx, result
    assert result["request"].startswith("gpu/below-")
    # The kubelet's next step, over the plugin's gRPC API: prepare the claim the scheduler allocated.
    (status,) = get_json(plane, "pod", "-n", namespace, "llm")["status"]["resourceClaimStatuses"]
    stored_claim = get_json(plane, "resourceclaim", "-n", namespace, status["resourceClaimName"])
    with tempfile.TemporaryDirectory(prefix="aim-dra-") as short:
        devices = NodeDevices(Path(short) / "cdi")
        devices.update(inventory())
        server, _ = serve(DraPluginServicer("dra-node", api_claim_reader(plane.api), devices),
                          Path(short) / "plugin", Path(short) / "registry")
        try:
            with grpc.insecure_channel(f"unix://{Path(short) / 'plugin' / 'dra.sock'}") as channel:
                answer = dra_v1_pb2_grpc.DRAPluginStub(channel).NodePrepareResources(
                    dra_v1_pb2.NodePrepareResourcesRequest(claims=[dra_v1_pb2.Claim(
                        namespace=namespace, name=stored_claim["metadata"]["name"],
                        uid=stored_claim["metadata"]["uid"])]), timeout=10)
        finally:
            server.stop(0).wait()
    prepared = answer.claims[stored_claim["metadata"]["uid"]]
    assert prepared.error == ""
    (device,) = prepared.devices
    assert device.device_name == result["device"] and list(device.cdi_device_ids) == [cdi_id(result["device"])]


def test_control_enough_memory_alone_gets_the_largest_partition(cluster: tuple[ControlPlane, str]) -> None:
    """Without the bands, the same need is allocated the first device that holds it: 192 GiB."""
    plane, namespace = cluster
    SlicePublisher("dra-node", api_client=plane.api).publish(inventory())
    need = 35 * GIB
    claim = {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
             "metadata": {"name": "enough", "namespace": namespace},
             "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {
                 "deviceClassName": DRA_DEVICE_CLASS, "selectors": [{"cel": {"expression": selector(need, None)}}]}}]}}}
    plane.kubectl("create", "-f", "-", stdin=json.dumps(claim))
    plane.kubectl("create", "-f", "-", stdin=json.dumps(pod(namespace, "control", {"resourceClaimName": "enough"})))
    result = allocated(plane, namespace, "control")
    assert result["device"] == device_name(inventory().partitions[0]), result  # the SPX partition


def minor_version(plane: ControlPlane) -> int:
    """The API server's minor version (GET /version), e.g. 36."""
    found = json.loads(plane.kubectl("get", "--raw", "/version").stdout)
    return int(str(found["minor"]).rstrip("+"))


def template(namespace: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
            "metadata": {"name": name, "namespace": namespace, "annotations": {"aim.amd.com/model": MODEL}},
            "spec": {"spec": {"devices": {}}}}


def test_publisher_restores_the_slices_a_starting_kubelet_wipes(cluster: tuple[ControlPlane, str]) -> None:
    """A starting kubelet (1.34 and 1.36, DRAPluginManager) deletes every ResourceSlice of its
    node (DeleteCollection, field selector spec.nodeName); the next publish writes them again."""
    plane, _ = cluster
    plane.create_node("dra-restarted", partitions=None)
    publisher = SlicePublisher("dra-restarted", api_client=plane.api)
    assert publisher.publish(inventory()).changed
    plane.kubectl("delete", "resourceslices", "--field-selector=spec.nodeName=dra-restarted")
    assert get_json(plane, "resourceslices", "--field-selector=spec.nodeName=dra-restarted")["items"] == []
    again = publisher.publish(inventory())
    assert again.changed and again.devices == 15
    (stored,) = get_json(plane, "resourceslices", "--field-selector=spec.nodeName=dra-restarted")["items"]
    assert len(stored["spec"]["devices"]) == 15


def test_between_nodes_the_smallest_band_wins_from_1_36(cluster: tuple[ControlPlane, str]) -> None:
    """Kubernetes 1.36's DynamicResources plugin scores a node by the firstAvailable subrequest it
    could allocate there (earlier is better, weight 2): unpinned pods go to the node whose
    partitions are the smallest that hold the model (48 GiB), not to one that has only 192 GiB.
    1.34's plugin has no Score: there the choice between such nodes is a tie (docs/dra.md)."""
    plane, namespace = cluster
    if minor_version(plane) < 36:
        pytest.skip("Kubernetes 1.34's DynamicResources plugin does not score nodes (Score came in 1.36)")
    label = {"aim-test/dra-score": "yes"}
    spx = Inventory().with_partitions([p for p in inventory().partitions if p.compute_mode == "SPX"])
    qpx = Inventory().with_partitions([p for p in inventory().partitions if p.compute_mode == "QPX"])
    for node, partitions in (("dra-score-big", spx), ("dra-score-fit", qpx)):
        plane.create_node(node, partitions=None, labels=label)
        SlicePublisher(node, api_client=plane.api).publish(partitions)
    plane.kubectl("create", "-f", "-", stdin=json.dumps(template(namespace, "qwen-score")))
    # Three pods, one after the other: with a tie each would have one chance in two.
    for index in range(3):
        name = f"scored-{index}"
        plane.kubectl("create", "-f", "-", stdin=json.dumps(
            pod(namespace, name, {"resourceClaimTemplateName": "qwen-score"}, node_selector=label)))
        result = allocated(plane, namespace, name)
        assert result["pool"] == "dra-score-fit", result
        assert result["device"] in {device_name(p) for p in qpx.partitions}, result
