"""Dockerfile.plugin and Dockerfile.extender are buildable as far as can be checked without a
Docker engine: a small parser reads the instructions and the build context rules.

Covered:
- every FROM resolves (through ARG defaults) to a base image pinned to an explicit version tag;
- every COPY source exists in the repository and is not excluded by .dockerignore;
- the package data declared in pyproject.toml lies inside the copied directories;
- the final ENTRYPOINT is exec-form and names a console script of [project.scripts];
- the extender runs as a numeric non-root USER, the plugin as root (documented);
- .dockerignore keeps .git, .venv and tests out of the build context.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deploy_support import REPO

DOCKERFILES = {"plugin": REPO / "Dockerfile.plugin", "extender": REPO / "Dockerfile.extender"}
SCRIPT_OF = {"plugin": "aim-deviceplugin", "extender": "aim-extender"}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str
    line: int


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped."""
    out: list[Instruction] = []
    buffer, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if buffer and line.startswith("#"):
            continue
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1].rstrip() + " "
            continue
        buffer += line
        keyword, _, value = buffer.partition(" ")
        out.append(Instruction(keyword.upper(), value.strip(), start))
        buffer = ""
    assert not buffer, f"{path}: dangling line continuation"
    return out


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    args: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG" and "=" in ins.value:
            name, _, default = ins.value.partition("=")
            args[name.strip()] = default.strip().strip('"')
    return args


def substitute(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), text)


def copy_sources(ins: Instruction) -> list[str]:
    value = ins.value
    words = json.loads(value) if value.startswith("[") else shlex.split(value)
    words = [w for w in words if not w.startswith("--")]
    return words[:-1]


class DockerIgnore:
    """The .dockerignore rules: patterns in order, `!` re-includes, the last match wins, and a
    pattern matching a directory applies to everything under it (moby/patternmatcher)."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, str]] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line[1:].strip() if negate else line
            self.rules.append((negate, pattern.strip("/")))

    @staticmethod
    def _regex(pattern: str) -> str:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                body = pattern[i + 1 : end]
                out, i = out + "[" + ("^" + body[1:] if body.startswith("!") else body) + "]", end + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return out

    def excluded(self, path: str) -> bool:
        parts = path.strip("/").split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        verdict = False
        for negate, pattern in self.rules:
            regex = self._regex(pattern)
            if any(re.fullmatch(regex, p) for p in prefixes):
                verdict = not negate
        return verdict


@pytest.fixture(scope="module")
def dockerignore() -> DockerIgnore:
    return DockerIgnore((REPO / ".dockerignore").read_text())


@pytest.mark.parametrize("name", DOCKERFILES)
def test_base_images_are_pinned_to_a_version_tag(name: str) -> None:
    instructions = parse_dockerfile(DOCKERFILES[name])
    args = global_args(instructions)
    bases = [substitute(i.value.split()[0], args) for i in instructions if i.keyword == "FROM"]
    stage_names = {i.value.split()[-1] for i in instructions if i.keyword == "FROM" and " AS " in i.value.upper()}
    for base in bases:
        if base in stage_names:
            continue
        assert "$" not in base, f"unresolved build arg in FROM {base}"
        image, _, tag = base.partition("@")[0].rpartition(":")
        assert image and tag, f"{base}: no tag"
        assert tag != "latest" and re.match(r"\d+\.\d+\.\d+", tag), f"{base}: pin an exact version"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_copy_sources_exist_and_are_in_the_build_context(name: str, dockerignore: DockerIgnore) -> None:
    copies = [i for i in parse_dockerfile(DOCKERFILES[name]) if i.keyword == "COPY" and "--from=" not in i.value]
    assert copies
    for ins in copies:
        for source in copy_sources(ins):
            assert (REPO / source).exists(), f"line {ins.line}: COPY source {source} does not exist"
            assert not dockerignore.excluded(source), f"line {ins.line}: {source} is excluded by .dockerignore"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_package_and_its_data_is_copied(name: str, pyproject: dict[str, Any], dockerignore: DockerIgnore) -> None:
    copied = {
        s.rstrip("/")
        for i in parse_dockerfile(DOCKERFILES[name])
        if i.keyword == "COPY" and "--from=" not in i.value
        for s in copy_sources(i)
    }
    assert "pyproject.toml" in copied
    readme = pyproject["project"].get("readme")
    if readme:
        assert readme in copied, "setuptools reads the readme while building"
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied
    for package, patterns in pyproject["tool"]["setuptools"].get("package-data", {}).items():
        for pattern in patterns:
            for data_file in (REPO / package).glob(pattern):
                rel = str(data_file.relative_to(REPO))
                assert not dockerignore.excluded(rel), f"package data {rel} is excluded by .dockerignore"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_entrypoint_is_a_declared_console_script(name: str, pyproject: dict[str, Any]) -> None:
    final = stages(parse_dockerfile(DOCKERFILES[name]))[-1]
    entrypoints = [i for i in final if i.keyword == "ENTRYPOINT"]
    assert len(entrypoints) == 1, "the final stage needs exactly one ENTRYPOINT"
    value = entrypoints[0].value
    assert value.startswith("["), "exec form, so signals reach the process (no /bin/sh -c)"
    command = json.loads(value)
    assert command == [SCRIPT_OF[name]]
    assert command[0] in pyproject["project"]["scripts"]


def final_user(name: str) -> str:
    users = [i.value for i in stages(parse_dockerfile(DOCKERFILES[name]))[-1] if i.keyword == "USER"]
    assert users, "set USER explicitly in the final stage"
    return users[-1]


def test_extender_runs_as_numeric_non_root_user() -> None:
    user, _, group = final_user("extender").partition(":")
    assert user.isdigit() and int(user) != 0, f"USER {user}: numeric and non-root, so runAsNonRoot can verify it"
    assert not group or (group.isdigit() and int(group) != 0)


def test_extender_user_matches_the_deployment_security_context() -> None:
    from tests.deploy.deploy_support import one, pod_spec

    user = int(final_user("extender").partition(":")[0])
    assert pod_spec(one("Deployment", "aim-gpu-extender"))["securityContext"]["runAsUser"] == user


def test_plugin_runs_as_root_and_says_why() -> None:
    assert final_user("plugin").partition(":")[0] == "0"
    text = DOCKERFILES["plugin"].read_text()
    assert "kubelet.sock" in text and "root" in text


@pytest.mark.parametrize(
    "path",
    [".git", ".venv", "tests", "tests/deploy/conftest.py", "sizing/__pycache__/x.pyc", "aim_gpu_sharing.egg-info"],
)
def test_dockerignore_keeps_local_state_out_of_the_context(path: str, dockerignore: DockerIgnore) -> None:
    assert dockerignore.excluded(path)


@pytest.mark.parametrize(
    "path", ["pyproject.toml", "sizing/data/gpus.json", "deviceplugin/proto/api_pb2.py", "extender/app.py"]
)
def test_dockerignore_keeps_the_sources_in_the_context(path: str, dockerignore: DockerIgnore) -> None:
    assert not dockerignore.excluded(path)


def test_dockerfile_parser_joins_continuations(tmp_path: Path) -> None:
    f = tmp_path / "Dockerfile"
    f.write_text('# c\nFROM a:1.2.3 AS b\nRUN x \\\n  # inner comment\n  && y\nENTRYPOINT ["z"]\n')
    parsed = parse_dockerfile(f)
    assert [i.keyword for i in parsed] == ["FROM", "RUN", "ENTRYPOINT"]
    assert parsed[1].value == "x && y"
