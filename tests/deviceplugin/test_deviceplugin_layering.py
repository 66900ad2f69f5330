"""Module boundaries: deviceplugin depends on sizing only, never on extender; the kubernetes
client is imported only in k8s.py, grpc only in the gRPC shell; pure modules stay pure."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import deviceplugin

PACKAGE = Path(deviceplugin.__file__).parent
SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "_pb2" not in p.name)  # generated stubs aside
PURE_MODULES = (
    "preferred_allocation", "allocate_reply", "labels", "reconcile", "inventory", "checkpoint", "kubelet_api"
)


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_imports_extender(path: Path) -> None:
    assert "extender" not in imported_roots(path)


def test_kubernetes_client_is_imported_only_in_k8s_module() -> None:
    users = {str(p.relative_to(PACKAGE)) for p in SOURCES if "kubernetes" in imported_roots(p)}
    assert users == {"k8s.py", "dra/publish.py", "dra/kubelet_plugin.py"}  # the DRA driver's own API shell


def test_grpc_is_imported_only_by_the_grpc_shell() -> None:
    users = {str(p.relative_to(PACKAGE)) for p in SOURCES if "grpc" in imported_roots(p)}
    assert users == {"server.py", "registration.py", "runner.py", "dra/kubelet_plugin.py"}  # + the DRA kubelet shell


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_modules_do_no_io_or_rpc(module: str) -> None:
    roots = imported_roots(PACKAGE / f"{module}.py")
    assert not roots & {"grpc", "kubernetes", "socket", "subprocess", "prometheus_client", "logging"}


def test_importing_the_cli_loads_neither_extender_nor_kubernetes() -> None:
    code = (
        "import sys, deviceplugin.cli, deviceplugin.runner;"
        "bad = [m for m in ('extender', 'kubernetes') if m in sys.modules];"
        "sys.exit(f'loaded {bad}' if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr + result.stdout
