"""Tolerant readers for sysfs attribute files.

A missing or unreadable file is ``None``, never an exception: sysfs files can vanish between
listing and reading (hot-unplug, driver reload during repartitioning). A value that is there but
garbled or out of bounds raises ``sizing.bounded.BoundedValueError`` naming the file and key
(``Properties.number``, ``read_int``), or becomes a problem string (``Properties.optional``); the
caller decides what to skip. Reads are bounded (MAX_FILE_BYTES) and never block: a FIFO or a device
where an attribute should be is a file that cannot be read.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kube.regular_file import read_regular_file
from sizing.bounded import BoundedValueError, parse_int

# A sysfs attribute is at most one page (fs/sysfs/file.c); a larger "file" is not sysfs.
MAX_FILE_BYTES = 4096

# KFD `properties` files hold one "<key> <decimal integer>" pair per line (drivers/gpu/drm/amd/
# amdkfd/kfd_topology.c, sysprops_show_*). Values such as unique_id are unsigned 64-bit; each is
# range-checked only when discovery asks for it (Properties.number).


@dataclasses.dataclass(frozen=True)
class Properties:
    """Parsed KFD properties file: each key's raw text and the lines that could not be parsed.

    Values stay text until a caller asks for one through ``number``, which range-checks it with
    ``sizing.bounded.parse_int`` and names the file and key when it is out of bounds.
    """

    path: Path
    raw: dict[str, str]
    bad_lines: tuple[str, ...]

    def __contains__(self, key: str) -> bool:
        return key in self.raw

    def number(self, key: str, *, minimum: int, maximum: int) -> int:
        """The value of ``key`` within bounds; BoundedValueError naming file and key otherwise."""
        return parse_int(f"{self.path} {key}", self.raw[key], minimum=minimum, maximum=maximum)

    def optional(self, key: str, *, minimum: int, maximum: int, problems: list[str]) -> int | None:
        """``number`` for a key that may be absent; an out-of-bounds value is a problem, not a value."""
        if key not in self.raw:
            return None
        try:
            return self.number(key, minimum=minimum, maximum=maximum)
        except BoundedValueError as exc:
            problems.append(f"{exc}; ignored")
            return None


def read_text(path: Path) -> str | None:
    """Return the file content (NUL bytes stripped) or None if it cannot be read.

    At most MAX_FILE_BYTES are read: a sysfs attribute is one page at most. Anything but a regular
    file (a FIFO would block discovery forever, a device never ends) cannot be read.
    """
    try:
        raw = read_regular_file(path, MAX_FILE_BYTES)[:MAX_FILE_BYTES]
    except OSError:
        return None
    return raw.replace(b"\x00", b"").decode("utf-8", errors="replace")


def read_properties(path: Path) -> Properties | None:
    """Parse a KFD properties file; None when the file is missing or unreadable."""
    text = read_text(path)
    if text is None:
        return None
    values: dict[str, str] = {}
    bad: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isascii() or not parts[0].isidentifier():
            bad.append(line[:80])
            continue
        values[parts[0]] = parts[1]
    return Properties(path=path, raw=values, bad_lines=tuple(bad))


def read_word(path: Path) -> str | None:
    """Return the first whitespace-separated word of a one-value attribute, or None."""
    text = read_text(path)
    if text is None:
        return None
    words = text.split()
    return words[0] if words else None


def read_int(path: Path, *, minimum: int, maximum: int) -> int | None:
    """A decimal integer attribute (e.g. ``numa_node``) within bounds; None when absent.

    Raises BoundedValueError naming the file when the value is garbled or out of bounds. A
    leading ``-`` is allowed only when ``minimum`` is negative.
    """
    word = read_word(path)
    if word is None:
        return None
    if word.startswith("-") and minimum < 0:
        return -parse_int(str(path), word[1:], minimum=max(0, -maximum), maximum=-minimum)
    return parse_int(str(path), word, minimum=minimum, maximum=maximum)


def read_list(path: Path) -> tuple[str, ...] | None:
    """Return a ", "-separated attribute such as ``available_compute_partition``."""
    text = read_text(path)
    if text is None:
        return None
    return tuple(word.strip() for word in text.replace(",", " ").split() if word.strip())
