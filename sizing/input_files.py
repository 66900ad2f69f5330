"""Files and directories named on aim-sizing's command line, read with bounds (the CLI's I/O shell;
the rest of ``sizing`` reads nothing).

``open`` of a FIFO waits for a writer, ``read`` of ``/dev/zero`` never ends, a directory tree may be
any depth and width, and a symlink may point back at a directory above it. A file is therefore read
only when it is a regular file (checked on the open descriptor, so it cannot be swapped in between)
and only up to the caller's bound; a tree is walked with its depth and its number of entries
bounded, and every directory entered once. Each refusal is a SizingError naming the path,
which aim-sizing prints as one line before it exits 2.

``opened_regular_file`` and ``read_regular_file`` (OSError, no SizingError) are the project's one
non-blocking regular-file reader: ``sizing`` may import no other package of the project, so it lives
here and ``kube.regular_file`` re-exports it for the extender, webhook, device plugin and partitioner.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from sizing.errors import SizingError


class NotRegularFileError(OSError):
    """The path exists but is a directory, FIFO, socket or device; ``str()`` says which."""


def file_kind(mode: int) -> str:
    """What a path that is not a regular file is, from its ``st_mode``, in words."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    return "a device or socket"


@contextmanager
def opened_regular_file(path: str | os.PathLike[str]) -> Iterator[tuple[BinaryIO, int]]:
    """``path`` open for binary reading, and its size; NotRegularFileError for anything but a regular
    file (checked on the open descriptor, so it cannot be swapped in between), OSError when it cannot
    be opened. The one non-blocking reader of the project: ``kube.regular_file`` re-exports it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: opening a FIFO must not wait for a writer
    try:
        info = os.fstat(fd)  # before fdopen, which refuses a directory in its own words
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFileError(f"not a regular file ({file_kind(info.st_mode)})")
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle, info.st_size


def read_regular_file(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes of ``path`` (one more, so the caller sees it is too large);
    NotRegularFileError for anything but a regular file, OSError when it cannot be opened or read."""
    with opened_regular_file(path) as (handle, _size):
        return handle.read(max_bytes + 1)


@contextmanager
def open_regular(path: Path) -> Iterator[tuple[BinaryIO, int]]:
    """``path`` open for binary reading, and its size; SizingError unless it is a regular file that can
    be read (the error of a read inside the block is reported the same way)."""
    try:
        with opened_regular_file(path) as (handle, size):
            yield handle, size
    except NotRegularFileError as exc:
        raise SizingError(f"{path} is {exc}") from None
    except OSError as exc:
        raise SizingError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``; SizingError when it is larger than ``max_bytes`` (by its
    size, or by what could be read: a file growing meanwhile)."""
    with open_regular(path) as (handle, size):
        data = handle.read(max_bytes + 1) if size <= max_bytes else b""
    if size > max_bytes or len(data) > max_bytes:
        raise SizingError(f"{path} is larger than {max_bytes} bytes")
    return data


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """A directory, or a link to one; False for a broken link or a link loop (reading it says why)."""
    try:
        return entry.is_dir()  # follows symlinks; raises for ELOOP, which only a missing target does not
    except OSError:
        return False


def list_files(top: Path, suffixes: tuple[str, ...], *, max_depth: int, max_entries: int) -> list[Path]:
    """The paths below ``top`` whose names end in one of ``suffixes``, sorted; entered at most
    ``max_depth`` directories below ``top`` (0: ``top`` alone). Symlinked directories are followed, as
    a ConfigMap volume's ``..data`` link needs, but each directory only once. SizingError naming the
    path when the tree is deeper, holds more than ``max_entries`` entries in all, links back to a
    directory already walked, or cannot be listed. Nothing is opened but directories."""
    found: list[Path] = []
    seen: dict[tuple[int, int], Path] = {}
    entries = 0
    pending = [(top, 0)]
    while pending:
        directory, depth = pending.pop()
        try:
            info = os.stat(directory)
            key = (info.st_dev, info.st_ino)
            if key in seen:
                raise SizingError(f"{directory} leads back to {seen[key]}, a directory already read (a symlink loop?)")
            seen[key] = directory
            with os.scandir(directory) as listing:
                for entry in listing:
                    entries += 1
                    if entries > max_entries:
                        raise SizingError(f"{top} holds more than {max_entries} files and directories")
                    path = Path(entry.path)
                    if _is_dir(entry):
                        if depth < max_depth:
                            pending.append((path, depth + 1))
                        elif max_depth > 0:
                            raise SizingError(f"{path} is nested more than {max_depth} directories below {top}")
                    elif entry.name.endswith(suffixes):
                        found.append(path)
        except OSError as exc:
            raise SizingError(f"cannot list {directory}: {exc.strerror or exc}") from None
    return sorted(found)
