"""Where the DRA control planes' binaries are. tests/dra runs against every one of them:

- ``AIM_K8S_DRA_BIN``: one or more ``bin`` directories, separated by ``os.pathsep``; each is named
  by the ``VERSION`` file tests/dra/build_control_plane.sh writes beside it (else by its path);
- otherwise the two caches the script is documented to write: Kubernetes 1.34
  (``~/.cache/aim-gpu-sharing/k8s-dra/bin``) and 1.36 (``~/.cache/aim-gpu-sharing/k8s-dra-1.36/bin``).

They are never in the repository and CI does not build them: a control plane whose binaries are
absent is skipped with how to build it (marker ``optional_tools``, even with
AIM_REQUIRE_INTEGRATION=1)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tests.controlplane.binaries import ETCD_SKIP_MESSAGE, KUBE_BINARIES, Binaries, etcd_binary

ENV_VAR = "AIM_K8S_DRA_BIN"
CACHE = Path.home() / ".cache" / "aim-gpu-sharing"
MICROSHIFT = "<microshift git dir>"


@dataclass(frozen=True)
class DraPlane:
    """One DRA control plane to test against: a name for the test ids and its bin directory."""

    name: str
    bin_dir: Path
    build_hint: str


# The builds docs/dra.md describes: microshift's release-4.21 vendors v1.34.9 (Go 1.25), main v1.36.2
# (Go 1.26); ~25 and ~45 min on 2 shared cores (build_control_plane.sh's header).
DEFAULT_PLANES = (
    DraPlane("v1.34", CACHE / "k8s-dra" / "bin",
             f"tests/dra/build_control_plane.sh {MICROSHIFT} {CACHE / 'k8s-dra'} release-4.21 (Go 1.25, ~25 min)"),
    DraPlane("v1.36", CACHE / "k8s-dra-1.36" / "bin",
             f"tests/dra/build_control_plane.sh {MICROSHIFT} {CACHE / 'k8s-dra-1.36'} main (Go 1.26, ~45 min)"),
)
# A VERSION file is one line such as "v1.36.2"; anything else is not used as a name.
VERSION_PATTERN = re.compile(r"v\d{1,3}\.\d{1,3}(\.\d{1,3})?([-+.][0-9A-Za-z.-]{1,40})?")


def plane_name(bin_dir: Path) -> str:
    """The Kubernetes version build_control_plane.sh wrote beside ``bin_dir``, else the path."""
    try:
        with open(bin_dir.parent / "VERSION", encoding="utf-8") as handle:
            text = handle.read(64).strip()
    except (OSError, UnicodeDecodeError):
        return str(bin_dir)
    return text if VERSION_PATTERN.fullmatch(text) else str(bin_dir)


def configured_planes(value: str | None = None) -> tuple[DraPlane, ...]:
    """The control planes to test against: those ``AIM_K8S_DRA_BIN`` lists, else DEFAULT_PLANES."""
    configured = os.environ.get(ENV_VAR) if value is None else value
    if not configured:
        return DEFAULT_PLANES
    hint = f"tests/dra/build_control_plane.sh {MICROSHIFT} <dir> [release-4.21|main]"
    return tuple(DraPlane(plane_name(Path(entry)), Path(entry), hint)
                 for entry in configured.split(os.pathsep) if entry)


def find_dra_binaries(plane: DraPlane) -> Binaries | str:
    """The binaries of one control plane serving resource.k8s.io/v1 (Kubernetes 1.34+), or the skip reason."""
    missing = [name for name in KUBE_BINARIES if not os.access(plane.bin_dir / name, os.X_OK)]
    if missing:
        return (f"DRA control plane {plane.name}: binaries not found in {plane.bin_dir} ({', '.join(missing)};"
                f" set {ENV_VAR}): build them with {plane.build_hint} (docs/dra.md)")
    etcd = etcd_binary()
    if etcd is None:
        return ETCD_SKIP_MESSAGE
    return Binaries(bin_dir=plane.bin_dir.resolve(), etcd=etcd)
