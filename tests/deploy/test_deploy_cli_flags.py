"""The flags the manifests pass to our own CLIs exist, and choice-valued flags get a valid value.

The real console scripts are run (`aim-deviceplugin serve --help`, `aim-extender serve --help`),
as the images' ENTRYPOINT runs them. Covered: the device plugin DaemonSet, the extender Deployment
and the extender args of the TLS component patch.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deploy_support import find, flag_names, one, parse_flags, pod_spec


def console_script_target(pyproject: dict[str, Any], script: str) -> str:
    return pyproject["project"]["scripts"][script].split(":")[0]


def serve_help(pyproject: dict[str, Any], script: str) -> str:
    module = console_script_target(pyproject, script)
    if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not importable yet, cannot ask `{script} serve --help`")
    return _run_serve_help(script, module)


@functools.cache
def _run_serve_help(script: str, module: str) -> str:
    installed = Path(sys.executable).parent / script
    command = [str(installed)] if installed.exists() else [sys.executable, "-m", module.split(".")[0]]
    done = subprocess.run([*command, "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(command)} serve --help failed:\n{done.stderr}"
    return done.stdout


def accepted_flags(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z0-9][a-z0-9-]*)", help_text))


def choices(help_text: str) -> dict[str, set[str]]:
    return {m.group(1): set(m.group(2).split(",")) for m in re.finditer(r"(--[a-z0-9-]+) \{([^}]+)\}", help_text)}


def extender_arg_lists() -> list[tuple[str, list[str]]]:
    out = []
    for d in find("Deployment", "aim-gpu-extender"):
        container = next(c for c in pod_spec(d)["containers"] if c["name"] == "extender")
        if "args" in container:  # a patch that leaves args alone (components append theirs by JSON patch)
            out.append((str(d.path.relative_to(d.path.parents[2])), container["args"]))
    return out


CASES = [
    (
        "aim-deviceplugin",
        "deviceplugin/daemonset.yaml",
        lambda: pod_spec(one("DaemonSet", "aim-gpu-deviceplugin"))["containers"][0]["args"],
    ),
    *[("aim-extender", where, (lambda a=args: a)) for where, args in extender_arg_lists()],
]


@pytest.mark.parametrize(("script", "where", "get_args"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_manifest_flags_are_accepted_by_the_cli(pyproject, script: str, where: str, get_args) -> None:
    args = get_args()
    assert args[0] == "serve", f"{where}: the first argument must be the `serve` subcommand"
    help_text = serve_help(pyproject, script)
    unknown = [f for f in flag_names(args) if f not in accepted_flags(help_text)]
    assert not unknown, f"{where}: `{script} serve` does not accept {unknown}"
    allowed = choices(help_text)
    for flag, value in parse_flags(args).items():
        if flag in allowed:
            assert value in allowed[flag], f"{where}: {flag}={value} not in {sorted(allowed[flag])}"


def test_help_parsing_sees_flags_and_choices() -> None:
    text = "usage: x serve [--node-cache {off,watch}] [--port PORT]\n  --port PORT  listen port"
    assert accepted_flags(text) == {"--node-cache", "--port"}
    assert choices(text) == {"--node-cache": {"off", "watch"}}
