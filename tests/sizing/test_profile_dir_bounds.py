"""`aim-sizing profiles validate DIR` on hostile trees (issue 18): the walk is bounded in depth and
entries, enters each directory once, reads only regular files of at most MAX_PROFILE_BYTES; each
refusal is one line naming the path, exit 2, in well under a second (a FIFO must not block: the
tests carry a timeout). Hostile content of a file (alias bombs, deep nesting, 5,000-digit numbers)
is a problem naming the file, not a stall or a traceback."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sizing.cli import MAX_AIM_DEPTH, MAX_PROFILE_BYTES, MAX_PROFILE_ENTRIES, main


def _run(capsys: pytest.CaptureFixture[str], root: Path) -> tuple[int, str, float]:
    """(exit code, stderr, seconds) of ``aim-sizing profiles validate root`` in process."""
    started = time.perf_counter()
    try:
        code = main(["profiles", "validate", str(root)])
    except SystemExit as exc:
        code = int(exc.code or 0)
    elapsed = time.perf_counter() - started
    return code, capsys.readouterr().err, elapsed


def _symlink_loop(root: Path) -> tuple[Path, str]:
    (root / "aim" / "org").mkdir(parents=True)
    (root / "aim" / "org" / "up").symlink_to("..")
    return root / "aim" / "org" / "up", "leads back to"


def _deep(root: Path) -> tuple[Path, str]:
    deep = root / "aim" / "/".join(["d"] * 300)
    deep.mkdir(parents=True)
    return root / "aim" / "/".join(["d"] * (MAX_AIM_DEPTH + 1)), f"nested more than {MAX_AIM_DEPTH} directories"


def _wide(root: Path) -> tuple[Path, str]:
    many = root / "aim" / "many"
    many.mkdir(parents=True)
    for i in range(MAX_PROFILE_ENTRIES + 1):
        (many / f"{i}.txt").touch()
    return root / "aim", f"holds more than {MAX_PROFILE_ENTRIES} files and directories"


def _fifo(root: Path) -> tuple[Path, str]:
    (root / "aim" / "org").mkdir(parents=True)
    os.mkfifo(root / "aim" / "org" / "p.yaml")
    return root / "aim" / "org" / "p.yaml", "is not a regular file (a FIFO)"


def _dev_zero(root: Path) -> tuple[Path, str]:
    (root / "profiles").mkdir()
    (root / "profiles" / "zero.json").symlink_to("/dev/zero")
    return root / "profiles" / "zero.json", "is not a regular file (a device"


def _file_link_loop(root: Path) -> tuple[Path, str]:
    (root / "aim").mkdir()
    (root / "aim" / "loop.yaml").symlink_to("loop.yaml")
    return root / "aim" / "loop.yaml", "cannot read"


def _huge(root: Path) -> tuple[Path, str]:
    (root / "profiles").mkdir()
    (root / "profiles" / "big.yaml").write_bytes(b"#" * (MAX_PROFILE_BYTES + 1))
    return root / "profiles" / "big.yaml", f"larger than {MAX_PROFILE_BYTES} bytes"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("make", [_symlink_loop, _deep, _wide, _fifo, _dev_zero, _file_link_loop, _huge],
                         ids=lambda make: make.__name__.lstrip("_"))
def test_a_hostile_tree_is_one_line_naming_the_path(make: Callable[[Path], tuple[Path, str]], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path, fragment = make(tmp_path)
    code, err, elapsed = _run(capsys, tmp_path)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("aim-sizing: error: "), err
    assert str(path) in err and fragment in err, err
    assert "Traceback" not in err
    assert elapsed < 1.0, f"{elapsed:.2f} s"


def _content_cases() -> list[tuple[str, str, bytes, str]]:
    bomb = ["a0: &a0 [lol]"] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    return [
        ("alias bomb", "aim/org/bomb.yaml", "\n".join(bomb).encode(), "holds a YAML alias"),
        ("deep flow nesting", "profiles/deep.yaml", b"x: " + b"[" * 500 + b"]" * 500, "nested more than 32 levels"),
        ("libyaml's nesting limit", "profiles/deeper.yaml", b"x: " + b"[" * 5000, "exceeded maximum nesting depth"),
        ("5,000-digit JSON number", "profiles/n.json", b'{"id": ' + b"9" * 5000 + b"}", "an integer of 5,000 digits"),
        ("5,000-digit YAML number", "aim/n.yaml", b"id: " + b"9" * 5000, "longer than 4096 characters"),
        ("deep JSON", "profiles/deep.json", b"[" * 100_000 + b"]" * 100_000, "larger than"),
        ("deep JSON, small", "profiles/deep2.json", b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
        ("not UTF-8", "aim/bin.yaml", b"id: \xff\xfe\n", "not UTF-8 text"),
    ]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("rel", "data", "fragment"), [case[1:] for case in _content_cases()],
                         ids=[case[0] for case in _content_cases()])
def test_hostile_content_is_a_problem_naming_the_file(rel: str, data: bytes, fragment: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    code, err, elapsed = _run(capsys, tmp_path)
    assert code in (1, 2), err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(str(path)) or str(path) in line]
    assert lines and fragment in lines[0], err
    assert elapsed < 1.0, f"{elapsed:.2f} s"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated") / "profiles"
    assert main(["profiles", "generate", "--out", str(out), "--format", "yaml"]) == 0
    return out


def test_a_configmap_style_tree_of_links_is_followed(generated: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """kubelet mounts NAME -> ..data/NAME, ..data -> ..<timestamp>/: links to directories are walked."""
    mount = tmp_path / "mount"
    mount.mkdir()
    (mount / "..2026_01_01").symlink_to(generated)
    (mount / "..data").symlink_to("..2026_01_01")
    for name in ("profiles", "aim"):
        (mount / name).symlink_to(f"..data/{name}")
    code, err, _ = _run(capsys, mount)
    assert code == 0, err
    (generated / "aim" / "meta-llama" / "again").symlink_to("../../aim")  # and now a loop inside it
    try:
        code, err, _ = _run(capsys, mount)
    finally:
        (generated / "aim" / "meta-llama" / "again").unlink()
    assert code == 2 and "again leads back to" in err and err.count("\n") == 1, err
