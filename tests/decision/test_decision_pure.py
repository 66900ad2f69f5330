"""The decision core is pure (decision/__init__.py): no module of it imports a way to reach files,
processes, the network, the clock or a logger, or calls open/print/input. import-linter keeps it off
the project's other packages; this keeps it off the standard library's I/O (the planner's files are
read by extender.plan_files, its terminal asked by extender.terminal)."""

from __future__ import annotations

import ast
from pathlib import Path

import decision

CORE = Path(decision.__file__).resolve().parent
# Top-level modules through which code does I/O, reads the environment or the clock, or logs.
IO_MODULES = frozenset({
    "os", "io", "sys", "pathlib", "shutil", "tempfile", "glob", "importlib", "socket", "ssl", "http", "urllib",
    "subprocess", "threading", "asyncio", "select", "signal", "time", "datetime", "logging", "codecs", "yaml",
    "json", "orjson", "kubernetes", "grpc", "fastapi", "uvicorn", "prometheus_client",
})
IO_CALLS = frozenset({"open", "print", "input", "exec", "eval", "__import__"})


def _offences(path: Path, root: Path = CORE.parent) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in IO_CALLS:
            found.append(f"{path.relative_to(root)}:{node.lineno}: calls {node.func.id}()")
            continue
        else:
            continue
        found.extend(f"{path.relative_to(root)}:{node.lineno}: imports {name}"
                     for name in names if name.split(".")[0] in IO_MODULES)
    return found


def test_the_decision_core_does_no_io() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert any(p.parent.name == "planning" for p in modules)  # the planner is part of it
    assert [offence for path in modules for offence in _offences(path)] == []


def test_the_check_finds_io(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os.path\nfrom importlib import resources\nprint(open('x').read())\n")
    assert [o.split(": ", 1)[1] for o in _offences(sample, tmp_path)] == [
        "imports os.path", "imports importlib", "calls print()", "calls open()"]
