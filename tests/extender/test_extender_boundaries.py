"""extender and its decision core depend on sizing only: on its contract and bounded parsers everywhere,
and on the sizing computation through one module (plus the planner's geometry lookups); its public
names are listed."""

from __future__ import annotations

import ast
from pathlib import Path

import decision
import extender

PACKAGE = Path(extender.__file__).resolve().parent
ROOT = PACKAGE.parent
CORE = Path(decision.__file__).resolve().parent
SHARED_CONTRACT = {"sizing.contract", "sizing.bounded"}


def imported_modules(path: Path) -> set[str]:
    """Every absolute module a file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # ``from sizing import contract`` imports the contract, not sizing
                name = f"{node.module}.{alias.name}"
                found.add(name if name in SHARED_CONTRACT else node.module)
    return found


def modules() -> list[Path]:
    return sorted(p for package in (PACKAGE, CORE) for p in package.rglob("*.py") if "admission" not in p.parts)


def test_extender_never_imports_the_device_plugin() -> None:
    offenders = [p.name for p in modules() if any(m.split(".")[0] == "deviceplugin" for m in imported_modules(p))]
    assert offenders == []


def test_only_the_requirement_stage_and_the_planner_geometry_call_sizing() -> None:
    callers = {
        str(p.relative_to(ROOT))
        for p in modules()
        if any(m.split(".")[0] == "sizing" and m not in SHARED_CONTRACT for m in imported_modules(p))
    }
    # models_source.py loads a models directory into a sizing catalogue for the requirement stage;
    # cli.py names the catalogue type when it hands a new one to the sizer; fits.py and fixes.py are
    # the one fix-suggestion engine the requirement stage and the webhook share (they size each fix)
    assert "decision/requirement.py" in callers
    assert callers <= {"decision/requirement.py", "decision/fits.py", "decision/fixes.py",
                       "decision/planning/geometry.py", "extender/models_source.py", "extender/cli.py"}


def test_keys_and_the_resource_name_are_written_only_in_sizing_contract() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in modules()
        if '"amd.com/gpu-partition' in p.read_text() or '"aim.amd.com/' in p.read_text()
    ]
    assert offenders == []


def test_exported_names_exist() -> None:
    assert extender.__all__ == sorted(extender.__all__)
    for name in extender.__all__:
        assert hasattr(extender, name)
