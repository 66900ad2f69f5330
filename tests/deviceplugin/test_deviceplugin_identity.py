"""Partition identity is cross-checked and every number is range-checked (issue 7's cases).

Each test damages one KFD node of a real capture the way the issue found it damaged and checks
what is advertised, what is skipped and what the problem message names."""

from __future__ import annotations

import os
from pathlib import Path

from deviceplugin.discovery import discover
from tests.deviceplugin.dp_support import KFD_TOPOLOGY, address_of, gpu_nodes, lay_capture, read_props

GPU_05 = "0000:05:00.0"
GPU_27 = "0000:27:00.0"


def _node_of(root: Path, address: str, index: int) -> Path:
    for node, props in gpu_nodes(root):
        if address_of(props) == address and props["location_id"] & 7 == index:
            return node
    raise AssertionError((address, index))


def _set(node: Path, key: str, value: str) -> None:
    lines = [
        f"{key} {value}" if line.split()[0] == key else line
        for line in (node / "properties").read_text().splitlines()
    ]
    (node / "properties").write_text("\n".join(lines) + "\n")


def _steal_27_p2(root: Path) -> tuple[Path, Path]:
    """GPU 05's partition 2 claims GPU 27's location id (the issue's first device-plugin case)."""
    thief = _node_of(root, GPU_05, 2)
    owner = _node_of(root, GPU_27, 2)
    _set(thief, "location_id", str(read_props(owner / "properties")["location_id"]))
    return thief, owner


def test_two_nodes_claiming_one_partition_without_confirmation_are_both_skipped(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi300x-cpx")
    thief, owner = _steal_27_p2(root)
    inventory = discover(root)
    ids = {p.id for p in inventory.partitions}
    assert f"{GPU_27}-p2" not in ids and f"{GPU_05}-p2" not in ids
    assert len(inventory.partitions) == 61
    # No ID comes with another GPU's render node.
    for partition in inventory.partitions:
        assert partition.render_minor != int(read_props(thief / "properties")["drm_render_minor"]) or (
            partition.gpu == GPU_05
        )
    [problem] = [p for p in inventory.problems if "same partition" in p]
    assert f"KFD node {thief.name} " in problem and f"KFD node {owner.name} " in problem


def test_the_node_sysfs_confirms_keeps_the_partition_id(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi300x-cpx")
    thief, owner = _steal_27_p2(root)
    drm = root / "class/drm"
    drm.mkdir(parents=True)
    for node, address in ((owner, GPU_27), (thief, GPU_05)):
        minor = read_props(node / "properties")["drm_render_minor"]
        pci = root / "bus/pci/devices" / address
        pci.mkdir(parents=True, exist_ok=True)
        (drm / f"renderD{minor}").mkdir()
        os.symlink(pci, drm / f"renderD{minor}" / "device")
    inventory = discover(root)
    kept = inventory.by_id[f"{GPU_27}-p2"]
    assert kept.kfd_node == int(owner.name)
    assert kept.render_minor == read_props(owner / "properties")["drm_render_minor"]
    assert f"{GPU_05}-p2" not in inventory.by_id
    assert any(f"KFD node {thief.name} " in p and f"renderD{read_props(thief / 'properties')['drm_render_minor']}" in p
               and "node skipped" in p for p in inventory.problems)
    assert len(inventory.partitions) == 62


def test_negative_simd_count_is_skipped_with_the_file_and_field_named(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi300x-cpx")
    node = _node_of(root, GPU_05, 1)
    _set(node, "simd_count", "-1")
    inventory = discover(root)
    assert f"{GPU_05}-p1" not in inventory.by_id
    assert all(p.compute_units == 38 for p in inventory.partitions)
    assert any(str(node / "properties") + " simd_count" in p for p in inventory.problems)


def test_absurd_simd_per_cu_is_not_zero_compute_units(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi300x-cpx")
    node = _node_of(root, GPU_05, 3)
    _set(node, "simd_per_cu", str(10**30))
    inventory = discover(root)
    assert f"{GPU_05}-p3" not in inventory.by_id
    assert min(p.compute_units for p in inventory.partitions) == 38
    assert any("simd_per_cu" in p and "is more than" in p for p in inventory.problems)


def test_non_ascii_digits_and_huge_memory_are_rejected(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi308x")
    first, second = gpu_nodes(root)[0][0], gpu_nodes(root)[1][0]
    _set(first, "drm_render_minor", "١٢٨")  # Arabic-Indic digits: isdigit() is true
    (second / "mem_banks/0/properties").write_text(f"size_in_bytes {2**80}\n")
    inventory = discover(root)
    assert 128 not in {p.render_minor for p in inventory.partitions}
    assert any("drm_render_minor" in p and "ASCII" in p for p in inventory.problems)
    bank = inventory.by_id["0000:0a:00.0-p1"]
    assert bank.memory_source == "geometry"
    assert any("size_in_bytes" in p and "is more than" in p for p in inventory.problems)


def test_a_node_with_another_device_id_does_not_rename_its_gpu(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi300x-cpx")
    node = _node_of(root, GPU_05, 0)
    _set(node, "device_id", str(0x740F))
    inventory = discover(root)
    assert {p.product for p in inventory.partitions} == {"MI300X"}
    assert f"{GPU_05}-p0" not in inventory.by_id
    assert any("device_id 0x740f differs" in p for p in inventory.problems)


def test_serve_and_discover_read_a_bare_capture_the_same_way(tmp_path: Path) -> None:
    laid = discover(lay_capture(tmp_path / "laid", "mi300x-cpx"))
    bare = discover(tmp_path / "laid" / KFD_TOPOLOGY)
    assert bare.partitions == laid.partitions
    assert any("bare KFD topology capture" in n for n in bare.notes)
