"""Write the kustomize manifests (manifests/) from the Helm chart (charts/aim-gpu-sharing): one
deployment source. Run it after changing the chart; tests/helm/test_helm_manifests_rendered.py
renders again and fails when the committed files differ by one byte.

    python tools/render_manifests.py            # write manifests/
    python tools/render_manifests.py --check    # exit 1 naming the files that differ

Helm itself renders (helm-sdkpy: Helm's Go library; `pip install --ignore-requires-python
helm-sdkpy cffi`, the README test command). helm-sdkpy has no `helm template`, so each values set
is installed (``wait=False``, nothing runs) into a private control plane started for the purpose
(tests/controlplane: etcd and kube-apiserver from ../shared/k8s/bin or AIM_K8S_BIN), or into the
cluster of ``--kubeconfig`` (a scratch cluster: the release takes the names aim-gpu-* there).

What is written, from fixed values (``COMMON`` plus one entry of ``VARIANTS``):
- the base (``kubectl apply -k manifests/``) and manifests/partitioner/ from the "base" values,
  each object into the file ``FILES`` names;
- each kustomize component as the difference between two renderings: objects only in the second
  are its resources, objects only in the first ``$patch: delete``, a changed ConfigMap a
  configMapGenerator that replaces it, any other changed object a JSON patch of appends (``/-``)
  and replacements, so components compose in any order the docs name;
- manifests/scheduler/*.yaml and the components' kube-scheduler-config.yaml: the ``config.yaml``
  of the chart's scheduler ConfigMap for that mode.
manifests/examples, kserve and models are examples written by hand, not rendered.
Not needed at run time: only developers and the tests run it.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import difflib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "aim-gpu-sharing"
MANIFESTS = REPO / "manifests"
NAMESPACE = "aim-gpu-sharing"
RELEASE = "aim-gpu-sharing"
# Directories of manifests/ written by hand: examples users apply one by one.
HAND_WRITTEN = ("examples", "kserve", "models")
HEADER = ("# Generated from the chart (charts/aim-gpu-sharing) by tools/render_manifests.py; edit the\n"
          "# chart and run `python tools/render_manifests.py`, not this file.\n")
# A whole install takes ~2 s here; the bounds only end a hang.
INSTALL_TIMEOUT_SECONDS = 120
KUBECTL_TIMEOUT_SECONDS = 60
DCM_NAMESPACE = "kube-amd-gpu"  # values.yaml partitioner.dcm.namespace, looked up by the chart
STANDIN_CRDS = REPO / "tests" / "helm" / "data" / "standin-crds.yaml"
# DRA mode's kind (DeviceClass, resource.k8s.io/v1, Kubernetes 1.34+) for a cluster without it: the
# renderer's control plane is v1.25 (../shared/k8s/bin). Applied only where the group is not served.
STANDIN_DRA_CRDS = REPO / "tests" / "helm" / "data" / "standin-dra-crds.yaml"
DRA_API = "resource.k8s.io/v1"

# Every rendering: the kustomize form (no Helm labels or hooks, the Namespace), for a GA cluster
# (KubeSchedulerConfiguration v1; the kube-scheduler image tag follows: set yours per cluster),
# no Grafana dashboards (kube-prometheus-stack's sidecar is a Helm-side feature), and the partition
# controller, applied apart (manifests/partitioner/), with pods/eviction granted so that
# --allow-eviction needs no RBAC change.
COMMON: dict[str, Any] = {
    "renderedManifests": True,
    "kubeVersionOverride": "v1.37.0",
    "monitoring": {"dashboards": {"enabled": False}},
    "partitioner": {"enabled": True, "evictionRBAC": True},
}
# Values of each rendering, in install order (each one an upgrade of the same release).
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {"webhook": {"enabled": False}},
    "webhook": {},
    "cert-manager": {"webhook": {"certificates": {"mode": "cert-manager"}}},
    "native": {"scheduler": {"mode": "native"}},
    "tls": {"webhook": {"enabled": False}, "extender": {"tls": {"enabled": True}}},
    # not written: what `components: [components/tls, webhook]` must build (the tests compare)
    "tls-webhook": {"extender": {"tls": {"enabled": True}}},
    "default-scheduler": {"webhook": {"enabled": False}, "scheduler": {"mode": "default-scheduler"}},
    "dra": {"dra": {"enabled": True}},
}

# Where each object goes, in file order: (kind, name) -> path under manifests/.
FILES: dict[str, list[tuple[str, str]]] = {
    "namespace.yaml": [("Namespace", NAMESPACE)],
    "critical-pods-quota.yaml": [("ResourceQuota", "aim-gpu-sharing-critical-pods")],
    "deviceplugin/serviceaccount.yaml": [("ServiceAccount", "aim-gpu-deviceplugin")],
    "deviceplugin/rbac.yaml": [("ClusterRole", "aim-gpu-deviceplugin"), ("ClusterRoleBinding", "aim-gpu-deviceplugin")],
    "deviceplugin/daemonset.yaml": [("DaemonSet", "aim-gpu-deviceplugin")],
    "extender/serviceaccount.yaml": [("ServiceAccount", "aim-gpu-extender")],
    "extender/rbac.yaml": [("ClusterRole", "aim-gpu-extender"), ("ClusterRoleBinding", "aim-gpu-extender")],
    "extender/deployment.yaml": [("Deployment", "aim-gpu-extender")],
    "extender/service.yaml": [("Service", "aim-gpu-extender")],
    "extender/poddisruptionbudget.yaml": [("PodDisruptionBudget", "aim-gpu-extender")],
    "scheduler/second-scheduler.yaml": [
        ("ConfigMap", "aim-gpu-scheduler-config"), ("ServiceAccount", "aim-gpu-scheduler"),
        ("ClusterRoleBinding", "aim-gpu-scheduler-as-kube-scheduler"),
        ("ClusterRoleBinding", "aim-gpu-scheduler-as-volume-scheduler"),
        ("ClusterRoleBinding", "aim-gpu-scheduler-auth-delegator"),
        ("RoleBinding", "aim-gpu-scheduler-extension-apiserver-authentication-reader"),
        ("Role", "aim-gpu-scheduler-leader-election"), ("RoleBinding", "aim-gpu-scheduler-leader-election"),
        ("Deployment", "aim-gpu-scheduler")],
    "partitioner/serviceaccount.yaml": [("ServiceAccount", "aim-partitioner-controller")],
    "partitioner/rbac.yaml": [
        ("ClusterRole", "aim-partitioner-controller"), ("ClusterRoleBinding", "aim-partitioner-controller"),
        ("Role", "aim-partitioner-controller-lease"), ("RoleBinding", "aim-partitioner-controller-lease"),
        ("Role", "aim-partitioner-controller-dcm-profiles"),
        ("RoleBinding", "aim-partitioner-controller-dcm-profiles")],
    "partitioner/deployment.yaml": [("Deployment", "aim-partitioner-controller")],
    "webhook/service.yaml": [("Service", "aim-gpu-webhook")],
    "webhook/mutatingwebhookconfiguration.yaml": [("MutatingWebhookConfiguration", "aim-gpu-webhook")],
    "webhook/certs-rbac.yaml": [
        ("ServiceAccount", "aim-gpu-webhook-certs"), ("Role", "aim-gpu-webhook-certs"),
        ("RoleBinding", "aim-gpu-webhook-certs"), ("ClusterRole", "aim-gpu-webhook-certs"),
        ("ClusterRoleBinding", "aim-gpu-webhook-certs")],
    "webhook/certs-job.yaml": [("Job", "aim-gpu-webhook-certs"), ("CronJob", "aim-gpu-webhook-certs")],
    "webhook/cert-manager/certificate.yaml": [("Issuer", "aim-gpu-webhook-selfsigned"),
                                              ("Certificate", "aim-gpu-webhook")],
    "dra/deviceclass.yaml": [("DeviceClass", "gpu-partition.amd.com")],
    "dra/mutatingwebhookconfiguration.yaml": [("MutatingWebhookConfiguration", "aim-gpu-webhook-dra")],
    "dra/serviceaccount.yaml": [("ServiceAccount", "aim-gpu-dra-plugin")],
    "dra/rbac.yaml": [("ClusterRole", "aim-gpu-dra-plugin"), ("ClusterRoleBinding", "aim-gpu-dra-plugin")],
    "dra/daemonset.yaml": [("DaemonSet", "aim-gpu-dra-plugin")],
}
SCHEDULER_CONFIGMAP = ("ConfigMap", "aim-gpu-scheduler-config")
DEFAULT_SCHEDULER_CONFIGMAP = ("ConfigMap", "aim-gpu-scheduler-default-scheduler-config")
# The scheduler configurations as files of their own: path -> (variant, ConfigMap).
SCHEDULER_FILES: dict[str, tuple[str, tuple[str, str]]] = {
    "scheduler/kube-scheduler-config.yaml": ("base", SCHEDULER_CONFIGMAP),
    "scheduler/kube-scheduler-config.native.yaml": ("native", SCHEDULER_CONFIGMAP),
    "scheduler/kube-scheduler-config.default-scheduler.yaml": ("default-scheduler", DEFAULT_SCHEDULER_CONFIGMAP),
}
CONFIG_KEY = "config.yaml"
COMPONENT_CONFIG_FILE = "kube-scheduler-config.yaml"
IMAGES = ("aim-gpu-deviceplugin", "aim-gpu-extender")


@dataclass(frozen=True)
class Doc:
    """One rendered object: its text as the chart wrote it (comments kept) and its parsed body."""

    text: str
    body: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return str(self.body["kind"]), str(self.body["metadata"]["name"])


@dataclass(frozen=True)
class Component:
    """A kustomize component: ``before`` -> ``after`` (directory under manifests/, prose)."""

    directory: str
    before: str
    after: str
    about: str


COMPONENTS = (
    Component("webhook", "base", "webhook", """\
