"""Seeded, bounded fuzz of discovery over mutated sysfs trees (issue 7).

Each round copies the MI308X capture (mode files, NUMA, platform devices synthesized), mutates a
few KFD nodes (garbage, negative, huge, non-ASCII digits, missing files and keys, duplicated
location ids and render minors, wrong types of files) and asserts: discovery returns (no
traceback), and every partition of an untouched node is advertised unchanged or skipped with a
problem naming its node (a clash with a mutated node)."""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from deviceplugin.discovery import discover
from tests.deviceplugin.dp_support import gpu_nodes, lay_capture

SEED = 20261130
ROUNDS = 25  # about 5 s on 2 cores (each round copies a 32-partition tree); raise locally to search longer
BUDGET_S = 30.0  # the brief's bound is 60 s; stop early rather than stall CI

VALUES = [
    "-1", "0", str(2**64), str(10**30), "١٢٨", "²", "1e400", "NaN", "", "0x80", " 12 ", "9" * 5000,
    "\x00\x00", "128\x00", "+5", "３",
]
KEYS = ["simd_count", "simd_per_cu", "drm_render_minor", "location_id", "domain", "device_id", "hive_id", "num_xcc"]


def _set(props: Path, key: str, value: str) -> None:
    lines = [f"{key} {value}" if line.split()[:1] == [key] else line for line in props.read_text().splitlines()]
    props.write_text("\n".join(lines) + "\n")


def _mutations(rng: random.Random, root: Path, nodes: list[Path]) -> dict[str, Callable[[Path], object]]:
    other = rng.choice(nodes) / "properties"

    def copy_key(key: str) -> Callable[[Path], None]:
        def apply(node: Path) -> None:
            value = next(line.split()[1] for line in other.read_text().splitlines() if line.startswith(key + " "))
            _set(node / "properties", key, value)

        return apply

    return {
        "value": lambda n: _set(n / "properties", rng.choice(KEYS), rng.choice(VALUES)),
        "random bytes": lambda n: (n / "properties").write_bytes(rng.randbytes(rng.randint(0, 300))),
        "no properties": lambda n: (n / "properties").unlink(),
        "no mem_banks": lambda n: shutil.rmtree(n / "mem_banks"),
        "memory": lambda n: (n / "mem_banks/0/properties").write_text(f"size_in_bytes {rng.choice(VALUES)}\n"),
        "truncated": lambda n: (n / "properties").write_text((n / "properties").read_text()[: rng.randint(0, 400)]),
        "junk line": lambda n: (n / "properties").write_text((n / "properties").read_text() + "\n\n\njunk ١\n"),
        "duplicate location": copy_key("location_id"),
        "duplicate render minor": copy_key("drm_render_minor"),
        "numa": lambda n: (next((root / "bus/pci/devices").iterdir()) / "numa_node").write_text(rng.choice(VALUES)),
    }


def test_discovery_survives_mutated_trees_and_keeps_untouched_partitions(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    pristine = lay_capture(tmp_path / "pristine", "mi308x", compute_mode="CPX", memory_mode="NPS1", numa=True)
    baseline = {p.kfd_node: p for p in discover(pristine).partitions}
    started = time.monotonic()
    for round_number in range(ROUNDS):
        if time.monotonic() - started > BUDGET_S:
            break
        root = tmp_path / f"r{round_number}"
        shutil.copytree(pristine, root, symlinks=True)
        nodes = [node for node, _props in gpu_nodes(root)]
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
        for number, before in baseline.items():
            if number in touched_numbers:
                continue
            after = found.get(number)
            if after is None:
                assert any(f"KFD node {number} " in problem for problem in inventory.problems), (
                    round_number, number, inventory.problems,
                )
            elif not numa_touched:
                assert after == before, (round_number, number)
        shutil.rmtree(root)
