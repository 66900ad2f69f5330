"""The kubelet checkpoint reader: real format (1.20+ map and older list), hostile files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from deviceplugin.checkpoint import MAX_CHECKPOINT_BYTES, CheckpointReader, allocated_ids, read_allocated_ids
from tests.extender.hostile_files import release, run_within

RESOURCE = "amd.com/gpu-partition"


def _entry(ids: object, resource: str = RESOURCE) -> dict[str, object]:
    return {"PodUID": "u", "ContainerName": "c", "ResourceName": resource, "DeviceIDs": ids, "AllocResp": ""}


def test_map_and_list_forms_and_other_resources() -> None:
    text = json.dumps({"Data": {"PodDeviceEntries": [
        _entry({"0": ["a-p0"], "1": ["b-p1"]}), _entry(["c-p2"]), _entry(["x"], resource="amd.com/gpu"),
    ]}})
    assert allocated_ids(text, RESOURCE) == {"a-p0", "b-p1", "c-p2"}


def test_hostile_checkpoints_are_unreadable_not_a_traceback() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    assert allocated_ids(deep, RESOURCE) is None
    assert allocated_ids('{"Data": {"PodDeviceEntries": {"not": "a list"}}}', RESOURCE) is None
    assert allocated_ids("\x00garbage", RESOURCE) is None
    odd = json.dumps({"Data": {"PodDeviceEntries": [_entry([1, None, {"a": 1}, "ok-p0", "x" * 1000])]}})
    assert allocated_ids(odd, RESOURCE) == {"ok-p0"}


def test_oversized_file_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "kubelet_internal_checkpoint"
    with path.open("wb") as handle:
        handle.truncate(MAX_CHECKPOINT_BYTES + 1)  # sparse: no disk used
    assert read_allocated_ids(tmp_path, RESOURCE) is None


def test_reader_rereads_only_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "kubelet_internal_checkpoint"
    reader = CheckpointReader(tmp_path, RESOURCE)
    assert reader.allocated() is None
    path.write_text(json.dumps({"Data": {"PodDeviceEntries": [_entry(["a-p0"])]}}))
    assert reader.allocated() == {"a-p0"}
    path.write_text(json.dumps({"Data": {"PodDeviceEntries": []}}))
    assert reader.allocated() == frozenset()


def test_a_fifo_or_a_device_as_the_checkpoint_does_not_block(tmp_path: Path) -> None:
    """open() of a FIFO waits for a writer and /dev/zero never ends: both are unreadable at once."""
    path = tmp_path / "kubelet_internal_checkpoint"
    os.mkfifo(path)
    try:
        assert run_within(5, lambda: read_allocated_ids(tmp_path, RESOURCE)) is None
        assert run_within(5, CheckpointReader(tmp_path, RESOURCE).allocated) is None
    finally:
        release(str(path))
    path.unlink()
    path.symlink_to("/dev/zero")
    assert run_within(5, lambda: read_allocated_ids(tmp_path, RESOURCE)) is None
