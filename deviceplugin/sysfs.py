"""Tolerant readers for sysfs attribute files.

Every reader returns ``None`` (plus a human-readable problem) instead of raising: sysfs files can
vanish between listing and reading (hot-unplug, driver reload during repartitioning) and captured
or damaged trees contain truncated or garbage files. The caller decides what to skip.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

# KFD `properties` files hold one "<key> <decimal integer>" pair per line (drivers/gpu/drm/amd/
# amdkfd/kfd_topology.c, sysprops_show_*). Values such as unique_id are unsigned 64-bit.


@dataclasses.dataclass(frozen=True)
class Properties:
    """Parsed KFD properties file: the integer values and the lines that could not be parsed."""

    values: dict[str, int]
    bad_lines: tuple[str, ...]


def read_text(path: Path) -> str | None:
    """Return the file content (NUL bytes stripped) or None if it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    return raw.replace(b"\x00", b"").decode("utf-8", errors="replace")


def read_properties(path: Path) -> Properties | None:
    """Parse a KFD properties file; None when the file is missing or unreadable."""
    text = read_text(path)
    if text is None:
        return None
    values: dict[str, int] = {}
    bad: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isidentifier():
            bad.append(line[:80])
            continue
        try:
            values[parts[0]] = int(parts[1], 10)
        except ValueError:
            bad.append(line[:80])
    return Properties(values=values, bad_lines=tuple(bad))


def read_word(path: Path) -> str | None:
    """Return the first whitespace-separated word of a one-value attribute, or None."""
    text = read_text(path)
    if text is None:
        return None
    words = text.split()
    return words[0] if words else None


def read_int(path: Path) -> int | None:
    """Return a decimal integer attribute (e.g. ``numa_node``), or None if absent/garbled."""
    word = read_word(path)
    if word is None:
        return None
    try:
        return int(word, 10)
    except ValueError:
        return None


def read_list(path: Path) -> tuple[str, ...] | None:
    """Return a ", "-separated attribute such as ``available_compute_partition``."""
    text = read_text(path)
    if text is None:
        return None
    return tuple(word.strip() for word in text.replace(",", " ").split() if word.strip())
