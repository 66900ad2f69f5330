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
# Largest config.json read back: a ConfigMap holds at most 1 MiB (the API server's etcd request limit).
MAX_CONFIG_BYTES = 1 << 20
# Nesting of config.json: DCM's documents are five levels deep (gpu-config-profiles -> name -> profiles
# -> list -> profile); 16 leaves room for keys DCM may add and keeps the document we write back (json.dumps
# recurses in Python) far from the recursion limit.
MAX_CONFIG_DEPTH = 16


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


def parse_config(text: str) -> dict[str, Any]:
    """``config.json`` as read back from DCM's ConfigMap: a JSON object, at most MAX_CONFIG_BYTES and
    MAX_CONFIG_DEPTH deep; ValueError with a one-line reason naming ``config.json`` otherwise."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ValueError(f"{CONFIG_KEY} is larger than {MAX_CONFIG_BYTES >> 10} KiB")
    try:
        document = json.loads(text)
    except RecursionError:
        raise ValueError(f"{CONFIG_KEY} is nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, or an integer of more than 4,300 digits
        raise ValueError(f"{CONFIG_KEY} is not JSON ({str(error)[:120]})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{CONFIG_KEY} is not an object")
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise ValueError(f"{CONFIG_KEY} is nested more than {MAX_CONFIG_DEPTH} levels deep")
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return document


def configmap(document: Mapping[str, Any], *, name: str = DEFAULT_CONFIGMAP_NAME,
              namespace: str = DEFAULT_NAMESPACE) -> dict[str, Any]:
    """The ConfigMap object carrying ``document`` as its ``config.json`` string."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {CONFIG_KEY: json.dumps(document, indent=2)},
    }