# Component: the admission webhook (docs/webhook.md), served by the extender's own pods. Enabled in
# manifests/kustomization.yaml (`components:`). Adds the MutatingWebhookConfiguration, its Service,
# the certs Job/CronJob with least-privilege RBAC, and to the extender Deployment the webhook flags,
# port 8443 and the Secret with its certificate. With cert-manager instead of the certs Job: also
# add the component webhook/cert-manager.
"""),
    Component("webhook/cert-manager", "webhook", "cert-manager", """\
# Component: the webhook's certificate from cert-manager instead of the certs Job. Use together
# with the webhook component:
#   components: [webhook, webhook/cert-manager]
# A self-signed Issuer signs Certificate aim-gpu-webhook into Secret aim-gpu-webhook-tls (the path
# the extender mounts), cert-manager's CA injector copies its CA into the webhook's caBundle
# (annotation cert-manager.io/inject-ca-from), and the certs Job, CronJob and their RBAC are left out.
"""),
    Component("components/tls", "base", "tls", """\
# Optional component: HTTPS between the scheduler and the extender, with certificate verification.
# Enable it by uncommenting it in manifests/kustomization.yaml (before `webhook`), or in your own
# overlay outside this repository:
#   resources:  [<path>/manifests]
#   components: [<path>/manifests/components/tls]
# Needs Secret aim-gpu-sharing/aim-gpu-extender-tls with tls.crt, tls.key and ca.crt (the layout
# cert-manager writes); docs/deployment.md "TLS" shows how to create it. The ConfigMap keeps its
# name, so roll the scheduler after switching: kubectl -n aim-gpu-sharing rollout restart deploy/aim-gpu-scheduler
"""),
    Component("components/native", "webhook", "native", """\
