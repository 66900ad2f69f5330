"""Writer and reader of the node labels tied together.

The device plugin writes a node's labels from its partitions (``deviceplugin.labels.desired_labels``,
which calls ``sizing.contract.node_labels``); the extender, the planner and the partitioner read
them with ``sizing.contract.read_node_labels``. Here the device plugin's own partitions, for every
product and partition mode in sizing/data/gpus.json and for the real sysfs captures, go through the
writer and back through the reader, and must come back as what was written.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from deviceplugin.discovery import discover
from deviceplugin.inventory import Partition
from deviceplugin.labels import desired_labels
from sizing import GEOMETRY, PartitionMode
from sizing.bounded import shown
from sizing.contract import (
    LABEL_COMPUTE_MODE,
    LABEL_COUNT,
    LABEL_CU_COUNT,
    LABEL_GPU_COUNT,
    LABEL_HOMOGENEOUS,
    LABEL_KEYS,
    LABEL_MEMORY_MIB,
    LABEL_MEMORY_MODE,
    LABEL_PRODUCT,
    MAX_GPU_COUNT,
    MIB,
    MIXED,
    NodeLabels,
    PartitionShape,
    is_valid_label_value,
    node_labels,
    read_node_labels,
)
from tests.deviceplugin.dp_support import make_partition
from tests.fixtures import FIXTURES

GPUS_PER_NODE = 8  # an MI300-class platform (OAM baseboard) carries 8 GPUs


def _node_partitions(mode: PartitionMode, gpus: int = GPUS_PER_NODE) -> list[Partition]:
    """The partitions discovery reports for a node of ``gpus`` GPUs of one product in one mode
    (the device plugin tests' partition, given this product's and mode's geometry)."""
    device_id = GEOMETRY.product(mode.product).pci_device_ids[0]
    return [
        replace(make_partition(f"0000:{0x05 + 0x20 * g:02x}:00.0", index, numa=g // 4),
                memory_bytes=mode.memory_bytes, compute_units=mode.compute_units, compute_mode=mode.compute_mode,
                memory_mode=mode.memory_mode, product=mode.product, device_id=device_id)
        for g in range(gpus) for index in range(mode.partitions)
    ]


def _labels(partitions: list[Partition]) -> dict[str, str | None]:
    """The device plugin's labels when every partition discovery found is healthy."""
    return desired_labels(partitions, (p.gpu for p in partitions))


def _written(labels: dict[str, str | None]) -> dict[str, str]:
    """What lands on the Node after the merge patch: keys with None are removed."""
    return {key: value for key, value in labels.items() if value is not None}


def _assert_writable(labels: dict[str, str | None]) -> None:
    """Exactly the contract's keys, each a value the API server accepts as a label value."""
    assert set(labels) == set(LABEL_KEYS)
    for key, value in labels.items():
        assert value is None or is_valid_label_value(value), (key, value)


MODES = GEOMETRY.partition_modes()


@pytest.mark.parametrize("mode", MODES, ids=[m.label.replace(" ", "-") for m in MODES])
def test_every_product_and_mode_round_trips(mode: PartitionMode) -> None:
    labels = _labels(_node_partitions(mode))
    _assert_writable(labels)
    read = read_node_labels(_written(labels))
    assert read == NodeLabels(
        memory_bytes=mode.memory_bytes // MIB * MIB,  # whole MiB, never more than the partition holds
        count=GPUS_PER_NODE * mode.partitions,
        compute_mode=mode.compute_mode,
        memory_mode=mode.memory_mode,
        cu_count=mode.compute_units,
        product=mode.product,
        homogeneous=True,
        gpu_count=GPUS_PER_NODE,
        defects=(),
    )


def test_the_round_trip_covers_every_product_in_gpus_json() -> None:
    assert {m.product for m in MODES} == {p.name for p in GEOMETRY.products}
    assert len(MODES) == sum(len(p.modes) for p in GEOMETRY.products) >= 20


def test_a_mixed_node_reads_back_its_smallest_partition_and_mixed() -> None:
    cpx = GEOMETRY.product("MI300X").mode("CPX", "NPS4")
    spx = GEOMETRY.product("MI325X").mode("SPX", "NPS1")
    assert cpx is not None and spx is not None
    parts = _node_partitions(cpx, gpus=1) + [replace(p, id=p.id + "-b") for p in _node_partitions(spx, gpus=1)]
    labels = _labels(parts)
    _assert_writable(labels)
    read = read_node_labels(_written(labels))
    assert read.memory_bytes == cpx.memory_bytes // MIB * MIB  # the smallest partition: what any pod gets
    assert read.cu_count == cpx.compute_units
    assert read.count == cpx.partitions + 1
    assert (read.product, read.compute_mode, read.memory_mode, read.homogeneous) == (MIXED, MIXED, MIXED, False)
    assert read.defects == ()


def test_a_node_without_partitions_reads_back_zero_and_nothing_else() -> None:
    labels = desired_labels([], [])
    _assert_writable(labels)
    assert labels[LABEL_COUNT] == "0"
    assert read_node_labels(_written(labels)) == NodeLabels(count=0)


@pytest.mark.parametrize(("capture", "count", "memory_mib", "cu_count", "product", "compute_mode"), [
    # tests/fixtures/sysfs/README.md: 63 MI300X CPX partitions of 38 CUs (24 GiB each by geometry)
    ("mi300x-cpx", 63, 24 * 1024, 38, "MI300X", "CPX"),
    # 8 MI308X x 4 partitions of 20 CUs; mem_banks: 48 GiB, the last of each GPU 48 GiB - 16 MiB
    ("mi308x", 32, 48 * 1024 - 16, 20, "MI308X", "CPX"),
    # 8 MI210, not partitionable (104 CUs each); no mem_banks captured, so no memory label
    ("mi210-xgmi", 8, None, 104, "MI210", "none"),
])
def test_real_captures_round_trip(capture: str, count: int, memory_mib: int | None, cu_count: int,
                                  product: str, compute_mode: str) -> None:
    inventory = discover(FIXTURES / "sysfs" / capture)
    labels = desired_labels(inventory.partitions, (gpu.address for gpu in inventory.gpus))
    _assert_writable(labels)
    read = read_node_labels(_written(labels))
    assert read.defects == ()
    assert read.count == count == len(inventory.partitions)
    assert read.gpu_count == 8 == len(inventory.gpus)  # every capture is an 8-GPU server (63 CPX partitions too)
    assert read.memory_bytes == (None if memory_mib is None else memory_mib * MIB)
    assert (read.cu_count, read.product, read.compute_mode) == (cu_count, product, compute_mode)
    assert read.homogeneous is True
    assert labels[LABEL_MEMORY_MODE] in ("unknown", "none")  # the captures hold no memory-mode file


def test_writer_only_writes_what_the_reader_accepts() -> None:
    """Seeded random shapes, including absurd numbers a garbled sysfs file could give: the labels
    written are always valid label values that read back without defects (a value outside the
    reader's bounds is left out, never written wrong)."""
    rng = random.Random(20261130)
    products = ["MI300X", "MI308X", "", "x" * 80, "MI 300X", "MI300X\u00e9", "-MI300X-"]
    modes = ["CPX", "SPX", None, "weird mode", "cpx"]
    units = [38, 304, 1, 0, -1, 1 << 16, (1 << 16) + 1, 10**30]
    sizes = [24 << 30, 192 << 30, None, 0, -5, 1000, MIB, 1 << 50, (1 << 50) + MIB, 10**400]
    gpu_counts = [None, 1, 8, 0, -1, MAX_GPU_COUNT, MAX_GPU_COUNT + 1, 10**30]
    for _ in range(3000):
        shapes = [PartitionShape(product=rng.choice(products), compute_mode=rng.choice(modes),
                                 memory_mode=rng.choice(["NPS1", "NPS4", None]),
                                 compute_units=rng.choice(units), memory_bytes=rng.choice(sizes),
                                 partitionable=rng.random() < 0.8)
                  for _ in range(rng.randint(1, 5))]
        gpus = rng.choice(gpu_counts)
        labels = node_labels(shapes, gpus=gpus)
        _assert_writable(labels)
        read = read_node_labels(_written(labels))
        assert read.defects == (), (shapes, labels)
        assert read.count == len(shapes)
        assert read.gpu_count == (gpus if gpus is not None and 1 <= gpus <= MAX_GPU_COUNT else None)
        sane = [s.memory_bytes for s in shapes if s.memory_bytes is not None and MIB <= s.memory_bytes <= 1 << 50]
        assert read.memory_bytes == (min(sane) // MIB * MIB if sane else None)


# -- hostile label values: the reader names the label, keeps the rest, and is fast ----------------

def _deep(levels: int) -> object:
    value: object = "1"
    for _ in range(levels):
        value = [value]
    return value


HOSTILE_NUMBERS = [
    "1e999999", "inf", "Infinity", "NaN", "1e4400", "1e400", "\u00b2", "\u0661", "1" * 5000, "-1", "0x10",
    "24Gi", "", " ", "1.5", True, False, 1.5, float("inf"), 10**5000, {"a": "1"}, ["1"], _deep(1000),
]
NUMERIC_KEYS = {LABEL_MEMORY_MIB: "memory_bytes", LABEL_COUNT: "count", LABEL_CU_COUNT: "cu_count",
                LABEL_GPU_COUNT: "gpu_count"}
TEXT_KEYS = {LABEL_COMPUTE_MODE: "compute_mode", LABEL_MEMORY_MODE: "memory_mode", LABEL_PRODUCT: "product"}
MI300X_CPX = GEOMETRY.product("MI300X").mode("CPX", "NPS4")
assert MI300X_CPX is not None
GOOD = _written(_labels(_node_partitions(MI300X_CPX)))


@pytest.mark.parametrize("key", list(NUMERIC_KEYS))
@pytest.mark.parametrize("raw", HOSTILE_NUMBERS, ids=shown)
def test_hostile_numeric_label_gives_a_defect_naming_it(key: str, raw: object) -> None:
    labels: dict[str, object] = {**GOOD, key: raw}
    read = read_node_labels(labels)
    assert getattr(read, NUMERIC_KEYS[key]) is None
    assert len(read.defects) == 1 and read.defects[0].startswith(f"label {key}="), read.defects
    assert "\n" not in read.defects[0] and len(read.defects[0]) < 200
    good = read_node_labels(GOOD)
    others = [f for f in ("memory_bytes", "count", "cu_count", "compute_mode", "product", "homogeneous", "gpu_count")
              if f != NUMERIC_KEYS[key]]
    assert all(getattr(read, f) == getattr(good, f) for f in others)  # one bad label spoils only itself


@pytest.mark.parametrize("key", list(TEXT_KEYS))
@pytest.mark.parametrize("raw", ["x" * 64, "CPX mode", "-CPX", "CPX\u00b2", "\u0661", 1, True, {"a": 1}, ["CPX"],
                                 _deep(1000), "x" * 100_000], ids=shown)
def test_hostile_text_label_gives_a_defect_naming_it(key: str, raw: object) -> None:
    read = read_node_labels({**GOOD, key: raw})
    assert getattr(read, TEXT_KEYS[key]) is None
    assert len(read.defects) == 1 and read.defects[0].startswith(f"label {key}="), read.defects
    assert len(read.defects[0]) < 200  # the value is shown short, never echoed whole


@pytest.mark.parametrize("raw", ["yes", "True", "1", True, 1, "", {"a": 1}, _deep(1000)], ids=shown)
def test_hostile_homogeneous_label_gives_a_defect_naming_it(raw: object) -> None:
    read = read_node_labels({**GOOD, LABEL_HOMOGENEOUS: raw})
    assert read.homogeneous is None
    assert len(read.defects) == 1 and read.defects[0].startswith(f"label {LABEL_HOMOGENEOUS}="), read.defects


@pytest.mark.parametrize("labels", [None, "labels", ["a"], 7, _deep(1000)])
def test_labels_that_are_not_a_mapping_read_as_nothing(labels: object) -> None:
    assert read_node_labels(labels) == NodeLabels()
