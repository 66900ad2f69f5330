"""Node labels: the pure computation, and the exact PATCH the kubernetes client sends to an
API server stand-in on 127.0.0.1 (plus retry with backoff when it fails)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from deviceplugin import labels
from deviceplugin.discovery import discover
from deviceplugin.errors import LabelPatchError
from deviceplugin.inventory import Inventory
from deviceplugin.k8s import NodeLabelPatcher
from deviceplugin.labelsync import LabelSync
from deviceplugin.metrics import PluginMetrics
from sizing import contract
from tests.deviceplugin.dp_support import lay_capture, make_partition, wait_until


def _found(inventory: Inventory) -> dict[str, str | None]:
    """The labels of everything discovery found (every partition healthy)."""
    return labels.desired_labels(inventory.partitions, (gpu.address for gpu in inventory.gpus))


def test_mi300x_capture_labels(tmp_path: Path) -> None:
    computed = _found(discover(lay_capture(tmp_path, "mi300x-cpx")))
    assert computed == {
        "amd.com/gpu-partition.memory-mib": "24576",
        "amd.com/gpu-partition.count": "63",
        "amd.com/gpu-partition.compute-mode": "CPX",
        "amd.com/gpu-partition.memory-mode": "unknown",
        "amd.com/gpu-partition.cu-count": "38",
        "amd.com/gpu-partition.product": "MI300X",
        "amd.com/gpu-partition.homogeneous": "true",
        # 8 GPUs although 63 partitions: the eighth GPU lacks one (tests/fixtures/sysfs/README.md)
        "amd.com/gpu-partition.gpu-count": "8",
    }


def test_mi308x_labels_use_the_smallest_partition(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi308x", compute_mode="CPX", memory_mode="NPS1")
    computed = _found(discover(root))
    assert computed[contract.LABEL_MEMORY_MIB] == str(51_522_830_336 // 2**20)  # 49136, the last partition
    assert computed[contract.LABEL_COUNT] == "32"
    assert computed[contract.LABEL_GPU_COUNT] == "8"
    assert computed[contract.LABEL_MEMORY_MODE] == "NPS1"
    # partition 3 of each GPU has 16 MiB less, but every GPU is in the same mode
    assert computed[contract.LABEL_HOMOGENEOUS] == "true"


def test_mi210_labels_say_unpartitioned_and_drop_memory(tmp_path: Path) -> None:
    computed = _found(discover(lay_capture(tmp_path, "mi210-xgmi")))
    assert computed[contract.LABEL_MEMORY_MIB] is None
    assert computed[contract.LABEL_COMPUTE_MODE] == "none"
    assert computed[contract.LABEL_PRODUCT] == "MI210"
    assert computed[contract.LABEL_CU_COUNT] == "104"
    assert computed[contract.LABEL_GPU_COUNT] == "8"


def test_gpu_count_is_every_gpu_found_even_with_no_healthy_partition(tmp_path: Path) -> None:
    """The partition controller writes DCM profiles for the node's GPU count: a GPU whose
    partitions are all unhealthy (left out of the labels) is still on the node."""
    inventory = discover(lay_capture(tmp_path, "mi300x-cpx"))
    last_gpu = inventory.gpus[-1].address
    healthy = [p for p in inventory.partitions if p.gpu != last_gpu]
    computed = labels.desired_labels(healthy, (gpu.address for gpu in inventory.gpus))
    assert (computed[contract.LABEL_COUNT], computed[contract.LABEL_GPU_COUNT]) == ("56", "8")


def test_mixed_modes_label_smallest_memory_and_homogeneous_false() -> None:
    small = make_partition("0000:05:00.0", 0)
    big = dataclasses.replace(
        make_partition("0000:27:00.0", 0),
        memory_bytes=192 * 2**30,
        compute_units=304,
        compute_mode="SPX",
        memory_mode="NPS1",
    )
    computed = labels.desired_labels([big, small], [big.gpu, small.gpu])
    assert computed[contract.LABEL_MEMORY_MIB] == "24576"
    assert computed[contract.LABEL_CU_COUNT] == "38"
    assert computed[contract.LABEL_COMPUTE_MODE] == "mixed"
    assert computed[contract.LABEL_MEMORY_MODE] == "mixed"
    assert computed[contract.LABEL_HOMOGENEOUS] == "false"
    assert computed[contract.LABEL_PRODUCT] == "MI300X"


def test_no_partitions_removes_every_key_but_count() -> None:
    computed = labels.desired_labels([], [])
    assert computed[contract.LABEL_COUNT] == "0"
    assert computed[contract.LABEL_GPU_COUNT] is None
    assert [k for k, v in computed.items() if v is not None] == [contract.LABEL_COUNT]


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("MI300X", "MI300X"),
        ("AMD Instinct MI300X (OAM)", "AMD-Instinct-MI300X-OAM"),
        ("--x--", "x"),
        ("", "unknown"),
        ("a" * 80, "a" * 63),
    ],
    ids=["plain", "spaces and parentheses", "edge dashes", "empty", "too long"],
)
def test_label_values_are_sanitized_to_valid_kubernetes_values(raw: str, expected: str) -> None:
    value = contract.sanitize_label_value(raw)
    assert value == expected
    assert contract.is_valid_label_value(value)


def test_every_computed_value_is_a_valid_label_value(tmp_path: Path) -> None:
    for capture in ("mi300x-cpx", "mi308x", "mi210-xgmi"):
        computed = _found(discover(lay_capture(tmp_path / capture, capture)))
        assert all(contract.is_valid_label_value(v) for v in computed.values() if v is not None)


def test_patch_removes_stale_keys_under_our_prefix_only() -> None:
    desired = {contract.LABEL_COUNT: "8", contract.LABEL_MEMORY_MIB: None}
    current = {"amd.com/gpu-partition.vram": "24G", "amd.com/gpu.vram": "24G", "kubernetes.io/hostname": "n"}
    patch = labels.build_label_patch(desired, current)
    assert patch == {
        "metadata": {
            "labels": {
                "amd.com/gpu-partition.count": "8",
                "amd.com/gpu-partition.memory-mib": None,
                "amd.com/gpu-partition.vram": None,
            }
        }
    }


# -- against an API server stand-in --------------------------------------------------------


class FakeApiServer:
    """Records requests; answers GET/PATCH /api/v1/nodes/<name> like the API server would."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_patches = 0
        self.node_labels = {
            "kubernetes.io/hostname": "node-a",
            "amd.com/gpu-partition.vram": "24G",
            "amd.com/gpu-partition.count": "64",
        }
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _node(self) -> dict[str, Any]:
                return {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": "node-a", "labels": fake.node_labels},
                }

            def do_GET(self) -> None:
                fake.requests.append({"method": "GET", "path": self.path})
                self._reply(200, self._node())

            def do_PATCH(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(
                    {
                        "method": "PATCH",
                        "path": self.path,
                        "content_type": self.headers["Content-Type"],
                        "body": body,
                    }
                )
                if fake.fail_patches > 0:
                    fake.fail_patches -= 1
                    self._reply(500, {"kind": "Status", "message": "etcd timeout", "code": 500})
                    return
                for key, value in body["metadata"]["labels"].items():
                    if value is None:
                        fake.node_labels.pop(key, None)
                    else:
                        fake.node_labels[key] = value
                self._reply(200, self._node())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def patches(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "PATCH"]

    def api_client(self) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = f"http://127.0.0.1:{self.server.server_address[1]}"
        configuration.retries = False
        return client.ApiClient(configuration)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api_server() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    yield server
    server.close()


def test_patch_request_is_a_json_merge_patch_on_the_node(api_server: FakeApiServer) -> None:
    patcher = NodeLabelPatcher("node-a", api_server.api_client())
    desired = labels.desired_labels([make_partition("0000:05:00.0", i) for i in range(8)], ["0000:05:00.0"])
    patcher.apply(desired)

    assert [r["method"] for r in api_server.requests] == ["GET", "PATCH"]
    patch = api_server.patches[0]
    assert patch["path"] == "/api/v1/nodes/node-a?fieldManager=aim-deviceplugin"
    assert patch["content_type"] == "application/merge-patch+json"
    assert patch["body"] == {
        "metadata": {
            "labels": {
                "amd.com/gpu-partition.compute-mode": "CPX",
                "amd.com/gpu-partition.count": "8",
                "amd.com/gpu-partition.cu-count": "38",
                "amd.com/gpu-partition.gpu-count": "1",
                "amd.com/gpu-partition.homogeneous": "true",
                "amd.com/gpu-partition.memory-mib": "24576",
                "amd.com/gpu-partition.memory-mode": "NPS4",
                "amd.com/gpu-partition.product": "MI300X",
                "amd.com/gpu-partition.vram": None,
            }
        }
    }
    assert api_server.node_labels["kubernetes.io/hostname"] == "node-a"
    assert "amd.com/gpu-partition.vram" not in api_server.node_labels


def test_api_error_becomes_label_patch_error(api_server: FakeApiServer) -> None:
    api_server.fail_patches = 1
    with pytest.raises(LabelPatchError, match="HTTP 500"):
        NodeLabelPatcher("node-a", api_server.api_client()).apply({contract.LABEL_COUNT: "1"})


def test_unreachable_api_server_becomes_label_patch_error() -> None:
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # discard port: connection refused
    configuration.retries = False
    with pytest.raises(LabelPatchError):
        NodeLabelPatcher("node-a", client.ApiClient(configuration)).apply({contract.LABEL_COUNT: "1"})


def test_label_sync_retries_with_backoff_until_the_api_server_recovers(api_server: FakeApiServer) -> None:
    api_server.fail_patches = 2
    metrics = PluginMetrics()
    sync = LabelSync(
        patcher=NodeLabelPatcher("node-a", api_server.api_client()),
        desired_labels=lambda: {contract.LABEL_COUNT: "8"},
        metrics=metrics,
        backoff_initial_s=0.05,
        backoff_max_s=0.1,
    )
    sync.start()
    try:
        assert wait_until(lambda: api_server.node_labels.get(contract.LABEL_COUNT) == "8", timeout=3)
    finally:
        sync.stop()
    assert len(api_server.patches) == 3
    errors = metrics.registry.get_sample_value("aim_deviceplugin_label_patches_total", {"result": "error"})
    assert errors == 2
