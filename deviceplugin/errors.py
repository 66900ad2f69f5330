"""Exceptions of the device plugin.

    DevicePluginError
    ├── UnknownDeviceError       an Allocate/PreStart request names an ID we do not advertise
    ├── RegistrationError        the kubelet refused or did not answer Register
    └── LabelPatchError          the API server refused the node label patch

gRPC status codes are chosen only in ``server.py``; kubernetes client exceptions are wrapped
only in ``k8s.py``.
"""

from __future__ import annotations


class DevicePluginError(Exception):
    """Base class of everything this package raises on purpose."""


class UnknownDeviceError(DevicePluginError):
    def __init__(self, device_id: str, known: int) -> None:
        super().__init__(
            f"unknown device ID {device_id!r}: this plugin advertises {known} partition(s) "
            "with IDs like '0000:05:00.0-p0' (see `aim-deviceplugin discover`)"
        )
        self.device_id = device_id


class RegistrationError(DevicePluginError):
    """Register on kubelet.sock failed."""


class LabelPatchError(DevicePluginError):
    """Patching the node labels failed."""
