"""Child-process handling of the harness (no control plane): a process that ignores SIGTERM is
killed after the grace period, its whole process group goes with it, and waits time out with a
message naming what was awaited."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.controlplane.processes import ManagedProcess, ProcessError, free_port, wait_until


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_kills_a_process_that_ignores_sigterm_and_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = f'trap "" TERM; sleep 60 & echo $! > {pidfile}; wait'
    process = ManagedProcess("stubborn", ["sh", "-c", script], tmp_path / "stubborn.log")
    process.start()
    wait_until(pidfile.exists, 5.0, "the child to start")
    child = int(pidfile.read_text())
    started = time.monotonic()
    process.stop(grace=0.3)
    assert time.monotonic() - started < 3.0
    assert not process.running
    wait_until(lambda: not alive(child), 5.0, "the grandchild to be gone")
    process.stop()  # idempotent


def test_check_alive_quotes_the_log_of_a_dead_process(tmp_path: Path) -> None:
    process = ManagedProcess("dies", ["sh", "-c", "echo flag --nope is unknown; exit 3"], tmp_path / "dies.log")
    process.start()
    wait_until(lambda: not process.running, 5.0, "the process to exit")
    with pytest.raises(ProcessError, match=r"(?s)exited with code 3.*--nope is unknown"):
        process.check_alive()


def test_wait_until_names_what_it_waited_for() -> None:
    with pytest.raises(TimeoutError, match="waiting for the impossible"):
        wait_until(lambda: False, 0.1, "the impossible")
    assert wait_until(lambda: 42, 1.0, "an answer") == 42


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