# Optional component: NATIVE scheduling mode (docs/extender.md "Native mode"). The second scheduler
# runs without the extender and places best fit from the node affinity the admission webhook writes
# (kube-scheduler-config.yaml here). Needs the webhook component; not together with components/tls
# (native makes no call to the extender). Enable it by adding to manifests/kustomization.yaml
#   components: [webhook, components/native]
# The extender Deployment stays: its pods serve the webhook. The ConfigMap keeps its name, so roll
# the scheduler after switching: kubectl -n aim-gpu-sharing rollout restart deploy/aim-gpu-scheduler
"""),
    Component("dra", "webhook", "dra", """\
# Optional component: DRA mode (docs/dra.md; Kubernetes 1.34+, resource.k8s.io/v1). Each GPU
# partition a device of driver gpu-partition.amd.com: adds the DRA kubelet plugin DaemonSet
# (python -m deviceplugin.dra --kubelet-plugin) with its RBAC, the DeviceClass and the webhook's
# configuration for ResourceClaimTemplates (its caBundle set by the certs Job, given --webhook for
# it), and removes the device plugin DaemonSet (both on one node would hand out the same
# partitions). Needs the webhook component before it:
#   components: [webhook, dra]
"""),
)

BASE_KUSTOMIZATION = """\
# Cluster pieces of aim-gpu-sharing: kubectl apply -k manifests/
# (KServe runtime/examples and workload examples are applied separately, see docs/deployment.md.)
#
# No `namespace:` transformer on purpose: one RoleBinding must live in kube-system
# (extension-apiserver-authentication-reader), every other object names aim-gpu-sharing itself.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
{resources}
# The partition controller is applied on its own, next to AMD's GPU Operator (its RBAC names the
# operator's namespace kube-amd-gpu): kubectl apply -k manifests/partitioner/ (docs/partitioner-controller.md).
components:
  # HTTPS to the extender with certificate verification: uncomment (docs/deployment.md "TLS").
  # - components/tls
  # The admission webhook in the extender's pods (docs/webhook.md). With cert-manager add
  # webhook/cert-manager after it.
  - webhook
  # Native scheduling mode: the second scheduler without the extender call, ranking the webhook's
  # node affinity (needs the webhook; not with components/tls; docs/extender.md "Native mode").
  # - components/native
  # DRA mode (Kubernetes 1.34+): the DRA kubelet plugin instead of the device plugin, the
  # DeviceClass, the webhook for ResourceClaimTemplates (needs the webhook; docs/dra.md).
  # - dra
{images}"""

PARTITIONER_KUSTOMIZATION = """\
# The partition controller: kubectl apply -k manifests/partitioner/
# Needs AMD's GPU Operator with its Device Config Manager (namespace kube-amd-gpu) and the
# aim-gpu-sharing namespace (manifests/namespace.yaml). docs/partitioner-controller.md.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
{resources}
{images}"""

IMAGES_TEXT = """\
images:
  # Point these at the registry you pushed the images to (docs/deployment.md "Build the images"),
  # e.g. `kustomize edit set image aim-gpu-extender=registry.example.com/aim/aim-gpu-extender:0.1.0`.
{entries}"""


# --- rendering ---------------------------------------------------------------------------------

def merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``, mappings merged key by key (as Helm merges values)."""
    out = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
