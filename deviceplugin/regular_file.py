"""Reading a file another program writes (sysfs, the kubelet's checkpoint) without ever blocking.

``open`` of a FIFO waits for a writer and ``read`` of ``/dev/zero`` never ends: a path that is not a
regular file is refused before a byte is read. sysfs attributes are regular files (``S_IFREG``,
fs/sysfs/file.c), so nothing real is refused.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """At most ``max_bytes + 1`` bytes of ``path`` (one more than allowed, so the caller sees that it is
    too large); OSError for a file that is missing, unreadable or not a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # O_NONBLOCK: opening a FIFO must not wait
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(max_bytes + 1)
    finally:
        os.close(fd)
