"""`kubectl apply -k manifests/` renders what the tests of the individual files checked.

Needs a kustomize: `kustomize` or `kubectl` (built-in kustomize) on PATH, or the kubectl in AIM_K8S_BIN;
skipped otherwise.
Covered:
- the base renders, every rendered object validates against the Kubernetes schema, and carries
  the part-of label;
- with the TLS component the extender serves HTTPS with its certificate, probes use HTTPS, the
  scheduler ConfigMap holds the TLS config and the scheduler mounts the CA at its caFile path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.controlplane.binaries import kube_bin_dir
from tests.deploy.deploy_support import MANIFESTS, parse_flags


def _kubectl() -> str | None:
    """kubectl on PATH, else the one of the control-plane tests (AIM_K8S_BIN)."""
    bin_dir = kube_bin_dir()
    return shutil.which("kubectl") or (str(bin_dir / "kubectl") if bin_dir else None)


KUSTOMIZE = [shutil.which("kustomize"), "build"] if shutil.which("kustomize") else [_kubectl(), "kustomize"]
pytestmark = pytest.mark.skipif(
    KUSTOMIZE[0] is None, reason="neither kustomize nor kubectl found (PATH, AIM_K8S_BIN)")


def build(directory: Path) -> list[dict]:
    done = subprocess.run([*KUSTOMIZE, str(directory)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return build(MANIFESTS)


@pytest.fixture(scope="module")
def with_tls(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    overlay = tmp_path_factory.mktemp("tls-overlay")
    rel = os.path.relpath(MANIFESTS, overlay)
    (overlay / "kustomization.yaml").write_text(
        f"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{rel}]\ncomponents: [{rel}/components/tls]\n"
    )
    return build(overlay)


def get(objects: list[dict], kind: str, name: str) -> dict:
    hits = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(hits) == 1, f"{kind}/{name}: {len(hits)} rendered"
    return hits[0]


def test_base_renders_valid_labelled_objects(base: list[dict]) -> None:
    assert len(base) >= 15
    for obj in base:
        kubernetes_validate.validate(obj, "1.37", strict=True)
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "aim-gpu-sharing"


def test_tls_component_renders_valid_objects(with_tls: list[dict]) -> None:
    for obj in with_tls:
        kubernetes_validate.validate(obj, "1.37", strict=True)


def test_tls_component_switches_the_extender_to_https(with_tls: list[dict]) -> None:
    spec = get(with_tls, "Deployment", "aim-gpu-extender")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    flags = parse_flags(container["args"])
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    for flag in ("--tls-cert-file", "--tls-key-file"):
        assert flags[flag].startswith(mounts["tls"] + "/")
    assert {"--node-cache", "--policy", "--port"} <= flags.keys(), "the patch must keep the base args"
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert container["livenessProbe"]["httpGet"]["scheme"] == "HTTPS"


def test_tls_component_gives_the_scheduler_the_https_config_and_its_ca(with_tls: list[dict]) -> None:
    config = yaml.safe_load(get(with_tls, "ConfigMap", "aim-gpu-scheduler-config")["data"]["config.yaml"])
    extender = config["extenders"][0]
    assert extender["enableHTTPS"] is True and extender["urlPrefix"].startswith("https://")
    ca_file = extender["tlsConfig"]["caFile"]
    spec = get(with_tls, "Deployment", "aim-gpu-scheduler")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
    directory, _, file_name = ca_file.rpartition("/")
    volume = next(v for v in spec["volumes"] if v["name"] == mounts[directory])
    assert file_name in {i["path"] for i in volume["secret"]["items"]}
    # the base config mount is still there
    assert "/etc/aim-gpu-scheduler" in mounts


@pytest.mark.parametrize("variant", ["base", "with_tls"])
def test_no_volume_is_mounted_inside_another(variant: str, request: pytest.FixtureRequest) -> None:
    """A mount point inside a (read-only) configMap/secret volume cannot be created at start."""
    for obj in request.getfixturevalue(variant):
        if obj["kind"] not in {"Deployment", "DaemonSet"}:
            continue
        for container in obj["spec"]["template"]["spec"]["containers"]:
            paths = [m["mountPath"].rstrip("/") for m in container.get("volumeMounts", [])]
            nested = [(a, b) for a in paths for b in paths if a != b and b.startswith(a + "/")]
            assert not nested, f"{obj['metadata']['name']}/{container['name']}: {nested}"


def test_native_component_puts_the_native_profile_into_the_scheduler_configmap(
        tmp_path_factory: pytest.TempPathFactory, base: list[dict]) -> None:
    from extender.scheduler_config import native_scheduler_config

    overlay = tmp_path_factory.mktemp("native-overlay")
    rel = os.path.relpath(MANIFESTS, overlay)
    (overlay / "kustomization.yaml").write_text(
        f"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{rel}]\ncomponents: [{rel}/components/native]\n"
    )
    native = build(overlay)
    configmap = get(native, "ConfigMap", "aim-gpu-scheduler-config")
    assert yaml.safe_load(configmap["data"]["config.yaml"]) == native_scheduler_config()
    assert configmap["metadata"]["labels"] == get(base, "ConfigMap", "aim-gpu-scheduler-config")["metadata"]["labels"]
    # everything else is the base, the webhook's --webhook-scheduler-name included
    assert [o for o in native if o["kind"] != "ConfigMap" or o["metadata"]["name"] != "aim-gpu-scheduler-config"] == [
        o for o in base if o["kind"] != "ConfigMap" or o["metadata"]["name"] != "aim-gpu-scheduler-config"]
    extender = get(native, "Deployment", "aim-gpu-extender")["spec"]["template"]["spec"]["containers"][0]
    assert parse_flags(extender["args"])["--webhook-scheduler-name"] == "aim-gpu-scheduler"
