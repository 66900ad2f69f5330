"""GetPreferredAllocation policy (pure; no gRPC here).

Aspects: must-include honoured; single GPU preferred when it fits; packing onto the GPU with
the fewest free partitions; NUMA node, then XGMI hive, when one GPU is not enough; unknown IDs
last; short or oversize requests; determinism."""

from __future__ import annotations

import pytest

from deviceplugin.inventory import Partition, partition_id
from deviceplugin.preferred_allocation import preferred_device_ids
from tests.deviceplugin.dp_support import make_partition

GPU_A, GPU_B, GPU_C, GPU_D = "0000:05:00.0", "0000:27:00.0", "0000:85:00.0", "0000:a7:00.0"


def node(layout: dict[str, tuple[int, int | None, int | None]]) -> dict[str, Partition]:
    """{gpu: (partitions, numa, hive)} -> {id: Partition}."""
    parts = {}
    for gpu, (count, numa, hive) in layout.items():
        for i in range(count):
            p = make_partition(gpu, i, numa=numa, hive=hive)
            parts[p.id] = p
    return parts


def ids(gpu: str, *indexes: int) -> list[str]:
    return [partition_id(gpu, i) for i in indexes]


def pick(
    partitions: dict[str, Partition], available: list[str], size: int, must: list[str] | None = None
) -> list[str]:
    return preferred_device_ids(
        available=available, must_include=must or [], size=size, partitions=partitions
    )


FOUR_GPUS = node({GPU_A: (8, 0, 1), GPU_B: (8, 0, 1), GPU_C: (8, 1, 1), GPU_D: (8, 1, 1)})


def test_single_partition_goes_to_the_gpu_with_fewest_free_partitions() -> None:
    available = ids(GPU_A, *range(8)) + ids(GPU_B, 5, 6) + ids(GPU_C, *range(8))
    assert pick(FOUR_GPUS, available, 1) == ids(GPU_B, 5)


def test_seven_partition_gpu_is_packed_first_like_the_mi300x_capture() -> None:
    parts = node({GPU_A: (8, 0, 1), GPU_B: (7, 0, 1)})
    assert pick(parts, list(parts), 1) == ids(GPU_B, 0)


def test_multi_partition_request_stays_on_one_gpu_when_it_fits() -> None:
    available = ids(GPU_A, 0, 1) + ids(GPU_B, 0, 1, 2, 3) + ids(GPU_C, *range(8))
    assert pick(FOUR_GPUS, available, 3) == ids(GPU_B, 0, 1, 2)


def test_one_gpu_that_fits_beats_two_partial_gpus_with_fewer_free() -> None:
    available = ids(GPU_A, 0, 1) + ids(GPU_B, 0, 1) + ids(GPU_C, *range(8))
    assert pick(FOUR_GPUS, available, 4) == ids(GPU_C, 0, 1, 2, 3)


def test_spanning_request_stays_in_one_numa_node_and_fills_partial_gpus_first() -> None:
    # numa 0: A has 3 free, B has 2; numa 1: C and D have 4 each. No GPU holds 5.
    available = ids(GPU_A, 0, 1, 2) + ids(GPU_B, 6, 7) + ids(GPU_C, 0, 1, 2, 3) + ids(GPU_D, 0, 1, 2, 3)
    assert pick(FOUR_GPUS, available, 5) == ids(GPU_B, 6, 7) + ids(GPU_A, 0, 1, 2)
    assert pick(FOUR_GPUS, available, 6) == ids(GPU_C, 0, 1, 2, 3) + ids(GPU_D, 0, 1)
    # 9 fits no NUMA node: the hive, fewest-free GPUs first.
    assert pick(FOUR_GPUS, available, 9) == ids(GPU_B, 6, 7) + ids(GPU_A, 0, 1, 2) + ids(GPU_C, 0, 1, 2, 3)


def test_spanning_request_uses_one_hive_before_crossing_hives() -> None:
    parts = node({GPU_A: (2, 0, 1), GPU_B: (2, 1, 1), GPU_C: (3, 2, 2)})
    chosen = pick(parts, list(parts), 4)
    assert sorted(chosen) == sorted(ids(GPU_A, 0, 1) + ids(GPU_B, 0, 1))


def test_request_larger_than_any_hive_takes_from_everywhere() -> None:
    parts = node({GPU_A: (2, 0, 1), GPU_B: (2, 1, 2)})
    assert sorted(pick(parts, list(parts), 4)) == sorted(parts)


def test_must_include_is_always_in_the_answer_and_pulls_the_rest_to_its_gpu() -> None:
    available = ids(GPU_A, *range(8)) + ids(GPU_B, 1, 2)
    chosen = pick(FOUR_GPUS, available, 3, must=ids(GPU_A, 5))
    assert chosen[0] == partition_id(GPU_A, 5)
    assert chosen == ids(GPU_A, 5, 0, 1)


def test_must_include_on_a_small_gpu_spills_to_its_numa_node() -> None:
    available = ids(GPU_A, 0, 1, 2) + ids(GPU_B, 0, 1, 2, 3) + ids(GPU_C, *range(8))
    chosen = pick(FOUR_GPUS, available, 3, must=ids(GPU_B, 7))
    assert chosen[0] == partition_id(GPU_B, 7)
    assert set(chosen[1:]) <= set(ids(GPU_B, 0, 1, 2, 3))


def test_must_include_spanning_numa_nodes_still_honoured() -> None:
    must = ids(GPU_A, 0) + ids(GPU_C, 0)
    chosen = pick(FOUR_GPUS, list(FOUR_GPUS), 3, must=must)
    assert chosen[:2] == must and len(chosen) == 3 and len(set(chosen)) == 3


def test_must_include_equal_to_size_is_returned_as_is() -> None:
    must = ids(GPU_D, 3, 4)
    assert pick(FOUR_GPUS, list(FOUR_GPUS), 2, must=must) == must


def test_request_larger_than_available_returns_everything_available() -> None:
    available = ids(GPU_A, 0, 1)
    assert sorted(pick(FOUR_GPUS, available, 5)) == sorted(available)


def test_unknown_ids_are_used_last() -> None:
    available = ["mystery-1", *ids(GPU_A, 0, 1)]
    assert pick(FOUR_GPUS, available, 2) == ids(GPU_A, 0, 1)
    assert pick(FOUR_GPUS, available, 3)[-1] == "mystery-1"


def test_duplicates_in_available_are_ignored() -> None:
    available = ids(GPU_A, 0, 0, 1, 1)
    assert pick(FOUR_GPUS, available, 2) == ids(GPU_A, 0, 1)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 12, 17], ids=lambda s: f"size-{s}")
def test_answer_is_deterministic_sized_and_drawn_from_available(size: int) -> None:
    available = ids(GPU_A, 1, 3, 5) + ids(GPU_B, *range(8)) + ids(GPU_C, 0, 2) + ids(GPU_D, *range(6))
    first = pick(FOUR_GPUS, available, size)
    assert first == pick(FOUR_GPUS, list(reversed(available)), size)
    assert len(first) == size == len(set(first))
    assert set(first) <= set(available)


def test_partitions_without_numa_or_hive_still_group_by_gpu() -> None:
    parts = node({GPU_A: (4, None, None), GPU_B: (2, None, None)})
    assert pick(parts, list(parts), 2) == ids(GPU_B, 0, 1)
    assert pick(parts, list(parts), 3) == ids(GPU_A, 0, 1, 2)
