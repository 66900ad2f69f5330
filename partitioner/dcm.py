"""AMD Device Config Manager (DCM) profiles for a layout: the ConfigMap and the node label value.

Contract (ROCm/device-config-manager docs/configuration/configmap.md, pkg/config_manager/globals/
constants.go; ROCm/gpu-operator docs/dcm): ``data["config.json"]`` holds ``{"gpu-config-profiles":
{name: {"skippedGPUs": {"ids": []}, "profiles": [{"computePartition", "memoryPartition",
"numGPUsAssigned"}]}}}``; the numbers assigned plus the skipped ids must add up to the node's GPU
count, so a profile is per mode and GPU count; a node is repartitioned by setting its label
``dcm.amd.com/gpu-config-profile`` to a profile name. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from partitioner.modes import Mode

PROFILE_LABEL = "dcm.amd.com/gpu-config-profile"
PROFILE_STATE_LABEL = "dcm.amd.com/gpu-config-profile-state"
CONFIG_KEY = "config.json"
# Name and namespace from DCM's own example ConfigMap (device-config-manager docs/configuration/configmap.md);
# the GPU Operator can be pointed at it with DeviceConfig spec.configManager.config.name.
DEFAULT_CONFIGMAP_NAME = "config-manager-config"
DEFAULT_NAMESPACE = "kube-amd-gpu"


def profile_name(mode: Mode, gpus: int) -> str:
    """A label-safe profile name such as ``cpx_nps4_8gpu`` (lower case, like the operator's built-ins)."""
    return f"{mode.compute_mode}_{mode.memory_mode}_{gpus}gpu".lower()


def profile(mode: Mode, gpus: int) -> dict[str, Any]:
    return {
        "skippedGPUs": {"ids": []},
        "profiles": [{"computePartition": mode.compute_mode, "memoryPartition": mode.memory_mode,
                      "numGPUsAssigned": gpus}],
    }


def config(layouts: Iterable[tuple[Mode, int]]) -> dict[str, Any]:
    """The ``config.json`` document with one profile per distinct (mode, GPU count), sorted by name."""
    profiles = {profile_name(mode, gpus): profile(mode, gpus) for mode, gpus in layouts}
    return {"gpu-config-profiles": dict(sorted(profiles.items()))}


def configmap(document: Mapping[str, Any], *, name: str = DEFAULT_CONFIGMAP_NAME,
              namespace: str = DEFAULT_NAMESPACE) -> dict[str, Any]:
    """The ConfigMap object carrying ``document`` as its ``config.json`` string."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {CONFIG_KEY: json.dumps(document, indent=2)},
    }
