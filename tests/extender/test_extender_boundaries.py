"""extender depends on sizing only, through one module; its public names are listed."""

from __future__ import annotations

import ast
from pathlib import Path

import extender

PACKAGE = Path(extender.__file__).resolve().parent


def imported_roots(path: Path) -> dict[str, str]:
    """Top-level package of every import in a module -> the full imported name."""
    found: dict[str, str] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name.split(".")[0], alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.setdefault(node.module.split(".")[0], node.module)
    return found


def test_extender_never_imports_the_device_plugin() -> None:
    offenders = [p.name for p in PACKAGE.glob("*.py") if "deviceplugin" in imported_roots(p)]
    assert offenders == []


def test_only_the_requirements_module_calls_sizing() -> None:
    callers = sorted(p.name for p in PACKAGE.glob("*.py") if "sizing" in imported_roots(p))
    assert callers == ["requirements.py"]


def test_exported_names_exist() -> None:
    assert extender.__all__ == sorted(extender.__all__)
    for name in extender.__all__:
        assert hasattr(extender, name)
