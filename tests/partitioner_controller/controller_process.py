"""``aim-partitioner controller`` as a child process of the test control plane, with test-sized
timeouts (seconds, not minutes), and its /metrics."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from tests.controlplane.harness import ControlPlane, prometheus_samples
from tests.controlplane.processes import ManagedProcess, free_port

# Test-sized timings: a change starts as soon as it is planned, and every wait is seconds long.
FAST_FLAGS = ("--stable-seconds=0", "--cooldown-seconds=600", "--configmap-settle-seconds=0",
              "--resync-seconds=0.3", "--min-interval-seconds=0.1", "--drain-timeout-seconds=20",
              "--dcm-timeout-seconds=20", "--advertise-timeout-seconds=20", "--backoff-seconds=600",
              "--lease-duration-seconds=3", "--renew-deadline-seconds=2", "--retry-period-seconds=1",
              "--log-level=info")


@dataclass
class RunningController:
    process: ManagedProcess
    metrics_port: int

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics as ``name{label="v",...}`` (the harness's own parser)."""
        return prometheus_samples(httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5.0).text)

    def metric(self, name: str) -> float:
        try:
            return self.metrics().get(name, 0.0)
        except httpx.HTTPError:
            return -1.0

    def kill(self) -> None:
        """SIGKILL, as a node losing power or the OOM killer would: no cleanup runs."""
        if self.process.pid is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.stop()


def start_controller(plane: ControlPlane, name: str, *, namespace: str, configmap: str,
                     extra: Sequence[str] = (), kubeconfig: str | None = None,
                     timings: Sequence[str] = FAST_FLAGS) -> RunningController:
    """``timings``: the test-sized ones by default; ``()`` runs with the controller's own defaults."""
    port = free_port()
    argv = [sys.executable, "-m", "partitioner", "controller", f"--kubeconfig={kubeconfig or plane.kubeconfig}",
            f"--dcm-namespace={namespace}", f"--dcm-configmap={configmap}", f"--lease-namespace={namespace}",
            f"--lease-name=ctl-{name}", f"--metrics-port={port}", "--metrics-host=127.0.0.1", *timings, *extra]
    process = plane.start_process(f"controller-{name}", argv)
    return RunningController(process, port)


def stop_controllers(plane: ControlPlane, controllers: Sequence[RunningController]) -> None:
    """Stop every controller a test started, however the test ended: one left running acts on the
    next test's opted-in nodes (a leftover once aborted another test's drain)."""
    for running in controllers:
        plane.stop_process(running.process)
