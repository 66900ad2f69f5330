"""Typed configuration of the device plugin, built once by the CLI and passed down.

Every default carries the reason it has this value and where that comes from.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from deviceplugin.kubelet_api import DEVICE_PLUGIN_PATH, KUBELET_SOCKET_NAME
from sizing.contract import RESOURCE_NAME

CONFIG_VERSION = "v1"

# The kubelet's own directory (kubelet_api.DEVICE_PLUGIN_PATH); a flag only for tests and odd installs.
DEFAULT_KUBELET_DIR = DEVICE_PLUGIN_PATH

# One resource for every partition (sizing.contract): the memory size is a node label, not part
# of the name, so a pod spec never changes when the partition mode does (docs/deviceplugin.md).
DEFAULT_RESOURCE_NAME = RESOURCE_NAME

# Health polling: 1 s keeps every health change inside the 2 s ListAndWatch update budget
# (issue: "sends an update within 2 s of any health or inventory change"); checking ~64
# file existences per second costs microseconds.
DEFAULT_HEALTH_INTERVAL_S = 1.0
# Full re-discovery as a safety net. Topology changes are caught sooner: every health tick
# compares the KFD generation_id and node list (discovery.topology_fingerprint), so a
# repartition reaches ListAndWatch within about one --health-interval. A full discovery costs
# a few milliseconds on the 65-node MI300X capture (bench/bench_deviceplugin.py).
DEFAULT_DISCOVERY_INTERVAL_S = 30.0
# How often kubelet.sock and our own socket are checked for re-creation/removal. Polling every
# 0.25 s re-registers well inside the 2 s budget after a kubelet restart, without inotify.
SOCKET_WATCH_INTERVAL_S = 0.25
# After a ListAndWatch stream ends, wait this long for a new stream before re-registering: a
# kubelet that re-registered us opens a new stream at once, so only a lonely close triggers
# Register (avoids a register/close loop; ROCm/k8s-device-plugin#186 for the failure mode).
STREAM_CLOSED_GRACE_S = 1.0
# Register RPC timeout; the kubelet dials back and calls GetDevicePluginOptions inside Register
# with its own 10 s timeout (kubernetes/kubernetes pkg/kubelet/cm/devicemanager/plugin/v1beta1).
REGISTER_TIMEOUT_S = 15.0
# Registration retry backoff: first retry after 1 s, doubling up to 30 s (the NVIDIA plugin
# retries failed starts every 30 s, NVIDIA/k8s-device-plugin cmd/nvidia-device-plugin/main.go).
REGISTER_BACKOFF_INITIAL_S = 1.0
REGISTER_BACKOFF_MAX_S = 30.0
# Node label patch retry backoff: 2 s doubling to 5 min; labels are advisory for the scheduler
# extender, so a slow API server must never block or stop the plugin.
LABEL_BACKOFF_INITIAL_S = 2.0
LABEL_BACKOFF_MAX_S = 300.0
# gRPC server worker threads: one per concurrent ListAndWatch stream (the kubelet keeps one,
# a restart briefly two) plus Allocate/GetPreferredAllocation, which the kubelet serialises.
GRPC_MAX_WORKERS = 8
# Shutdown bounds, so SIGTERM exits well inside Kubernetes' default 30 s
# terminationGracePeriodSeconds: in-flight RPCs get 0.1 s (Allocate answers in well under a
# millisecond, bench/bench_deviceplugin.py; open ListAndWatch streams are cancelled at once)
# and the gRPC server 2 s to wind down; each
# background thread gets 5 s to finish its current step (a label request can take up to its
# 5 s + 10 s timeout, k8s.REQUEST_TIMEOUT_S; that daemon thread is then left behind).
STOP_RPC_GRACE_S = 0.1
STOP_SERVER_WAIT_S = 2.0
STOP_THREAD_JOIN_S = 5.0


@dataclasses.dataclass(frozen=True)
class PluginConfig:
    """Everything `aim-deviceplugin serve` needs; immutable after the CLI builds it."""

    sysfs_root: Path = Path("/sys")
    dev_root: Path = Path("/dev")
    kubelet_dir: Path = DEFAULT_KUBELET_DIR
    resource_name: str = DEFAULT_RESOURCE_NAME
    node_name: str | None = None
    node_labels: bool = True
    metrics_port: int = 0
    health_interval_s: float = DEFAULT_HEALTH_INTERVAL_S
    discovery_interval_s: float = DEFAULT_DISCOVERY_INTERVAL_S
    version: str = CONFIG_VERSION

    @property
    def socket_name(self) -> str:
        """Plugin socket file name, e.g. ``amd.com_gpu-partition.sock`` (kubevirt dpm naming)."""
        return self.resource_name.replace("/", "_") + ".sock"

    @property
    def socket_path(self) -> Path:
        return self.kubelet_dir / self.socket_name

    @property
    def kubelet_socket(self) -> Path:
        return self.kubelet_dir / KUBELET_SOCKET_NAME

    def validate(self) -> None:
        """Raise ValueError with one readable line when a value cannot work."""
        if "/" not in self.resource_name or self.resource_name.startswith("/"):
            raise ValueError(
                f"--resource-name {self.resource_name!r} must be an extended resource name "
                "like 'amd.com/gpu-partition'"
            )
        if not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"--metrics-port {self.metrics_port} is not a TCP port (0 = off)")
        if self.health_interval_s <= 0 or self.discovery_interval_s <= 0:
            raise ValueError("--health-interval and --discovery-interval must be > 0 seconds")
        if self.node_labels and not self.node_name:
            raise ValueError(
                "node labels need the node name: pass --node-name, set NODE_NAME "
                "(downward API spec.nodeName) or use --no-node-labels"
            )
        # AF_UNIX paths are limited to 108 bytes including the NUL (linux unix(7)).
        if len(str(self.socket_path).encode()) > 107:
            raise ValueError(f"socket path {self.socket_path} is longer than 107 bytes")

    def to_json(self) -> str:
        def encode(value: Any) -> Any:
            return str(value) if isinstance(value, Path) else value

        return json.dumps({k: encode(v) for k, v in dataclasses.asdict(self).items()}, sort_keys=True)
