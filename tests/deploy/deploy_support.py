"""Loading of the deployment artefacts (manifests/, Dockerfiles, pyproject.toml) for tests/deploy.

Everything here only reads files; the tests decide what must hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
NAMESPACE = "aim-gpu-sharing"
SCHEDULER_NAME = "aim-gpu-scheduler"
RESOURCE = "amd.com/gpu-partition"

# Kinds the Kubernetes OpenAPI schemas do not describe; each is checked field by field instead.
NON_KUBERNETES_KINDS = {
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
    ("kustomize.config.k8s.io/v1alpha1", "Component"),
    ("kubescheduler.config.k8s.io/v1", "KubeSchedulerConfiguration"),
    ("serving.kserve.io/v1beta1", "InferenceService"),
    ("serving.kserve.io/v1alpha1", "ClusterServingRuntime"),
    # cert-manager (optional component manifests/webhook/cert-manager): its CRDs are not vendored,
    # so these two are neither schema-validated here nor applied in tests/controlplane.
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "Certificate"),
}


@dataclass(frozen=True)
class Doc:
    """One YAML document of a file under manifests/."""

    path: Path
    index: int
    body: dict[str, Any]

    @property
    def rel(self) -> str:
        return f"{self.path.relative_to(REPO)}#{self.index}"

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def name(self) -> str:
        return str(self.body.get("metadata", {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        namespace = self.body.get("metadata", {}).get("namespace")
        return None if namespace is None else str(namespace)


def manifest_files() -> list[Path]:
    return sorted(p for p in MANIFESTS.rglob("*") if p.suffix in {".yaml", ".yml"})


def load_docs(path: Path) -> list[Doc]:
    with path.open() as f:
        bodies = [b for b in yaml.safe_load_all(f) if b is not None]
    return [Doc(path, i, b) for i, b in enumerate(bodies)]


@cache
def _all_docs() -> tuple[Doc, ...]:
    return tuple(d for p in manifest_files() for d in load_docs(p))


def all_docs() -> list[Doc]:
    """Every document under manifests/ (parsed once per session; do not mutate the bodies)."""
    return list(_all_docs())


def is_patch_file(path: Path) -> bool:
    """Kustomize patch files of components: partial objects, validated after `kustomize build`."""
    kust = path.parent / "kustomization.yaml"
    if not kust.exists() or path == kust:
        return False
    spec = yaml.safe_load(kust.read_text())
    return any(p.get("path") == path.name for p in spec.get("patches", []))


def cluster_objects() -> list[Doc]:
    """Objects meant for `kubectl apply` (not patches, not generator inputs, not kustomizations)."""
    out = []
    for d in all_docs():
        if is_patch_file(d.path) or (d.api_version, d.kind) in NON_KUBERNETES_KINDS:
            continue
        out.append(d)
    return out


def find(kind: str, name: str | None = None, *, docs: list[Doc] | None = None) -> list[Doc]:
    pool = docs if docs is not None else all_docs()
    return [d for d in pool if d.kind == kind and (name is None or d.name == name)]


def one(kind: str, name: str, *, docs: list[Doc] | None = None) -> Doc:
    hits = [d for d in find(kind, name, docs=docs) if not is_patch_file(d.path)]
    assert len(hits) == 1, f"expected exactly one {kind}/{name}, found {[h.rel for h in hits]}"
    return hits[0]


def pod_spec(doc: Doc) -> dict[str, Any]:
    """The pod spec of a workload object (Deployment, DaemonSet, Pod)."""
    spec: dict[str, Any] = doc.body["spec"] if doc.kind == "Pod" else doc.body["spec"]["template"]["spec"]
    return spec


def workloads(docs: list[Doc] | None = None) -> Iterator[Doc]:
    pool = docs if docs is not None else cluster_objects()
    for d in pool:
        if d.kind in {"Deployment", "DaemonSet", "StatefulSet", "Job", "Pod"}:
            yield d


_FLAG = re.compile(r"^(--[a-z0-9][a-z0-9-]*)(?:=(.*))?$")


def parse_flags(args: list[str]) -> dict[str, str | None]:
    """`["serve", "--a=1", "--b", "2", "--c"]` -> {"--a": "1", "--b": "2", "--c": None}.

    A later repeat of a flag wins, as with argparse and vLLM.
    """
    out: dict[str, str | None] = {}
    i = 0
    while i < len(args):
        m = _FLAG.match(args[i])
        if m:
            flag, value = m.group(1), m.group(2)
            if value is None and i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
            out[flag] = value
        i += 1
    return out


def flag_names(args: list[str]) -> list[str]:
    return [m.group(1) for a in args if (m := _FLAG.match(a))]


def component_container_ports(workload: Doc) -> list[dict[str, Any]]:
    """Container ports that kustomize Components add to ``workload`` with inline JSON patches
    (``op: add`` on ``/spec/template/spec/containers/N/ports/-``), e.g. the webhook's port."""
    added: list[dict[str, Any]] = []
    for path in manifest_files():
        if path.name != "kustomization.yaml":
            continue
        spec = yaml.safe_load(path.read_text()) or {}
        if spec.get("kind") != "Component":
            continue
        for patch in spec.get("patches", []):
            target = patch.get("target") or {}
            if (target.get("kind"), target.get("name")) != (workload.kind, workload.name) or "patch" not in patch:
                continue
            for op in yaml.safe_load(patch["patch"]) or []:
                if op.get("op") == "add" and re.fullmatch(r"/spec/template/spec/containers/\d+/ports/-", op["path"]):
                    added.append(op["value"])
    return added
