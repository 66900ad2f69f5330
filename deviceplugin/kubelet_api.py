"""Constants of the kubelet device-plugin API v1beta1 (not configuration: the kubelet fixes them).

Source: k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1/constants.go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

API_VERSION: Final = "v1beta1"  # constants.go Version
HEALTHY: Final = "Healthy"  # constants.go Healthy
UNHEALTHY: Final = "Unhealthy"  # constants.go Unhealthy
# constants.go DevicePluginPath: the kubelet serves kubelet.sock here and dials plugin sockets here.
DEVICE_PLUGIN_PATH: Final = Path("/var/lib/kubelet/device-plugins")
KUBELET_SOCKET_NAME: Final = "kubelet.sock"  # constants.go KubeletSocket (its base name)
