"""Helpers of the chart tests: Helm itself through helm-sdkpy (Helm's Go library in a shared
object), releases installed into the real control plane (tests/controlplane), and the stand-in
for the kubelet that would run the chart's post-install hook Job.

helm-sdkpy has no `helm template`: its ``Install(..., wait=False)`` against the control plane is
how the chart is rendered, with ``.Capabilities.KubeVersion`` taken from the real API server
(v1.25.0-mykubernetes) and every object accepted by it.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.controlplane.harness import ControlPlane, extender_command

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "aim-gpu-sharing"
DATA = Path(__file__).resolve().parent / "data"
INSTALL_HINT = "pip install --ignore-requires-python helm-sdkpy cffi (README test command)"
# Whole install, hooks included: the hook Job is run by HookRunner within a few seconds.
INSTALL_TIMEOUT_SECONDS = 90


def helm() -> ModuleType:
    """helm_sdkpy, or skip the test saying how to install it."""
    try:
        import helm_sdkpy

        helm_sdkpy.get_version()  # loads the shared library
    except Exception as error:  # noqa: BLE001 - any load failure (missing, wrong platform) means skip
        pytest.skip(f"helm-sdkpy cannot load ({type(error).__name__}: {error}); {INSTALL_HINT}")
    return helm_sdkpy


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    objects: list[dict[str, Any]]  # the rendered manifest, hooks excluded (Helm keeps them apart)
    notes: str

    def find(self, kind: str, name: str | None = None) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        hits = self.find(kind, name)
        assert len(hits) == 1, f"{kind}/{name}: {len(hits)} rendered in release {self.name}"
        return hits[0]


def configuration(plane: ControlPlane, namespace: str) -> Any:
    return helm().Configuration(namespace=namespace, kubeconfig=str(plane.kubeconfig))


def install(plane: ControlPlane, release: str, namespace: str, values: Mapping[str, Any] | None = None,
            *, chart: Path = CHART) -> Release:
    """``helm install --create-namespace`` without waiting for readiness (no kubelet here)."""
    h = helm()
    result = asyncio.run(h.Install(configuration(plane, namespace)).run(
        release, str(chart), values=dict(values or {}), create_namespace=True, wait=False,
        timeout=INSTALL_TIMEOUT_SECONDS))
    objects = [d for d in yaml.safe_load_all(result["manifest"]) if d]
    return Release(release, namespace, objects, result["info"].get("notes", ""))


def uninstall(plane: ControlPlane, release: str, namespace: str) -> None:
    """``helm uninstall``, then delete the release's namespace (each test release has its own)."""
    h = helm()
    asyncio.run(h.Uninstall(configuration(plane, namespace)).run(release, wait=False, timeout=60))
    plane.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found", check=False)


def install_error(plane: ControlPlane, release: str, namespace: str, values: Mapping[str, Any]) -> str:
    """The message of a failing install (the test fails if it succeeds)."""
    h = helm()
    try:
        install(plane, release, namespace, values)
    except h.HelmError as error:
        return str(error)
    uninstall(plane, release, namespace)
    raise AssertionError(f"install with {values} succeeded; expected a failure")


def apply_standin_crds(plane: ControlPlane) -> None:
    """cert-manager's and the Prometheus Operator's kinds the chart can create, with open schemas
    (tests/helm/data/standin-crds.yaml), so the API server accepts them."""
    plane.kubectl("apply", "--server-side", "-f", str(DATA / "standin-crds.yaml"))
    for crd in ("certificates.cert-manager.io", "issuers.cert-manager.io", "servicemonitors.monitoring.coreos.com",
                "podmonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"):
        plane.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=30s")


class HookRunner:
    """What a kubelet would do for the chart's post-install hook Job: run its container's
    arguments (``aim-extender certs ...``, this repository's code) as the Job's ServiceAccount,
    then mark the Job Complete (or Failed) so Helm's hook wait ends. Runs in a thread during
    ``install``; ``ran`` lists the argument vectors it ran and ``errors`` what went wrong."""

    def __init__(self, plane: ControlPlane, namespace: str, job: str) -> None:
        self.plane, self.namespace, self.job = plane, namespace, job
        self.ran: list[list[str]] = []
        self.errors: list[str] = []
        self.jobs: list[dict[str, Any]] = []  # the hook Jobs as the API server stored them
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"hook-{job}", daemon=True)

    def _run(self) -> None:
        from kubernetes import client

        batch = client.BatchV1Api(self.plane.api)
        while not self._stop.is_set():
            try:
                job = batch.read_namespaced_job(self.job, self.namespace)
            except client.ApiException:
                self._stop.wait(0.1)
                continue
            self._execute(batch, job)
            return

    def _execute(self, batch: Any, job: Any) -> None:
        self.jobs.append(self.plane.api.sanitize_for_serialization(job))
        spec = job.spec.template.spec
        container = spec.containers[0]
        kubeconfig = self.plane.service_account_kubeconfig(self.namespace, spec.service_account_name)
        argv = [*extender_command(), *container.args, f"--kubeconfig={kubeconfig}"]
        self.ran.append(argv)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        succeeded = done.returncode == 0
        if not succeeded:
            self.errors.append(f"{' '.join(container.args)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        now = job.metadata.creation_timestamp.isoformat()
        condition = {"type": "Complete" if succeeded else "Failed", "status": "True",
                     "lastProbeTime": now, "lastTransitionTime": now}
        status: dict[str, Any] = {"conditions": [condition], "startTime": now}
        if succeeded:
            status |= {"completionTime": now, "succeeded": 1}
        else:
            status["failed"] = 1
        batch.patch_namespaced_job_status(self.job, self.namespace, {"status": status})

    @contextmanager
    def running(self) -> Iterator[HookRunner]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=70)
