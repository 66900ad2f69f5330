"""The real Prometheus and promtool (Debian package ``prometheus``: /usr/bin/prometheus and
/usr/bin/promtool, 2.42) for the chart's alert rules and dashboards: found in AIM_PROMETHEUS_BIN
(a directory) or on PATH, else the test is skipped saying how to install them (.ci/run installs
the package, and with AIM_REQUIRE_INTEGRATION=1 a skip is a failure). ``running`` starts a
short-lived server on the loopback with its TSDB in a temporary directory, scraping the given
targets every second, and always stops it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.controlplane.processes import ManagedProcess, free_port, wait_until

BIN_ENV = "AIM_PROMETHEUS_BIN"
INSTALL_HINT = f"apt-get install prometheus (Debian/Ubuntu), or {BIN_ENV}=a directory with prometheus and promtool"
SCRAPE_INTERVAL = "1s"  # samples every second, so rate() over a few seconds of scraping has two points
READY_TIMEOUT_SECONDS = 20.0  # an empty TSDB opens in well under a second; WAL replay is nil


def binary(name: str) -> Path:
    """``prometheus`` or ``promtool``, or skip the test with how to install it."""
    directory = os.environ.get(BIN_ENV)
    found = shutil.which(name, path=directory) if directory else shutil.which(name)
    if found is None:
        where = f"{BIN_ENV}={directory}" if directory else "PATH"
        pytest.skip(f"{name} not found in {where}; {INSTALL_HINT}")
    return Path(found)


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary("promtool")), *map(str, args)], capture_output=True, text=True,
                          timeout=60, cwd=cwd, check=False)


@dataclass(frozen=True)
class Target:
    job: str
    address: str  # host:port
    path: str = "/metrics"


@dataclass(frozen=True)
class Prometheus:
    url: str
    client: httpx.Client  # one client: httpx.get() builds an SSL context per call (~0.2 s on a loaded machine)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result of an instant query (/api/v1/query) at the server's now."""
        return self._get("/api/v1/query", {"query": expr})["result"]  # type: ignore[no-any-return]

    def label_values(self, label: str, selector: str) -> list[str]:
        return self._get(f"/api/v1/label/{label}/values", {"match[]": selector})  # type: ignore[no-any-return]

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        response = self.client.get(f"{self.url}{path}", params=params)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", f"{path} {params}: {body}"
        return body["data"]


@contextmanager
def running(targets: list[Target], directory: Path) -> Iterator[Prometheus]:
    """Prometheus scraping ``targets`` (one job each) every second, listening on 127.0.0.1; stopped
    (SIGTERM, SIGKILL after a grace period; it also dies with the test process) on the way out."""
    config = {"global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_INTERVAL,
                         "evaluation_interval": SCRAPE_INTERVAL},
              "scrape_configs": [{"job_name": t.job, "metrics_path": t.path,
                                  "static_configs": [{"targets": [t.address]}]} for t in targets]}
    config_file = directory / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    server = Prometheus(f"http://127.0.0.1:{port}", httpx.Client(timeout=10))
    process = ManagedProcess("prometheus", [
        str(binary("prometheus")), f"--config.file={config_file}", f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], directory / "prometheus.log")
    process.start()
    try:
        def ready() -> bool:
            process.check_alive()
            return server.client.get(f"{server.url}/-/ready", timeout=1).status_code == 200

        wait_until(ready, READY_TIMEOUT_SECONDS, "prometheus /-/ready")
        yield server
    finally:
        process.stop()
        server.client.close()
