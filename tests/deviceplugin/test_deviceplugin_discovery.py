"""Discovery on the three real captures, with and without synthesized PCI/platform extras,
and on damaged copies (truncated and garbage properties, missing directories)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest

from deviceplugin.discovery import discover
from deviceplugin.inventory import partition_id
from tests.deviceplugin.dp_support import KFD_TOPOLOGY, lay_capture

GIB = 2**30


def test_mi300x_cpx_capture_gives_63_partitions_of_38_cus_and_24_gib(tmp_path: Path) -> None:
    inventory = discover(lay_capture(tmp_path, "mi300x-cpx"))

    assert len(inventory.partitions) == 63
    per_gpu = Counter(p.gpu for p in inventory.partitions)
    assert len(per_gpu) == 8
    assert sorted(per_gpu.values()) == [7] + [8] * 7
    assert per_gpu["0000:e5:00.0"] == 7
    assert {p.compute_units for p in inventory.partitions} == {38}
    assert {p.memory_bytes for p in inventory.partitions} == {24 * GIB}
    assert {p.memory_source for p in inventory.partitions} == {"geometry"}
    assert {p.compute_mode for p in inventory.partitions} == {"CPX"}
    assert {p.compute_mode_source for p in inventory.partitions} == {"derived"}
    assert {p.product for p in inventory.partitions} == {"MI300X"}
    # CPX allows NPS1 and NPS4, and nothing on disk says which: reported as unknown, not guessed.
    assert {p.memory_mode for p in inventory.partitions} == {None}
    assert inventory.problems == ()
    assert any("derived from 7 partition(s)" in n for n in inventory.notes)


def test_mi300x_numa_comes_from_kfd_io_links_when_pci_numa_node_is_absent(tmp_path: Path) -> None:
    inventory = discover(lay_capture(tmp_path, "mi300x-cpx"))
    numa = {p.gpu: p.numa_node for p in inventory.partitions}
    assert numa["0000:05:00.0"] == 0 and numa["0000:65:00.0"] == 0
    assert numa["0000:85:00.0"] == 1 and numa["0000:e5:00.0"] == 1
    assert {p.numa_source for p in inventory.partitions} == {"kfd"}


def test_mi300x_partitions_have_ids_from_pci_address_and_partition_index(tmp_path: Path) -> None:
    inventory = discover(lay_capture(tmp_path, "mi300x-cpx"))
    first = inventory.partitions[0]
    assert (first.id, first.gpu, first.index, first.render_minor) == (
        "0000:05:00.0-p0",
        "0000:05:00.0",
        0,
        128,
    )
    assert all(p.id == partition_id(p.gpu, p.index) and len(p.id) <= 63 for p in inventory.partitions)
    assert len({p.id for p in inventory.partitions}) == 63


def test_ids_do_not_depend_on_kfd_node_numbering(tmp_path: Path) -> None:
    """Renumbering KFD nodes (another probe order after reboot) keeps every ID."""
    root = lay_capture(tmp_path / "a", "mi300x-cpx")
    before = {p.id: p.render_minor for p in discover(root).partitions}
    nodes = root / KFD_TOPOLOGY / "nodes"
    for node in sorted(nodes.iterdir(), key=lambda p: int(p.name)):
        node.rename(nodes / f"tmp{node.name}")
    for node in list(nodes.iterdir()):
        node.rename(nodes / str(100 - int(node.name[3:])))
    after = {p.id: p.render_minor for p in discover(root).partitions}
    assert after == before


def test_mi308x_capture_gives_32_partitions_of_48_gib_from_mem_banks(tmp_path: Path) -> None:
    inventory = discover(lay_capture(tmp_path, "mi308x"))
    assert len(inventory.partitions) == 32
    assert len(inventory.gpus) == 8
    assert {p.memory_source for p in inventory.partitions} == {"kfd"}
    assert {p.memory_bytes for p in inventory.partitions} == {51_539_607_552, 51_522_830_336}
    assert {p.compute_units for p in inventory.partitions} == {20}
    assert {p.product for p in inventory.partitions} == {"MI308X"}
    assert {p.compute_mode for p in inventory.partitions} == {"CPX"}
    by_minor = {p.render_minor: p.gpu for p in inventory.partitions}
    # Upstream expectation (ROCm/k8s-device-plugin amdgpu_test.go): 128 -> 0000:0a:00, 160 -> 0001:0b:00.
    assert by_minor[128] == "0000:0a:00.0"
    assert by_minor[160] == "0001:0b:00.0"
    assert inventory.problems == ()


def test_mi210_capture_gives_8_whole_unpartitionable_gpus_with_unknown_memory(tmp_path: Path) -> None:
    inventory = discover(lay_capture(tmp_path, "mi210-xgmi"))
    assert len(inventory.partitions) == 8
    assert len({p.gpu for p in inventory.partitions}) == 8
    assert {p.product for p in inventory.partitions} == {"MI210"}
    assert {p.partitionable for p in inventory.partitions} == {False}
    assert {p.memory_bytes for p in inventory.partitions} == {None}
    assert {p.compute_mode for p in inventory.partitions} == {None}
    assert {p.compute_units for p in inventory.partitions} == {104}
    assert {p.index for p in inventory.partitions} == {0}
    assert {p.hive_id for p in inventory.partitions} == {12609507387757274807, 18091350218769748594}
    assert inventory.problems == ()


def test_partition_mode_files_are_read_when_present(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi300x-cpx", compute_mode="CPX", memory_mode="NPS4", numa=True)
    inventory = discover(root)
    assert {(p.compute_mode, p.compute_mode_source) for p in inventory.partitions} == {("CPX", "sysfs")}
    assert {(p.memory_mode, p.memory_mode_source) for p in inventory.partitions} == {("NPS4", "sysfs")}
    assert {p.numa_source for p in inventory.partitions} == {"sysfs"}
    gpu = inventory.gpus[0]
    assert gpu.available_compute_modes == ("SPX", "DPX", "QPX", "CPX")
    assert gpu.available_memory_modes == ("NPS1", "NPS4")


def test_lowercase_mode_files_are_accepted(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi308x", compute_mode="cpx", memory_mode="nps1")
    assert {(p.compute_mode, p.memory_mode) for p in discover(root).partitions} == {("CPX", "NPS1")}


@pytest.mark.parametrize("separator", ["_", "."], ids=["amdgpu_xcp_N", "amdgpu_xcp.N"])
def test_card_nodes_come_from_pci_drm_and_both_xcp_platform_spellings(tmp_path: Path, separator: str) -> None:
    root = lay_capture(tmp_path, "mi300x-cpx", xcp_separator=separator)
    inventory = discover(root)
    cards = [p.card_minor for p in inventory.partitions]
    assert None not in cards
    assert len(set(cards)) == 63
    assert inventory.partitions[0].card_minor == 1


def test_render_minors_without_kfd_node_are_ignored(tmp_path: Path) -> None:
    """amdgpu pre-creates 8 DRM nodes per GPU; MI308X CPX uses 4, the rest are not partitions."""
    root = lay_capture(tmp_path, "mi308x", xcp_separator="_")
    for extra in range(100, 104):
        drm = root / "devices/platform" / f"amdgpu_xcp_{extra}" / "drm"
        drm.mkdir(parents=True)
        (drm / f"card{extra}").mkdir()
        (drm / f"renderD{132 + extra - 100}").mkdir()  # renderD132..135: no KFD node uses them
    inventory = discover(root)
    assert len(inventory.partitions) == 32
    assert not {132, 133, 134, 135} & {p.render_minor for p in inventory.partitions}


def test_grouping_ignores_unique_id(tmp_path: Path) -> None:
    """Newer drivers give every partition its own unique_id; grouping must not change."""
    root = lay_capture(tmp_path, "mi300x-cpx")
    for i, props_path in enumerate(sorted((root / KFD_TOPOLOGY / "nodes").glob("*/properties"))):
        text = props_path.read_text()
        lines = [
            f"unique_id {1000 + i}" if line.startswith("unique_id") else line for line in text.splitlines()
        ]
        props_path.write_text("\n".join(lines) + "\n")
    inventory = discover(root)
    assert len(inventory.gpus) == 8
    assert len(inventory.partitions) == 63


def test_heterogeneous_node_is_reported_in_notes(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi300x-cpx", compute_mode="CPX")
    (root / "bus/pci/devices/0000:05:00.0/current_compute_partition").write_text("SPX\n")
    inventory = discover(root)
    assert not inventory.is_homogeneous
    assert any("not all in the same partition mode" in n for n in inventory.notes)


# -- damaged trees ---------------------------------------------------------------------------


def _node_dir(root: Path, render_minor: int) -> Path:
    for props in (root / KFD_TOPOLOGY / "nodes").glob("*/properties"):
        if f"drm_render_minor {render_minor}\n" in props.read_text():
            return props.parent
    raise AssertionError(render_minor)


def test_truncated_properties_file_skips_that_partition_only(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi300x-cpx")
    props = _node_dir(root, 130) / "properties"
    props.write_text(props.read_text()[:200])  # cut before location_id and drm_render_minor
    inventory = discover(root)
    assert len(inventory.partitions) == 62
    assert 130 not in {p.render_minor for p in inventory.partitions}
    assert any("lack" in p and "node skipped" in p for p in inventory.problems)


def test_garbage_properties_file_is_skipped_with_a_problem(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi308x")
    (_node_dir(root, 129) / "properties").write_bytes(
        b"\x00\xff\xfe garbage \x89PNG\r\n\x1a\nsimd_count lots\n"
    )
    inventory = discover(root)
    assert len(inventory.partitions) == 31
    assert len(inventory.problems) == 1


def test_garbled_line_among_valid_ones_is_ignored_and_reported(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi308x")
    props = _node_dir(root, 129) / "properties"
    props.write_text(props.read_text() + "this is not a property line\n")
    inventory = discover(root)
    assert len(inventory.partitions) == 32
    assert any("unparsable" in p for p in inventory.problems)


def test_garbage_mem_bank_falls_back_to_geometry(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi308x")
    (_node_dir(root, 128) / "mem_banks/0/properties").write_text("size_in_bytes banana\n")
    inventory = discover(root)
    first = inventory.by_id["0000:0a:00.0-p0"]
    assert first is not None
    assert (first.memory_bytes, first.memory_source) == (48 * GIB, "geometry")
    assert any("size_in_bytes" in p for p in inventory.problems)


def test_garbage_mode_file_is_ignored_and_mode_derived(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi300x-cpx", compute_mode="CPX")
    (root / "bus/pci/devices/0000:05:00.0/current_compute_partition").write_bytes(b"\xde\xad\xbe\xef")
    inventory = discover(root)
    gpu = inventory.by_id["0000:05:00.0-p0"]
    assert gpu is not None and (gpu.compute_mode, gpu.compute_mode_source) == ("CPX", "derived")
    assert any("not a known mode" in p for p in inventory.problems)


def test_missing_properties_file_and_missing_node_directory(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi300x-cpx")
    (_node_dir(root, 128) / "properties").unlink()
    shutil.rmtree(_node_dir(root, 140))
    inventory = discover(root)
    assert len(inventory.partitions) == 61
    assert any("missing or unreadable" in p for p in inventory.problems)


def test_missing_kfd_topology_gives_empty_inventory_and_a_problem(tmp_path: Path) -> None:
    inventory = discover(tmp_path)
    assert inventory.partitions == ()
    assert "KFD topology not found" in inventory.problems[0]


def test_missing_io_links_leave_numa_unknown(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi210-xgmi")
    for links in (root / KFD_TOPOLOGY / "nodes").glob("*/io_links"):
        links.unlink()  # a symlink to the read-only capture (conftest._copy_tree)
    inventory = discover(root)
    assert len(inventory.partitions) == 8
    assert {p.numa_node for p in inventory.partitions} == {None}


def test_duplicate_render_minor_unconfirmed_skips_both_nodes(tmp_path: Path) -> None:
    root = lay_capture(tmp_path, "mi308x")
    props = _node_dir(root, 129) / "properties"
    props.write_text(props.read_text().replace("drm_render_minor 129", "drm_render_minor 128"))
    inventory = discover(root)
    assert len(inventory.partitions) == 30
    assert {128, 129}.isdisjoint(p.render_minor for p in inventory.partitions)
    assert any("confirms none" in p and "KFD node 2 " in p and "KFD node 3 " in p for p in inventory.problems)
