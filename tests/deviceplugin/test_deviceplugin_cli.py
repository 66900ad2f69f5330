"""Command line: bad flags exit 2 with usage, `discover --format json`, and `serve` as a real
subprocess that registers with the test kubelet and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deviceplugin.cli import main
from tests.deviceplugin.dp_support import TestKubelet, lay_capture, lay_dev_root, wait_until

REQUIRED_KEYS = {
    "id",
    "gpu",
    "index",
    "render_minor",
    "memory_bytes",
    "compute_units",
    "numa_node",
    "compute_mode",
    "memory_mode",
    "product",
}


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--no-such-flag"],
        ["serve", "--metrics-port", "http"],
        ["serve", "--health-interval", "-1"],
        ["serve", "--health-interval", "nan"],
        ["serve", "--discovery-interval", "inf"],
        ["serve", "--discovery-interval", "1e400"],
        ["serve", "--metrics-port", "١٢"],
        ["serve", "--metrics-port", "65536"],
        ["discover", "--format", "yaml"],
        [],
    ],
    ids=[
        "unknown flag", "non-numeric port", "negative interval", "NaN interval", "infinite interval",
        "overflowing interval", "non-ASCII port", "port out of range", "unknown format", "no command",
    ],
)
def test_bad_flag_exits_2_with_usage(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "usage: aim-deviceplugin" in capsys.readouterr().err


def test_serve_without_node_name_and_labels_on_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    with pytest.raises(SystemExit) as caught:
        main(["serve", "--kubelet-dir", str(tmp_path)])
    assert caught.value.code == 2
    assert "NODE_NAME" in capsys.readouterr().err


def test_serve_that_cannot_create_its_socket_exits_1_naming_the_kubelet_dir(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # keep pytest's own handlers
    not_a_dir = short_tmp / "file"
    not_a_dir.write_text("")
    kubelet_dir = not_a_dir / "kd"  # cannot be created: its parent is a file
    sysfs = lay_capture(short_tmp / "sys", "mi210-xgmi")
    argv = ["serve", "--sysfs-root", str(sysfs), "--kubelet-dir", str(kubelet_dir), "--no-node-labels"]
    assert main(argv) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and f"--kubelet-dir {kubelet_dir}" in errors[0], errors


def test_discover_json_on_the_mi300x_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = lay_capture(tmp_path, "mi300x-cpx")
    assert main(["discover", "--sysfs-root", str(root), "--format", "json"]) == 0
    partitions = json.loads(capsys.readouterr().out)
    assert len(partitions) == 63
    assert all(set(p) >= REQUIRED_KEYS for p in partitions)
    first = partitions[0]
    assert first["id"] == "0000:05:00.0-p0"
    assert first["gpu"] == "0000:05:00.0"
    assert (first["index"], first["render_minor"]) == (0, 128)
    assert first["memory_bytes"] == 24 * 2**30
    assert first["compute_units"] == 38
    assert (first["compute_mode"], first["product"]) == ("CPX", "MI300X")
    assert first["memory_mode"] is None
    assert first["numa_node"] == 0


def test_discover_table_says_what_was_derived(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = lay_capture(tmp_path, "mi210-xgmi")
    assert main(["discover", "--sysfs-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "8 partition(s) on 8 GPU(s)" in out
    assert "not in the sizing geometry" in out


def test_serve_subprocess_registers_and_exits_0_on_sigterm_removing_its_socket(
    short_tmp: Path, test_kubelet: TestKubelet
) -> None:
    sysfs = lay_capture(short_tmp / "sys", "mi308x")
    dev = lay_dev_root(short_tmp / "dev", sysfs)
    env = {k: v for k, v in os.environ.items() if k != "NODE_NAME"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deviceplugin",
            "serve",
            "--sysfs-root",
            str(sysfs),
            "--dev-root",
            str(dev),
            "--kubelet-dir",
            str(test_kubelet.dir),
            "--no-node-labels",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        assert wait_until(lambda: len(test_kubelet.registrations) == 1, timeout=15)
        test_kubelet.wait_for_devices(lambda d: len(d) == 32)
        socket = test_kubelet.dir / "amd.com_gpu-partition.sock"
        assert socket.is_socket()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    assert not socket.exists()
    assert "received SIGTERM" in output


@pytest.mark.parametrize(
    ("capture", "partitions", "gpus"), [("mi300x-cpx", 63, 8), ("mi308x", 32, 8), ("mi210-xgmi", 8, 8)]
)
def test_discover_reads_a_bare_kfd_capture_in_place(
    capture: str, partitions: int, gpus: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """The captures in tests/fixtures/sysfs hold only the KFD topology (README there): `discover` reads them as
    they are, without laying them under class/kfd/kfd/topology first, and never writes into them."""
    from tests.deviceplugin.dp_support import CAPTURES

    code = main(["discover", "--sysfs-root", str(CAPTURES / capture), "--format", "json"])
    found = json.loads(capsys.readouterr().out)
    assert code == 0
    assert len(found) == partitions
    assert len({p["gpu"] for p in found}) == gpus
