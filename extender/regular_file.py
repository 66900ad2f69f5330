"""Files named on the command line (input files, certificates, kubeconfigs), read without blocking.

``open`` of a FIFO waits for a writer, ``read`` of ``/dev/zero`` never ends and a directory is not a
file: anything but a regular file is refused before a byte is read, with a reason a person can act on.
"""

from __future__ import annotations

import os
import stat
from typing import Final

# A Secret or ConfigMap (where certificates, keys, kubeconfigs and input files live in a cluster) holds
# at most 1 MiB: the API server's default etcd request limit.
MAX_FILE_BYTES: Final = 1 << 20


class NotRegularFileError(OSError):
    """The path exists but is a directory, FIFO, socket or device; ``str()`` says which."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    return "a device or socket"


def read_regular_file(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """At most ``max_bytes + 1`` bytes of ``path`` (one more, so the caller sees it is too large);
    NotRegularFileError for anything but a regular file, OSError when it cannot be opened."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: opening a FIFO must not wait
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFileError(f"not a regular file ({_kind(mode)})")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(max_bytes + 1)
    finally:
        os.close(fd)


def file_problem(path: str, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """Why a library that opens ``path`` itself (ssl, the kubernetes client) should not be given it,
    or None: missing, unreadable, not a regular file, or larger than ``max_bytes``."""
    try:
        status = os.stat(path)  # follows the symlinks of a mounted Secret
    except OSError:
        return "file not found or not readable"
    if not stat.S_ISREG(status.st_mode):
        return f"not a regular file ({_kind(status.st_mode)})"
    if not os.access(path, os.R_OK):
        return "file not found or not readable"
    if status.st_size > max_bytes:
        return f"larger than {max_bytes >> 10} KiB"
    return None
