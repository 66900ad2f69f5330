"""Benchmark the device plugin (a script, not a test): ``python bench/bench_deviceplugin.py``.

Measures, on the real MI300X CPX capture (63 partitions) laid under a temporary sysfs root:
- Allocate and GetPreferredAllocation latency over the real unix socket (p50/p99/max);
- discovery time;
- time from a kubelet restart (kubelet.sock re-created, plugin sockets wiped) to Register;
- RSS of a real ``python -m deviceplugin serve`` process.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc

from deviceplugin.config import PluginConfig
from deviceplugin.discovery import discover
from deviceplugin.proto import api_pb2, api_pb2_grpc
from deviceplugin.runner import PluginRunner

CAPTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "sysfs" / "mi300x-cpx" / "topology"
KFD_TOPOLOGY = Path("class/kfd/kfd/topology")


class Kubelet(api_pb2_grpc.RegistrationServicer):
    """Minimal Registration service: records when Register arrives."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.registered = threading.Event()
        self.registered_at = 0.0
        self.server: grpc.Server | None = None

    def Register(self, request: api_pb2.RegisterRequest, context: grpc.ServicerContext) -> api_pb2.Empty:  # noqa: N802
        self.registered_at = time.perf_counter()
        self.registered.set()
        return api_pb2.Empty()

    def start(self) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        api_pb2_grpc.add_RegistrationServicer_to_server(self, self.server)
        self.server.add_insecure_port(f"unix://{self.directory / 'kubelet.sock'}")
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=0).wait()

    def restart(self) -> float:
        """Simulate a kubelet restart; return the time kubelet.sock was re-created."""
        self.stop()
        for entry in self.directory.iterdir():
            if entry.is_socket():
                entry.unlink()
        self.registered.clear()
        self.start()
        return time.perf_counter()


def lay_sysfs(root: Path) -> Path:
    shutil.copytree(CAPTURE, root / KFD_TOPOLOGY, symlinks=True)
    return root


def lay_dev(dev: Path, sysfs: Path) -> Path:
    (dev / "dri").mkdir(parents=True)
    (dev / "kfd").write_text("")
    for minor in range(128, 191):
        (dev / "dri" / f"renderD{minor}").write_text("")
    return dev


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"p50 {p50 * 1e3:.3f} ms  p99 {p99 * 1e3:.3f} ms  max {ordered[-1] * 1e3:.3f} ms  (n={len(ordered)})"
    )


def rss_kib(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def time_rpcs(socket_path: Path, ids: list[str], calls: int, where: str) -> None:
    """Latency of an empty RPC (the floor), Allocate and GetPreferredAllocation over the socket."""
    with grpc.insecure_channel(f"unix://{socket_path}") as channel:
        stub = api_pb2_grpc.DevicePluginStub(channel)
        stub.GetDevicePluginOptions(api_pb2.Empty(), timeout=5)  # connect once
        calls_by_name = {
            "RPC floor (GetDevicePluginOptions)": lambda i: stub.GetDevicePluginOptions(api_pb2.Empty(), timeout=5),
            "Allocate (2 partitions)": lambda i: stub.Allocate(api_pb2.AllocateRequest(container_requests=[
                api_pb2.ContainerAllocateRequest(devices_ids=[ids[i % len(ids)], ids[(i + 1) % len(ids)]])]),
                timeout=5),
            "GetPreferredAllocation (4 of 63)": lambda i: stub.GetPreferredAllocation(
                api_pb2.PreferredAllocationRequest(container_requests=[api_pb2.ContainerPreferredAllocationRequest(
                    available_deviceIDs=ids, must_include_deviceIDs=[ids[i % len(ids)]], allocation_size=4)]),
                timeout=5),
        }
        for name, call in calls_by_name.items():
            samples = []
            for i in range(calls):
                started = time.perf_counter()
                call(i)
                samples.append(time.perf_counter() - started)
            print(f"{name + ', ' + where + ':':<58} {percentiles(samples)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--restarts", type=int, default=10)
    args = parser.parse_args()
    # The plugin logs each simulated kubelet restart as a warning; keep the report readable.
    logging.basicConfig(level=logging.ERROR)

    base = Path(tempfile.mkdtemp(prefix="dpbench", dir="/tmp"))
    try:
        sysfs = lay_sysfs(base / "sys")
        dev = lay_dev(base / "dev", sysfs)
        kubelet_dir = base / "k"
        kubelet_dir.mkdir()

        timings = []
        for _ in range(50):
            started = time.perf_counter()
            inventory = discover(sysfs)
            timings.append(time.perf_counter() - started)
        print(f"discovery (MI300X capture, {len(inventory.partitions)} partitions): {percentiles(timings)}")

        kubelet = Kubelet(kubelet_dir)
        kubelet.start()
        config = PluginConfig(sysfs_root=sysfs, dev_root=dev, kubelet_dir=kubelet_dir, node_labels=False)
        runner = PluginRunner(config)
        runner.start()
        assert kubelet.registered.wait(5), "plugin did not register"

        ids = [p.id for p in inventory.partitions]
        time_rpcs(config.socket_path, ids, args.calls, "in-process")

        delays = []
        for _ in range(args.restarts):
            recreated = kubelet.restart()
            assert kubelet.registered.wait(5), "no re-registration after kubelet restart"
            delays.append(kubelet.registered_at - recreated)
            time.sleep(0.3)
        print(f"re-register after kubelet restart:              {percentiles(delays)}")
        runner.shutdown()
        kubelet.stop()

        # RSS of the real process, as deployed (no metrics server, no labels).
        kubelet = Kubelet(kubelet_dir)
        kubelet.start()
        spawned = time.perf_counter()
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
                str(kubelet_dir),
                "--no-node-labels",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert kubelet.registered.wait(15), "subprocess did not register"
            print(f"serve process: start -> Register received:      {(kubelet.registered_at - spawned) * 1000:.1f} ms")
            time_rpcs(config.socket_path, ids, args.calls, "separate process")
            rss, peak = rss_kib(process.pid)
            print(f"serve process RSS: {rss / 1024:.1f} MiB (peak {peak / 1024:.1f} MiB)")
        finally:
            process.terminate()
            process.wait(10)
            kubelet.stop()
        print(f"(python {sys.version.split()[0]}, grpcio {grpc.__version__}, host load may inflate p99)")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