_SOURCE = re.compile(r"^# Source: .*\n", re.MULTILINE)


def split_manifest(manifest: str) -> list[Doc]:
    """Helm's release manifest as documents, each with its comments, without ``# Source:``."""
    docs = []
    for part in _SEPARATOR.split(manifest):
        text = _SOURCE.sub("", part).strip("\n")
        body = yaml.safe_load(text + "\n") if text else None
        if body:
            docs.append(Doc(text + "\n", body))
    return docs


def render_variants(kubeconfig: Path) -> dict[str, list[Doc]]:
    """Every entry of VARIANTS rendered by Helm: upgrades of one release in ``kubeconfig``'s cluster."""
    import helm_sdkpy  # type: ignore[import-untyped]

    _prepare(kubeconfig)
    configuration = helm_sdkpy.Configuration(namespace=NAMESPACE, kubeconfig=str(kubeconfig))
    out: dict[str, list[Doc]] = {}
    for name, values in VARIANTS.items():
        result = asyncio.run(helm_sdkpy.Upgrade(configuration).run(
            RELEASE, str(CHART), values=merged(COMMON, values), install=True,
            take_ownership=True, reset_values=True, wait=False, timeout=INSTALL_TIMEOUT_SECONDS))
        if result.get("hooks"):
            raise RuntimeError(f"variant {name}: the chart rendered Helm hooks with renderedManifests true")
        out[name] = split_manifest(result["manifest"])
    return out


