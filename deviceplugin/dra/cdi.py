"""The CDI spec (Container Device Interface) of the node's partitions, which the DRA plugin's
NodePrepareResources names by ID. Pure, plus one atomic file write.

One CDI device per published partition, named as in the ResourceSlice (``slices.device_name``):
its render node; ``/dev/kfd`` (ROCm's compute interface, shared by every partition) is a
spec-wide edit. The container runtime (containerd 1.7+/CRI-O with CDI on) injects them for the
IDs the kubelet passes on: ``amd.com/gpu-partition=<device name>``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Final

from deviceplugin.dra.slices import device_name
from deviceplugin.inventory import Inventory

CDI_KIND: Final = "amd.com/gpu-partition"  # vendor/class (the extended resource's name, as a CDI kind)
# 0.5.0: the oldest version whose fields cover this spec (device nodes only), so older runtimes read it.
CDI_VERSION: Final = "0.5.0"
SPEC_FILE: Final = "amd.com-gpu-partition.json"
DEFAULT_CDI_DIR: Final = Path("/var/run/cdi")  # one of the two directories runtimes read by default
KFD: Final = "/dev/kfd"


def cdi_id(device: str) -> str:
    return f"{CDI_KIND}={device}"


def cdi_spec(inventory: Inventory) -> dict[str, Any]:
    return {
        "cdiVersion": CDI_VERSION,
        "kind": CDI_KIND,
        "devices": [{"name": device_name(p),
                     "containerEdits": {"deviceNodes": [{"path": f"/dev/dri/renderD{p.render_minor}"}]}}
                    for p in inventory.partitions],
        "containerEdits": {"deviceNodes": [{"path": KFD}]},
    }


def write_cdi_spec(inventory: Inventory, directory: Path = DEFAULT_CDI_DIR) -> Path:
    """Write the spec atomically (a runtime never reads half a file); returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / SPEC_FILE
    descriptor, temporary = tempfile.mkstemp(prefix=".aim-cdi-", dir=directory)
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump(cdi_spec(inventory), handle, indent=1)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
