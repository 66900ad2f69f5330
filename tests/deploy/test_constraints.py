"""constraints.txt pins what every install path installs (README commands, .ci/run, Dockerfiles):
each requirement of pyproject.toml (dependencies, test and dev extras) and the README's extra
packages is pinned there with ``==`` to a version inside the range pyproject.toml asks for, and
every install path passes ``-c constraints.txt``. A new dependency without a re-lock
(tools/lock_constraints.sh) fails here, not on the next PyPI release."""

from __future__ import annotations

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.deploy.deploy_support import REPO

# Installed by the README's test command beside the test extra (helm-sdkpy declares Python >= 3.12).
README_EXTRAS = ("helm-sdkpy", "cffi")
INSTALL_PATHS = ("README.md", ".ci/run", "Dockerfile.extender", "Dockerfile.plugin")


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for number, raw in enumerate((REPO / "constraints.txt").read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and name and version, f"constraints.txt:{number}: not name==version: {raw!r}"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    listed = [*project["dependencies"], *extras["test"], *extras["dev"]]
    return [Requirement(r) for r in listed] + [Requirement(name) for name in README_EXTRAS]


@pytest.mark.parametrize("requirement", _requirements(), ids=str)
def test_every_requirement_is_pinned_inside_its_range(requirement: Requirement) -> None:
    pins = _pins()
    name = canonicalize_name(requirement.name)
    if requirement.marker is not None and not requirement.marker.evaluate():
        return  # not installed on this platform (uvloop on Windows)
    assert name in pins, f"{requirement.name} is not pinned in constraints.txt: run tools/lock_constraints.sh"
    assert requirement.specifier.contains(pins[name], prereleases=True), \
        f"constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's {requirement}"


@pytest.mark.parametrize("path", INSTALL_PATHS)
def test_every_install_path_uses_the_constraints(path: str) -> None:
    text = (REPO / path).read_text()
    installs = [line for line in text.splitlines() if re.search(r"\bpip install\b", line)
                and not line.lstrip().startswith("#")]
    assert installs, f"{path}: no pip install found"
    for line in installs:
        assert line.count("pip install") == line.count("-c constraints.txt"), f"{path}: unpinned install: {line}"
