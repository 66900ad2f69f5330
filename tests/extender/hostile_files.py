"""Hostile input files for the CLIs that read YAML (``aim-extender plan``, ``aim-partitioner advise``):
what the issue-18 sweep fed them, each with the fragment its one-line error must hold.

``make_*`` functions write the file under a directory and return its path; ``run_within`` runs a
call in a thread and fails the test when it has not returned in time (a FIFO blocks ``open``
forever, so an in-process call cannot be trusted to come back).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def alias_bomb(field: str, levels: int = 7) -> str:
    """``levels`` levels of nine aliases each (9**7 = 4.8 M strings, 250 MB and 3 s when expanded)
    ending in a workload's ``field``."""
    lines = ['z:', '  x0: &x0 ["lol"]']
    lines += [f"  x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\nworkloads: [{{name: a, {field}: *x{levels}}}]\n"


def merge_bomb(levels: int = 30) -> str:
    """Merge keys doubling at each level: ``{<<: [*a, *a]}``."""
    lines = ["z:", "  a0: &a0 {k: 1}"]
    lines += [f"  a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}]}}" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\nnodes: [{name: a, gpus: [{product: MI300X, compute_mode: SPX}]}]\n"


def deep_block(levels: int = 200) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(levels)) + "  " * levels + "x\n"


def workloads(count: int, replicas: int = 1) -> str:
    return "workloads:\n" + "".join(f"  - {{name: w{i}, memory: 1Gi, replicas: {replicas}}}\n" for i in range(count))


def nodes(count: int) -> str:
    return "nodes:\n" + "".join(f"  - {{name: n{i}, gpus: [{{product: MI300X, compute_mode: SPX}}]}}\n"
                                for i in range(count))


# (name, bytes of the file, fragment of the error, seconds it may take) for files given as --workloads.
# A bomb is refused in well under a second; a list one entry too long is parsed and validated first,
# which takes as long as a full file that is accepted (about a second on a busy 2-core machine).
WORKLOAD_FILES: list[tuple[str, bytes, str, float]] = [
    ("alias bomb", alias_bomb("memory").encode(), "z.x6[0]: more than 250000 values", 1.0),
    ("merge-key bomb", merge_bomb().encode(), "more than 250000 values", 1.0),
    ("deep nesting", deep_block().encode(), "nested more than 32 levels deep", 1.0),
    ("deep flow nesting", b"workloads: [{name: a, memory: " + b"[" * 3000 + b"]" * 3000 + b"}]\n", "nest", 1.0),
    ("binary", bytes(range(256)) * 4, "a binary file (NUL bytes)", 1.0),
    ("not UTF-8", b"workloads: [{name: \xff\xfe}]\n", "not UTF-8 text", 1.0),
    ("too large", b"#" * ((1 << 20) + 1), "larger than 1024 KiB", 1.0),
    ("5,000-digit number", f"workloads: [{{name: a, max_model_len: {'9' * 5000}}}]\n".encode(),
     "workloads[0].max_model_len: a value longer than 4096 characters", 1.0),
    ("memory is a list", b"workloads: [{name: a, memory: [1, 2]}]\n",
     "workloads[0].memory: must be a Kubernetes quantity such as 40Gi, not list", 1.0),
    ("10,001 workloads", workloads(10_001).encode(), "workloads: List should have at most 10000 items", 5.0),
    ("replicas x entries", workloads(11, replicas=1000).encode(), "workloads: 11000 pods in all", 1.0),
]

# The same for files given as --cluster.
CLUSTER_FILES: list[tuple[str, bytes, str, float]] = [
    ("alias bomb", alias_bomb("name").replace("workloads", "nodes").encode(), "more than 250000 values", 1.0),
    ("merge-key bomb", merge_bomb().encode(), "more than 250000 values", 1.0),
    ("deep nesting", deep_block().encode(), "nested more than 32 levels deep", 1.0),
    ("binary", bytes(range(256)) * 4, "a binary file (NUL bytes)", 1.0),
    ("5,001 nodes", nodes(5001).encode(), "nodes: List should have at most 5000 items", 5.0),
]


def write(directory: Path, name: str, data: bytes) -> str:
    path = directory / name
    path.write_bytes(data)
    return str(path)


def fifo(directory: Path) -> str:
    """A FIFO nobody writes to: ``open`` for reading blocks until a writer comes."""
    path = directory / "fifo.yaml"
    os.mkfifo(path)
    return str(path)


def release(path: str) -> None:
    """Open a FIFO for writing once, so a reader blocked on it (a test that failed) returns."""
    with contextlib.suppress(OSError):  # ENXIO: no reader is waiting, nothing to release
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def run_within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()`` in a daemon thread; AssertionError when it has not returned within ``seconds``."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s (blocked or unbounded)"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
