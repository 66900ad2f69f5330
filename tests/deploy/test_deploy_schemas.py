"""Every object under manifests/ is valid for the Kubernetes API, checked with the published
OpenAPI schemas (kubernetes-validate, strict: unknown fields are errors).

Covered:
- each YAML file parses and each document names apiVersion, kind and metadata.name;
- every Kubernetes object validates against the oldest (1.31) and newest schema versions we claim;
- nothing but the known non-Kubernetes kinds (kustomize, KubeSchedulerConfiguration, KServe CRDs)
  escapes schema validation - those are checked field by field in the other test files.
"""

from __future__ import annotations

import kubernetes_validate
import pytest

from tests.deploy.deploy_support import (
    NON_KUBERNETES_KINDS,
    Doc,
    cluster_objects,
    is_patch_file,
    load_docs,
    manifest_files,
)

# Oldest Kubernetes minor we support and the newest schema kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.31", "1.37")

OBJECTS = cluster_objects()
# APIs younger than the oldest version we claim, checked from the release that serves them:
# resource.k8s.io/v1 (DRA mode, manifests/dra) is GA in Kubernetes 1.34.
FIRST_SERVED = {"resource.k8s.io/v1": "1.34"}


def _checked_version(doc: Doc, version: str) -> str:
    first = FIRST_SERVED.get(doc.api_version, version)
    return max(version, first, key=lambda v: tuple(int(n) for n in v.split(".")))


def test_manifests_directory_has_the_expected_pieces() -> None:
    kinds = {(d.kind, d.name) for d in OBJECTS}
    for expected in [
        ("Namespace", "aim-gpu-sharing"),
        ("DaemonSet", "aim-gpu-deviceplugin"),
        ("Deployment", "aim-gpu-extender"),
        ("Service", "aim-gpu-extender"),
        ("Deployment", "aim-gpu-scheduler"),
        ("ConfigMap", "aim-gpu-scheduler-config"),
    ]:
        assert expected in kinds, f"missing {expected}"


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_yaml_document_names_its_api_version_kind_and_name(path) -> None:
    docs = load_docs(path)
    assert docs, f"{path} holds no YAML document"
    for d in docs:
        assert d.api_version and d.kind, f"{d.rel}: apiVersion/kind missing"
        if d.kind not in {"Kustomization", "Component", "KubeSchedulerConfiguration"}:
            assert d.name, f"{d.rel}: metadata.name missing"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("doc", OBJECTS, ids=lambda d: f"{d.rel}:{d.kind}/{d.name}")
def test_object_is_valid_for_kubernetes(doc: Doc, version: str) -> None:
    try:
        kubernetes_validate.validate(doc.body, _checked_version(doc, version), strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        pytest.fail(f"{doc.rel} {doc.kind}/{doc.name} invalid for Kubernetes {version}: {path}: {e.message}")
    except kubernetes_validate.SchemaNotFoundError as e:
        pytest.fail(f"{doc.rel}: {e.message}; add the kind to NON_KUBERNETES_KINDS only with its own checks")


def test_only_known_kinds_skip_schema_validation() -> None:
    skipped = {
        (d.api_version, d.kind)
        for p in manifest_files()
        for d in load_docs(p)
        if not is_patch_file(p) and d not in OBJECTS
    }
    assert skipped <= NON_KUBERNETES_KINDS, skipped - NON_KUBERNETES_KINDS


def test_validator_rejects_an_unknown_field() -> None:
    """The strict schema really is strict: a typo in a field name is an error."""
    deployment = next(d for d in OBJECTS if d.kind == "Deployment").body
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)
