"""deviceplugin.dra.slices: the node's partitions as resource.k8s.io/v1 ResourceSlice devices
(one per partition found by the same discovery the device plugin uses). The API server's own
validation of these objects is in test_dra_controlplane.py."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from deviceplugin import discovery
from deviceplugin.dra.slices import MAX_DEVICES_PER_SLICE, SPEC_HASH_ANNOTATION, device_name, resource_slices
from deviceplugin.inventory import Inventory, Partition
from sizing.contract import DRA_DRIVER

SYSFS = Path(__file__).resolve().parents[1] / "fixtures" / "sysfs"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def partition(gpu: str, index: int, memory: int | None, mode: str | None = "QPX") -> Partition:
    return Partition(id=f"{gpu}-p{index}", gpu=gpu, index=index, kfd_node=index + 1, render_minor=128 + index,
                     card_minor=None, memory_bytes=memory, memory_source="kfd", compute_units=76, numa_node=0,
                     numa_source="sysfs", hive_id=None, compute_mode=mode, compute_mode_source="sysfs",
                     memory_mode="NPS1", memory_mode_source="sysfs", product="MI300X", device_id=0x74A1,
                     partitionable=True)


def test_mi308x_capture_becomes_one_device_per_partition_with_memory_and_modes() -> None:
    inventory = discovery.discover(SYSFS / "mi308x")
    (slice_,) = resource_slices(inventory, "node-a", generation=3).slices
    spec = slice_["spec"]
    assert slice_["apiVersion"] == "resource.k8s.io/v1" and slice_["kind"] == "ResourceSlice"
    assert spec["driver"] == DRA_DRIVER and spec["nodeName"] == "node-a"
    assert spec["pool"] == {"name": "node-a", "generation": 3, "resourceSliceCount": 1}
    devices = spec["devices"]
    assert len(devices) == len(inventory.partitions) == 32
    assert len({d["name"] for d in devices}) == 32
    by_name = {device_name(p): p for p in inventory.partitions}
    for found in devices:
        source = by_name[found["name"]]
        assert DNS_LABEL.fullmatch(found["name"]), found["name"]
        assert found["capacity"] == {"memory": {"value": str(source.memory_bytes)}}
        attributes = found["attributes"]
        assert attributes["product"] == {"string": "MI308X"}
        for key, value in (("computeMode", source.compute_mode), ("memoryMode", source.memory_mode)):
            assert attributes.get(key) == (None if value is None else {"string": value})
        assert attributes["computeUnits"] == {"int": source.compute_units}
        assert attributes["pciAddress"] == {"string": source.gpu}
        assert attributes["partitionIndex"] == {"int": source.index}
    # KFD gives the last partition of each GPU 16 MiB less: published as read, not rounded.
    assert {d["capacity"]["memory"]["value"] for d in devices} == {"51522830336", "51539607552"}


def test_device_name_is_a_dns_label_from_the_stable_id() -> None:
    assert device_name(partition("0000:05:00.0", 3, 1 << 30)) == "gpu-0000-05-00-0-p3"


def test_partition_without_known_memory_is_left_out_and_said() -> None:
    inventory = Inventory(partitions=(partition("0000:05:00.0", 0, None), partition("0000:05:00.0", 1, 48 << 30)))
    result = resource_slices(inventory, "n", 1)
    assert [d["name"] for d in result.slices[0]["spec"]["devices"]] == ["gpu-0000-05-00-0-p1"]
    assert result.skipped == ("partition 0000:05:00.0-p0: memory unknown, not published",)


def test_unknown_mode_is_an_absent_attribute_not_an_empty_string() -> None:
    (found,) = resource_slices(Inventory(partitions=(partition("0000:05:00.0", 0, 1 << 34, mode=None),)),
                               "n", 1).slices[0]["spec"]["devices"]
    assert "computeMode" not in found["attributes"]


def test_more_than_128_partitions_span_slices_of_one_pool() -> None:
    parts = tuple(partition(f"0000:{bus:02x}:00.0", i, 24 << 30) for bus in range(40) for i in range(8))
    result = resource_slices(Inventory(partitions=parts), "big", 7)
    assert [len(s["spec"]["devices"]) for s in result.slices] == [128, 128, 64]
    assert all(len(s["spec"]["devices"]) <= MAX_DEVICES_PER_SLICE for s in result.slices)
    assert {s["spec"]["pool"]["resourceSliceCount"] for s in result.slices} == {3}
    assert len({s["metadata"]["name"] for s in result.slices}) == 3


def test_empty_node_publishes_an_empty_pool() -> None:
    (slice_,) = resource_slices(Inventory(), "n", 1).slices
    assert slice_["spec"]["devices"] == [] and slice_["spec"]["pool"]["resourceSliceCount"] == 1


def test_hash_changes_with_the_devices_only() -> None:
    inventory = discovery.discover(SYSFS / "mi300x-cpx")
    first = resource_slices(inventory, "n", 1)
    assert resource_slices(inventory, "n", 2).spec_hash == first.spec_hash
    assert first.slices[0]["metadata"]["annotations"][SPEC_HASH_ANNOTATION] == first.spec_hash
    smaller = dataclasses.replace(inventory, partitions=inventory.partitions[1:])
    assert resource_slices(smaller, "n", 1).spec_hash != first.spec_hash


def test_slice_names_are_dns_subdomains_even_for_the_longest_node_name() -> None:
    node = ".".join(["a" * 63] * 3) + "." + "b" * 61  # 253 characters, a valid node name
    (slice_,) = resource_slices(Inventory(), node, 1).slices
    name = slice_["metadata"]["name"]
    assert len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name), name
    assert slice_["spec"]["pool"]["name"] == node


def test_owner_reference_ties_slices_to_the_node() -> None:
    (slice_,) = resource_slices(Inventory(), "n", 1, owner={"name": "n", "uid": "u-1"}).slices
    assert slice_["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "u-1", "controller": True}]
