"""Files named on the command line or read from a mount (input files, certificates, kubeconfigs, sysfs
attributes, the kubelet's checkpoint), read without blocking.

``open`` of a FIFO waits for a writer, ``read`` of ``/dev/zero`` never ends and a directory is not a
file: anything but a regular file is refused before a byte is read, with a reason a person can act on.
The reader itself is ``sizing.input_files``' (``sizing`` imports no other package of the project, and
aim-sizing's command line needs it too), re-exported here: one implementation. ``file_problem`` is the
check for files a library opens itself (ssl, the kubernetes client).
"""

from __future__ import annotations

import os
import stat
from typing import Final

from sizing.input_files import NotRegularFileError, file_kind, opened_regular_file, read_regular_file

__all__ = ["MAX_FILE_BYTES", "NotRegularFileError", "file_problem", "opened_regular_file", "read_regular_file"]

# A Secret or ConfigMap (where certificates, keys, kubeconfigs and input files live in a cluster) holds
# at most 1 MiB: the API server's default etcd request limit.
MAX_FILE_BYTES: Final = 1 << 20


def file_problem(path: str, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """Why a library that opens ``path`` itself (ssl, the kubernetes client) should not be given it,
    or None: missing, unreadable, not a regular file, or larger than ``max_bytes``."""
    try:
        status = os.stat(path)  # follows the symlinks of a mounted Secret
    except OSError:
        return "file not found or not readable"
    if not stat.S_ISREG(status.st_mode):
        return f"not a regular file ({file_kind(status.st_mode)})"
    if not os.access(path, os.R_OK):
        return "file not found or not readable"
    if status.st_size > max_bytes:
        return f"larger than {max_bytes >> 10} KiB"
    return None
