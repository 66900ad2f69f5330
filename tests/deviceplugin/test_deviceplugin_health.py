"""Health verdicts and the rule that tells a lost partition (fault) from a repartitioned one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from deviceplugin.health import check_health
from deviceplugin.inventory import Gpu, Inventory, Partition
from deviceplugin.reconcile import reconcile
from tests.deviceplugin.dp_support import make_partition

GPU = "0000:05:00.0"


def lay(tmp_path: Path, partitions: list[Partition]) -> tuple[Path, Path]:
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    (dev / "dri").mkdir(parents=True)
    for p in partitions:
        node = sysfs / "class/kfd/kfd/topology/nodes" / str(p.kfd_node)
        node.mkdir(parents=True)
        (node / "properties").write_text("simd_count 152\n")
        (dev / "dri" / f"renderD{p.render_minor}").write_text("")
    return sysfs, dev


def test_all_present_is_healthy(tmp_path: Path) -> None:
    parts = [make_partition(GPU, i) for i in range(4)]
    sysfs, dev = lay(tmp_path, parts)
    verdicts = check_health(parts, dev_root=dev, sysfs_root=sysfs)
    assert {v.health for v in verdicts.values()} == {"Healthy"}


def test_missing_render_node_or_kfd_node_is_unhealthy_with_a_reason(tmp_path: Path) -> None:
    parts = [make_partition(GPU, i) for i in range(3)]
    sysfs, dev = lay(tmp_path, parts)
    (dev / "dri" / "renderD129").unlink()
    (sysfs / "class/kfd/kfd/topology/nodes/4/properties").unlink()
    verdicts = check_health(parts, dev_root=dev, sysfs_root=sysfs)
    assert verdicts[parts[0].id].healthy
    assert not verdicts[parts[1].id].healthy and "renderD129" in (verdicts[parts[1].id].reason or "")
    assert not verdicts[parts[2].id].healthy and "KFD node 4" in (verdicts[parts[2].id].reason or "")


def test_unknown_render_state_stays_healthy(tmp_path: Path) -> None:
    parts = [make_partition(GPU, 0)]
    sysfs, _ = lay(tmp_path, parts)
    verdicts = check_health(parts, dev_root=tmp_path / "no-dev", sysfs_root=sysfs)
    assert verdicts[parts[0].id].healthy
    assert "unknown" in (verdicts[parts[0].id].reason or "")


def inventory(parts: list[Partition], mode: str = "CPX") -> Inventory:
    gpus = {p.gpu for p in parts}
    return Inventory(
        partitions=tuple(parts),
        gpus=tuple(
            Gpu(
                address=g,
                product="MI300X",
                device_id=0x74A1,
                compute_mode=mode,
                memory_mode="NPS4",
                available_compute_modes=None,
                available_memory_modes=None,
                numa_node=0,
                hive_id=1,
                partition_ids=tuple(p.id for p in parts if p.gpu == g),
            )
            for g in sorted(gpus)
        ),
    )


def test_partition_missing_in_same_mode_is_kept_as_lost() -> None:
    before = [make_partition(GPU, i) for i in range(8)]
    merged = reconcile(inventory(before), inventory(before[:7]))
    assert len(merged.inventory.partitions) == 8
    assert merged.lost_ids == {before[7].id}
    assert merged.removed_ids == frozenset()


def test_gpu_in_another_mode_drops_old_partitions() -> None:
    before = [make_partition(GPU, i) for i in range(8)]
    spx = [dataclasses.replace(make_partition(GPU, 0), compute_mode="SPX", compute_units=304)]
    merged = reconcile(inventory(before), inventory(spx, mode="SPX"))
    assert [p.id for p in merged.inventory.partitions] == [f"{GPU}-p0"]
    assert merged.inventory.partitions[0].compute_units == 304
    assert len(merged.removed_ids) == 7
    assert merged.lost_ids == frozenset()


def test_vanished_gpu_leaves_unless_a_pod_holds_its_partition() -> None:
    before = [make_partition(GPU, i) for i in range(2)]
    merged = reconcile(inventory(before), Inventory())
    assert merged.lost_ids == frozenset()
    assert merged.removed_ids == {p.id for p in before}
    assert merged.inventory.partitions == ()
    held = reconcile(inventory(before), Inventory(), allocated=frozenset({f"{GPU}-p1"}))
    assert held.lost_ids == {f"{GPU}-p1"}
    assert [p.id for p in held.inventory.partitions] == [f"{GPU}-p1"]
    released = reconcile(held.inventory, Inventory(), allocated=frozenset())
    assert released.inventory.partitions == () and released.removed_ids == {f"{GPU}-p1"}


def test_first_discovery_adds_everything() -> None:
    parts = [make_partition(GPU, i) for i in range(2)]
    merged = reconcile(None, inventory(parts))
    assert merged.added_ids == {p.id for p in parts}


def test_repartitioned_gpu_keeps_a_held_partition_unhealthy_until_released() -> None:
    before = [make_partition(GPU, i) for i in range(8)]
    spx = [dataclasses.replace(make_partition(GPU, 0), compute_mode="SPX", compute_units=304)]
    held = reconcile(inventory(before), inventory(spx, mode="SPX"), allocated=frozenset({f"{GPU}-p5"}))
    assert held.lost_ids == {f"{GPU}-p5"}
    assert [p.id for p in held.inventory.partitions] == [f"{GPU}-p0", f"{GPU}-p5"]
    released = reconcile(held.inventory, inventory(spx, mode="SPX"))
    assert [p.id for p in released.inventory.partitions] == [f"{GPU}-p0"]
