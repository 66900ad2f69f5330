"""One deployment source: manifests/ is the chart rendered by tools/render_manifests.py.

- Byte for byte: the chart is rendered again (Helm through helm-sdkpy, into a private control plane
  so no release touches the objects other tests apply to the session's) and every generated file
  under manifests/ must equal the committed one; an edit of either alone fails here.
- Composed: `kubectl kustomize` of each entry point the docs name (manifests/, manifests/partitioner/,
  with components/tls, components/native, webhook/cert-manager, dra) builds exactly the objects the chart
  renders with the matching values, so the generated component patches compose as the chart does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.controlplane.binaries import find_binaries, kube_bin_dir
from tests.helm.chart_support import helm
from tools import render_manifests as rm

Objects = dict[tuple[str, str], dict[str, Any]]


@pytest.fixture(scope="module")
def rendered() -> Iterator[tuple[dict[str, list[rm.Doc]], dict[str, str]]]:
    helm()
    if isinstance(find_binaries(), str):
        pytest.skip(str(find_binaries()))
    yield rm.render()


def _kustomize() -> list[str]:
    if shutil.which("kustomize"):
        return [str(shutil.which("kustomize")), "build"]
    kubectl = shutil.which("kubectl") or (str(kube_bin_dir() / "kubectl") if kube_bin_dir() else None)
    if kubectl is None:
        pytest.skip("neither kustomize nor kubectl found (kubectl: AIM_K8S_BIN, tests/controlplane/README.md)")
    return [kubectl, "kustomize"]


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    """The object with an embedded KubeSchedulerConfiguration parsed (the component's file carries
    the generated-file header as a comment, the chart's ConfigMap does not)."""
    out = json.loads(json.dumps(body))
    data = out.get("data") or {}
    if rm.CONFIG_KEY in data:
        data[rm.CONFIG_KEY] = yaml.safe_load(data[rm.CONFIG_KEY])
    return out


def _objects(bodies: list[dict[str, Any]]) -> Objects:
    out: Objects = {}
    for body in bodies:
        key = (body["kind"], body["metadata"]["name"])
        assert key not in out, f"{key} twice"
        out[key] = _comparable(body)
    return out


def build(directory: Path) -> Objects:
    done = subprocess.run([*_kustomize(), str(directory)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return _objects([d for d in yaml.safe_load_all(done.stdout) if d])


def with_components(tmp_path: Path, components: list[str]) -> Path:
    """A copy of manifests/ whose kustomization lists ``components`` (as a user uncomments them)."""
    copy = tmp_path / "manifests"
    shutil.copytree(rm.MANIFESTS, copy)
    kustomization = yaml.safe_load((copy / "kustomization.yaml").read_text())
    kustomization["components"] = components
    (copy / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return copy


def _partitioner_keys() -> set[tuple[str, str]]:
    return {key for path, keys in rm.FILES.items() if path.startswith("partitioner/") for key in keys}


def chart_objects(variants: dict[str, list[rm.Doc]], variant: str, *, partitioner: bool) -> Objects:
    """The chart's objects of ``variant``: the partition controller's alone, or all the others."""
    inside = _partitioner_keys()
    return _objects([d.body for d in variants[variant] if (d.key in inside) == partitioner])


def assert_same(built: Objects, chart: Objects) -> None:
    assert sorted(set(built) - set(chart)) == [], "built by kustomize, not rendered by the chart"
    assert sorted(set(chart) - set(built)) == [], "rendered by the chart, not built by kustomize"
    differ = [key for key in chart if built[key] != chart[key]]
    assert not differ, "\n".join(f"{key}:\n  kustomize {json.dumps(built[key], sort_keys=True)}"
                                  f"\n  chart     {json.dumps(chart[key], sort_keys=True)}" for key in differ)


def test_committed_manifests_are_the_chart_rendered(rendered: tuple[dict[str, list[rm.Doc]], dict[str, str]]) -> None:
    _, files = rendered
    problems = rm.differences(files, rm.committed_files())
    assert not problems, "run `python tools/render_manifests.py` after changing the chart:\n" + "\n".join(problems)


def test_every_generated_file_says_so(rendered: tuple[dict[str, list[rm.Doc]], dict[str, str]]) -> None:
    _, files = rendered
    assert len(files) > 20
    assert all(text.startswith(rm.HEADER) for text in files.values())


@pytest.mark.parametrize(("components", "variant"), [
    (["webhook"], "webhook"),  # manifests/kustomization.yaml as shipped
    (["components/tls", "webhook"], "tls-webhook"),
    (["webhook", "components/native"], "native"),
    (["webhook", "webhook/cert-manager"], "cert-manager"),
    ([], "base"),
    (["webhook", "dra"], "dra"),
], ids=["shipped", "tls", "native", "cert-manager", "no-webhook", "dra"])
def test_kustomize_entry_points_build_the_chart(rendered: tuple[dict[str, list[rm.Doc]], dict[str, str]],
                                               tmp_path: Path, components: list[str], variant: str) -> None:
    variants, _ = rendered
    directory = rm.MANIFESTS if variant == "webhook" else with_components(tmp_path, components)
    assert_same(build(directory), chart_objects(variants, variant, partitioner=False))


def test_partitioner_entry_point_builds_the_chart(rendered: tuple[dict[str, list[rm.Doc]], dict[str, str]]) -> None:
    variants, _ = rendered
    assert_same(build(rm.MANIFESTS / "partitioner"), chart_objects(variants, "base", partitioner=True))


def test_scheduler_files_are_the_chart_configmaps(rendered: tuple[dict[str, list[rm.Doc]], dict[str, str]]) -> None:
    """manifests/scheduler/*.yaml hold the config.yaml of the ConfigMap the chart renders for that
    mode (and test_deploy_scheduler_config holds those files to extender/scheduler_config.py)."""
    variants, _ = rendered
    for path, (variant, key) in rm.SCHEDULER_FILES.items():
        (configmap,) = [d for d in variants[variant] if d.key == key]
        committed = (rm.MANIFESTS / path).read_text()
        assert committed.removeprefix(rm.HEADER) == configmap.body["data"][rm.CONFIG_KEY], path


# --- the renderer's own logic, no cluster -------------------------------------------------------

def test_a_one_byte_edit_is_reported() -> None:
    committed = {"a.yaml": "x: 1\n", "b.yaml": "y: 2\n"}
    assert rm.differences(dict(committed), committed) == []
    (problem,) = rm.differences({"a.yaml": "x: 1\n", "b.yaml": "y: 3\n"}, committed)
    assert problem.startswith("manifests/b.yaml: differs") and "+y: 3" in problem
    assert rm.differences({"a.yaml": "x: 1\n"}, committed) == [
        "manifests/b.yaml: not rendered from the chart (delete it or add it to FILES)"]


def test_grown_lists_become_appends_that_compose() -> None:
    """Two components appending to the same list (tls and webhook args) keep both: `/-` adds."""
    import jsonpatch

    base = {"args": ["serve", "--port=8888"], "probe": {"path": "/readyz"}, "mode": 292}
    tls = {"args": ["serve", "--port=8888", "--tls-cert-file=c"], "probe": {"path": "/readyz", "scheme": "HTTPS"},
           "mode": 288}
    webhook = {"args": ["serve", "--port=8888", "--webhook-port=8443"], "probe": {"path": "/readyz"}, "mode": 292}
    tls_ops, webhook_ops = rm.json_patch(base, tls), rm.json_patch(base, webhook)
    assert tls_ops == [{"op": "add", "path": "/args/-", "value": "--tls-cert-file=c"},
                       {"op": "add", "path": "/probe/scheme", "value": "HTTPS"},
                       {"op": "replace", "path": "/mode", "value": 288}]
    both = jsonpatch.apply_patch(jsonpatch.apply_patch(base, tls_ops), webhook_ops)
    assert both["args"] == ["serve", "--port=8888", "--tls-cert-file=c", "--webhook-port=8443"]
    # a list that did not only grow is replaced whole; keys with '/' are escaped
    assert rm.json_patch({"l": [1, 2]}, {"l": [2]}) == [{"op": "replace", "path": "/l", "value": [2]}]
    assert rm.json_patch({"a": {}}, {"a": {"prometheus.io/port": "1"}}) == [
        {"op": "add", "path": "/a/prometheus.io~1port", "value": "1"}]


def test_the_renderer_needs_no_package_at_run_time() -> None:
    """tools/ is a developer tool: nothing the images install imports it."""
    for package in ("sizing", "deviceplugin", "extender", "partitioner"):
        for source in (rm.REPO / package).rglob("*.py"):
            assert "render_manifests" not in source.read_text(), source
    assert os.path.exists(rm.CHART / "Chart.yaml")
