"""Seeded, bounded fuzz of discovery over mutated sysfs trees (issue 7).

Each round mutates 1-3 KFD nodes of one copy of the MI308X capture (mode files and NUMA
synthesized), then restores them from a pristine copy. Mutations: values (garbage, negative,
huge, non-ASCII digits), random bytes, truncated and missing files, missing mem_banks,
duplicated location ids and render minors, a garbled numa_node. Asserts: discovery returns (no
traceback), no two partitions share an ID or a render node, every number is positive, and
every partition of an untouched node is advertised unchanged or skipped with a
problem naming its node (a clash with a mutated node)."""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from deviceplugin.discovery import discover
from tests.deviceplugin.dp_support import KFD_TOPOLOGY, gpu_nodes, lay_capture
from tests.extender.hostile_files import release, run_within

SEED = 20261130
ROUNDS = 150  # about 2-4 s on 2 cores (a discovery of 34 nodes plus restoring 1-3 of them per round)
BUDGET_S = 30.0  # the brief's bound is 60 s; stop early rather than stall CI

VALUES = [
    "-1", "0", str(2**64), str(10**30), "١٢٨", "²", "1e400", "NaN", "", "0x80", " 12 ", "9" * 5000,
    "\x00\x00", "128\x00", "+5", "３",
]
KEYS = ["simd_count", "simd_per_cu", "drm_render_minor", "location_id", "domain", "device_id", "hive_id", "num_xcc"]


def _text(path: Path) -> str:
    """What a previous mutation left in a file ("" when it removed it)."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _set(props: Path, key: str, value: str) -> None:
    lines = [f"{key} {value}" if line.split()[:1] == [key] else line for line in _text(props).splitlines()]
    props.write_text("\n".join(lines) + "\n")


def _mutations(rng: random.Random, root: Path, nodes: list[Path]) -> dict[str, Callable[[Path], object]]:
    other = rng.choice(nodes) / "properties"

    def copy_key(key: str) -> Callable[[Path], None]:
        def apply(node: Path) -> None:
            values = [line.split()[1:2] for line in _text(other).splitlines() if line.startswith(key + " ")]
            if values and values[0]:
                _set(node / "properties", key, values[0][0])

        return apply

    return {
        "value": lambda n: _set(n / "properties", rng.choice(KEYS), rng.choice(VALUES)),
        "random bytes": lambda n: (n / "properties").write_bytes(rng.randbytes(rng.randint(0, 300))),
        "no properties": lambda n: (n / "properties").unlink(missing_ok=True),
        "no mem_banks": lambda n: shutil.rmtree(n / "mem_banks", ignore_errors=True),
        "memory": lambda n: (n / "mem_banks/0").is_dir()
        and (n / "mem_banks/0/properties").write_text(f"size_in_bytes {rng.choice(VALUES)}\n"),
        "truncated": lambda n: (n / "properties").write_text(_text(n / "properties")[: rng.randint(0, 400)]),
        "junk line": lambda n: (n / "properties").write_text(_text(n / "properties") + "\n\n\njunk ١\n"),
        "duplicate location": copy_key("location_id"),
        "duplicate render minor": copy_key("drm_render_minor"),
        "numa": lambda n: (next((root / "bus/pci/devices").iterdir()) / "numa_node").write_text(rng.choice(VALUES)),
    }


def test_discovery_survives_mutated_trees_and_keeps_untouched_partitions(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    root = lay_capture(tmp_path / "sys", "mi308x", compute_mode="CPX", memory_mode="NPS1", numa=True)
    baseline = {p.kfd_node: p for p in discover(root).partitions}
    nodes = [node for node, _props in gpu_nodes(root)]
    numa_file = next((root / "bus/pci/devices").iterdir()) / "numa_node"
    pristine = tmp_path / "pristine"
    shutil.copytree(root, pristine, symlinks=True)
    started = time.monotonic()
    rounds = 0
    while rounds < ROUNDS and time.monotonic() - started < BUDGET_S:
        rounds += 1
        touched = rng.sample(nodes, rng.randint(1, 3))
        numa_touched = False
        for node in touched:
            mutations = _mutations(rng, root, nodes)
            name = rng.choice(sorted(mutations))
            numa_touched |= name == "numa"  # the GPU-wide NUMA file: every partition of one GPU changes
            mutations[name](node)
        inventory = discover(root)  # must not raise
        touched_numbers = {int(n.name) for n in touched}
        found = {p.kfd_node: p for p in inventory.partitions}
        ids = [p.id for p in inventory.partitions]
        minors = [p.render_minor for p in inventory.partitions]
        assert len(set(ids)) == len(ids) and len(set(minors)) == len(minors), (rounds, inventory.problems)
        assert all(p.compute_units > 0 and (p.memory_bytes or 1) > 0 for p in inventory.partitions)
        for number, before in baseline.items():
            if number in touched_numbers:
                continue
            after = found.get(number)
            if after is None:
                assert any(f"KFD node {number} " in problem for problem in inventory.problems), (
                    rounds, number, inventory.problems,
                )
            elif not numa_touched:
                assert after == before, (rounds, number)
        for node in touched:  # restore only what this round changed
            shutil.rmtree(node)
            shutil.copytree(pristine / node.relative_to(root), node, symlinks=True)
        shutil.copyfile(pristine / numa_file.relative_to(root), numa_file)
    assert rounds >= min(ROUNDS, 20), f"only {rounds} rounds in {BUDGET_S} s"


def test_fifos_and_devices_in_sysfs_do_not_block_discovery(tmp_path: Path) -> None:
    """A FIFO where a KFD properties file, generation_id or a PCI attribute should be (open() of a FIFO
    waits for a writer) and /dev/zero behind a properties link (never ends) are unreadable files: the
    node is skipped with a problem naming it, every other partition is advertised, nothing blocks."""
    root = lay_capture(tmp_path / "sys", "mi308x", compute_mode="CPX", memory_mode="NPS1", numa=True)
    baseline = {p.kfd_node: p for p in discover(root).partitions}
    nodes = [node for node, _props in gpu_nodes(root)]
    fifo_node, zero_node = nodes[0], nodes[1]
    pipes = [fifo_node / "properties", root / KFD_TOPOLOGY / "generation_id",
             next((root / "bus/pci/devices").iterdir()) / "numa_node"]
    for pipe in pipes:
        pipe.unlink(missing_ok=True)
        os.mkfifo(pipe)
    (zero_node / "properties").unlink()
    (zero_node / "properties").symlink_to("/dev/zero")
    try:
        inventory = run_within(10, lambda: discover(root))
    finally:
        for pipe in pipes:
            release(str(pipe))
    found = {p.kfd_node for p in inventory.partitions}
    for node in (fifo_node, zero_node):
        assert int(node.name) not in found
        assert any(f"KFD node {node.name}: " in problem and "unreadable" in problem for problem in inventory.problems)
    assert found == set(baseline) - {int(fifo_node.name), int(zero_node.name)}
