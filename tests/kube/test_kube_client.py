"""kube.client.load_api_client, the one loader of the kubernetes client's configuration: a kubeconfig
that is a FIFO, a directory or too large is refused naming the flag before the client opens it (a FIFO
blocked it for good), a malformed one is one KubeConfigError line, and a good one configures the client."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import yaml

from kube.client import KubeConfigError, load_api_client
from kube.regular_file import MAX_FILE_BYTES

GOOD = {
    "apiVersion": "v1", "kind": "Config", "current-context": "test",
    "clusters": [{"name": "test", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}}],
    "users": [{"name": "test", "user": {"token": "abc"}}],
    "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
}


def load_bounded(kubeconfig: str | None) -> object:
    """load_api_client in a thread, so a blocking open fails the test instead of hanging it."""
    result: dict[str, object] = {}

    def call() -> None:
        try:
            result["value"] = load_api_client(kubeconfig)
        except KubeConfigError as error:
            result["value"] = error

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "load_api_client blocked"
    return result["value"]


@pytest.fixture
def not_in_a_pod(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)


def test_a_good_kubeconfig_configures_the_client(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(GOOD))
    api = load_bounded(str(path))
    assert not isinstance(api, KubeConfigError), api
    assert api.configuration.host == "https://127.0.0.1:6443"  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["a FIFO", "a directory", "too large"])
def test_a_kubeconfig_that_is_no_small_regular_file_is_refused_naming_the_flag(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "kubeconfig"
    if kind == "a FIFO":
        os.mkfifo(path)
    elif kind == "a directory":
        path.mkdir()
    else:
        path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    error = load_bounded(str(path))
    assert isinstance(error, KubeConfigError)
    assert str(error).startswith(f"--kubeconfig {path}: ")
    assert ("larger than" if kind == "too large" else kind) in str(error)


def test_kubeconfig_from_the_environment_is_checked_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        not_in_a_pod: None) -> None:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    monkeypatch.setenv("KUBECONFIG", str(path))
    error = load_bounded(None)
    assert isinstance(error, KubeConfigError) and f"KUBECONFIG {path}: not a regular file (a FIFO)" in str(error)


def test_no_configuration_at_all_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             not_in_a_pod: None) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    error = load_bounded(None)
    assert isinstance(error, KubeConfigError) and "no Kubernetes configuration" in str(error)
    assert "\n" not in str(error)


@pytest.mark.parametrize("text", ["{", "- a list\n", "apiVersion: v1\nkind: Config\n"])
def test_a_malformed_kubeconfig_is_one_line_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(text)
    error = load_bounded(str(path))
    assert isinstance(error, KubeConfigError) and str(error).startswith(f"--kubeconfig {path}: ")
    assert "\n" not in str(error)