def _prepare(kubeconfig: Path) -> None:
    """What the chart needs of the cluster: the release namespace, the DCM namespace it looks up
    (AMD's GPU Operator's), cert-manager's kinds (stand-in CRDs with open schemas,
    tests/helm/data/standin-crds.yaml) and, where the cluster does not serve it, DRA's DeviceClass
    (tests/helm/data/standin-dra-crds.yaml: the chart checks resource.k8s.io/v1 is there)."""
    kubectl = _kubectl()

    def run(*args: str) -> None:
        done = subprocess.run([kubectl, f"--kubeconfig={kubeconfig}", *args], capture_output=True, text=True,
                              timeout=KUBECTL_TIMEOUT_SECONDS, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")

    run("apply", "--server-side", "-f", str(STANDIN_CRDS))
    run("wait", "--for=condition=Established", "crd/certificates.cert-manager.io", "crd/issuers.cert-manager.io",
        f"--timeout={KUBECTL_TIMEOUT_SECONDS}s")
    served = subprocess.run([kubectl, f"--kubeconfig={kubeconfig}", "api-versions"], capture_output=True, text=True,
                            timeout=KUBECTL_TIMEOUT_SECONDS, check=False)
    if DRA_API not in served.stdout.split():
        run("apply", "--server-side", "-f", str(STANDIN_DRA_CRDS))
        run("wait", "--for=condition=Established", "crd/deviceclasses.resource.k8s.io",
            f"--timeout={KUBECTL_TIMEOUT_SECONDS}s")
    # The release's own namespace too: the chart renders it (renderedManifests), so Helm adopts it
    # (take_ownership) rather than creating it first and then failing on "already exists".
    namespace = "---\n".join(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n"
                              for name in (DCM_NAMESPACE, NAMESPACE))
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(namespace)
        f.flush()
        run("apply", "--server-side", "-f", f.name)


def _kubectl() -> str:
    sys.path.insert(0, str(REPO))
    from tests.controlplane.binaries import kube_bin_dir

    bin_dir = kube_bin_dir()
    found = shutil.which("kubectl") or (str(bin_dir / "kubectl") if bin_dir else None)
    if found is None:
        raise RuntimeError("kubectl not found (PATH, AIM_K8S_BIN or ../shared/k8s/bin)")
    return found


@contextmanager
def private_control_plane() -> Iterator[Path]:
    """A throwaway etcd + kube-apiserver (+ controller manager) for Helm to install into; its
    kubeconfig. Raises RuntimeError saying what is missing."""
    sys.path.insert(0, str(REPO))
    from tests.controlplane.binaries import find_binaries
    from tests.controlplane.harness import ControlPlane

    binaries = find_binaries()
    if isinstance(binaries, str):
        raise RuntimeError(binaries)
    with tempfile.TemporaryDirectory(prefix="aim-render-") as workdir:
        plane = ControlPlane(binaries, Path(workdir))
        plane.start(default_scheduler=False)
        try:
            yield plane.kubeconfig
        finally:
            plane.stop()


# --- the files ---------------------------------------------------------------------------------

def _file_of() -> dict[tuple[str, str], str]:
    return {key: path for path, keys in FILES.items() for key in keys}


def _write_objects(docs: list[Doc], out: dict[str, str], *, about: str = "") -> list[str]:
    """Put ``docs`` into their FILES (in FILES order); the paths written, in FILES order."""
    file_of = _file_of()
    by_key = {d.key: d for d in docs}
    unknown = sorted(set(by_key) - set(file_of))
    if unknown:
        raise RuntimeError(f"objects without a file in FILES of tools/render_manifests.py: {unknown}")
    paths = []
    for path, keys in FILES.items():
        present = [by_key[k] for k in keys if k in by_key]
        if not present:
            continue
        if len(present) != len(keys):
            missing = [k for k in keys if k not in by_key]
            raise RuntimeError(f"{path}: rendered only in part ({missing} missing): split FILES")
        out[path] = HEADER + about + "---\n".join(d.text for d in present)
        paths.append(path)
    return paths


def _listed(paths: list[str], relative_to: str) -> str:
    return "\n".join(f"  - {Path(p).relative_to(relative_to) if relative_to else p}" for p in paths)


def _images() -> str:
    entries = "\n".join(f"  - name: {image}\n    newName: {image}\n    newTag: {_image_tag()}" for image in IMAGES)
    return IMAGES_TEXT.format(entries=entries)


def _image_tag() -> str:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    tags = {str(values["deviceplugin"]["image"]["tag"]), str(values["extender"]["image"]["tag"])}
    if len(tags) != 1:
        raise RuntimeError(f"values.yaml: the two images have different tags {sorted(tags)}")
    return tags.pop()


def _pointer(path: list[str | int]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def json_patch(old: Any, new: Any, path: list[str | int] | None = None) -> list[dict[str, Any]]:
    """Operations that turn ``old`` into ``new``; a list that only grew gets ``add .../-`` per new
    item, so two components appending to one list (the extender's args) both keep theirs."""
    path = path or []
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[dict[str, Any]] = []
        for key in old:
            if key not in new:
                ops.append({"op": "remove", "path": _pointer([*path, key])})
        for key, value in new.items():
            if key not in old:
                ops.append({"op": "add", "path": _pointer([*path, key]), "value": value})
            else:
                ops += json_patch(old[key], value, [*path, key])
        return ops
    if isinstance(old, list) and isinstance(new, list):
        if len(new) > len(old) and new[:len(old)] == old:
            return [{"op": "add", "path": _pointer(path) + "/-", "value": item} for item in new[len(old):]]
        if len(new) == len(old):
            return [op for i, (a, b) in enumerate(zip(old, new, strict=True)) for op in json_patch(a, b, [*path, i])]
    if old == new:
        return []
    return [{"op": "replace", "path": _pointer(path), "value": new}]


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def _target(body: dict[str, Any]) -> dict[str, str]:
    group, _, version = str(body["apiVersion"]).rpartition("/")
    target = {"group": group, "version": version, "kind": body["kind"], "name": body["metadata"]["name"]}
    if body["metadata"].get("namespace"):
        target["namespace"] = body["metadata"]["namespace"]
    return {k: v for k, v in target.items() if v}


def _component(component: Component, variants: dict[str, list[Doc]], out: dict[str, str]) -> None:
    before = {d.key: d for d in variants[component.before]}
    after = {d.key: d for d in variants[component.after]}
    lines = [HEADER.rstrip("\n"), component.about.rstrip("\n"),
             "apiVersion: kustomize.config.k8s.io/v1alpha1", "kind: Component"]
    added = [after[k] for k in after if k not in before]
    if added:
        paths = _write_objects(added, out)
        outside = [p for p in paths if not p.startswith(component.directory + "/")]
        if outside:
            raise RuntimeError(f"component {component.directory}: its objects belong in {outside} (FILES)")
        lines.append("resources:")
        lines += [f"  - {Path(p).relative_to(component.directory)}" for p in paths]
    patches: list[str] = []
    generators: list[str] = []
    for key, old in before.items():
        if key not in after:
            meta = {k: v for k, v in old.body["metadata"].items() if k in ("name", "namespace")}
            patches.append("  - patch: |-\n      $patch: delete\n"
                           f"      apiVersion: {old.body['apiVersion']}\n      kind: {key[0]}\n"
                           f"      metadata: {_flow(meta)}")
            continue
        new = after[key]
        if new.body == old.body:
            continue
        if key[0] == "ConfigMap":
            generators.append(_config_map_generator(component, new, out))
            continue
        ops = json_patch(old.body, new.body)
        text = "\n".join(f"      - op: {op['op']}\n        path: {op['path']}"
                         + (f"\n        value: {_flow(op['value'])}" if "value" in op else "") for op in ops)
        target = "\n".join(f"      {k}: {v}" for k, v in _target(old.body).items())
        patches.append(f"  - target:\n{target}\n    patch: |-\n{text}")
    if patches:
        lines += ["patches:", *patches]
    if generators:
        lines += ["configMapGenerator:", *generators]
    out[f"{component.directory}/kustomization.yaml"] = "\n".join(lines) + "\n"


def _config_map_generator(component: Component, doc: Doc, out: dict[str, str]) -> str:
    """A changed ConfigMap: a generator replacing it (same name, no hash suffix) from files."""
    data = doc.body.get("data") or {}
    if set(data) != {CONFIG_KEY} or doc.key != SCHEDULER_CONFIGMAP:
        raise RuntimeError(f"component {component.directory}: ConfigMap {doc.key[1]} changes {sorted(data)};"
                           " only the scheduler's config.yaml has a file name here")
    out[f"{component.directory}/{COMPONENT_CONFIG_FILE}"] = HEADER + data[CONFIG_KEY]
    labels = doc.body["metadata"].get("labels") or {}
    label_text = "".join(f"\n        {k}: {v}" for k, v in labels.items())
    return (f"  - name: {doc.key[1]}\n    namespace: {doc.body['metadata']['namespace']}\n    behavior: replace\n"
            f"    files:\n      - {CONFIG_KEY}={COMPONENT_CONFIG_FILE}\n    options:\n"
            f"      disableNameSuffixHash: true\n      labels:{label_text}")


def manifest_files(variants: dict[str, list[Doc]]) -> dict[str, str]:
    """Every generated file under manifests/: relative path -> content."""
    out: dict[str, str] = {}
    paths = _write_objects(variants["base"], out)
    base = [p for p in paths if not p.startswith("partitioner/")]
    partitioner = [p for p in paths if p.startswith("partitioner/")]
    out["kustomization.yaml"] = HEADER + BASE_KUSTOMIZATION.format(resources=_listed(base, ""), images=_images()) + "\n"
    out["partitioner/kustomization.yaml"] = HEADER + PARTITIONER_KUSTOMIZATION.format(
        resources=_listed(partitioner, "partitioner"), images=_images()) + "\n"
    for component in COMPONENTS:
        _component(component, variants, out)
    for path, (variant, key) in SCHEDULER_FILES.items():
        (doc,) = [d for d in variants[variant] if d.key == key]
        out[path] = HEADER + doc.body["data"][CONFIG_KEY]
    return dict(sorted(out.items()))


def committed_files() -> dict[str, str]:
    """What manifests/ holds now, the hand-written example directories left out."""
    return {str(p.relative_to(MANIFESTS)): p.read_text() for p in sorted(MANIFESTS.rglob("*"))
            if p.is_file() and p.relative_to(MANIFESTS).parts[0] not in HAND_WRITTEN}


def differences(rendered: Mapping[str, str], committed: Mapping[str, str]) -> list[str]:
    """One line per file that differs (a unified diff of the first), empty when equal."""
    out = []
    for path in sorted(set(rendered) | set(committed)):
        if path not in committed:
            out.append(f"manifests/{path}: missing (the chart renders it)")
        elif path not in rendered:
            out.append(f"manifests/{path}: not rendered from the chart (delete it or add it to FILES)")
        elif rendered[path] != committed[path]:
            diff = difflib.unified_diff(committed[path].splitlines(), rendered[path].splitlines(),
                                        f"manifests/{path}", "rendered", lineterm="", n=1)
            out.append(f"manifests/{path}: differs from the chart's rendering\n" + "\n".join(list(diff)[:40]))
    return out


def render(kubeconfig: Path | None = None) -> tuple[dict[str, list[Doc]], dict[str, str]]:
    """The variants and the files, rendered in ``kubeconfig``'s cluster or a private one."""
    if kubeconfig is not None:
        variants = render_variants(kubeconfig)
    else:
        with private_control_plane() as own:
            variants = render_variants(own)
    return variants, manifest_files(variants)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if manifests/ differs")
    parser.add_argument("--kubeconfig", type=Path, help="a scratch cluster to install into (default: a private one)")
    args = parser.parse_args(argv)
    try:
        _, files = render(args.kubeconfig)
    except RuntimeError as error:
        print(f"render_manifests: {error}", file=sys.stderr)
        return 2
    problems = differences(files, committed_files())
    if args.check:
        print("\n".join(problems) or "manifests/ is the chart's rendering", file=sys.stderr)
        return 1 if problems else 0
    for path in committed_files():
        if path not in files:
            (MANIFESTS / path).unlink()
    for path, text in files.items():
        target = MANIFESTS / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    print(f"wrote {len(files)} files under manifests/ ({len(problems)} changed)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
