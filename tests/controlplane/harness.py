"""A real Kubernetes control plane for tests: etcd, kube-apiserver (RBAC, per-run certificates),
kube-controller-manager and kube-scheduler on free loopback ports in a temporary directory, plus
extra processes a test starts (an ``aim-extender serve``, a second kube-scheduler).

API (see tests/controlplane/README.md): ``ControlPlane(binaries, workdir).start()``; ``kubeconfig``,
``api`` / ``core``; ``kubectl(*args)``; ``create_node``; ``start_extender`` / ``start_scheduler`` /
``start_process`` / ``stop_process``; ``stop_apiserver`` / ``start_apiserver``;
``create_namespace``; ``service_account_kubeconfig``; ``stop()`` (also at interpreter exit).
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml
from kubernetes import client, config as kube_config
from prometheus_client.parser import text_string_to_metric_families

from extender.scheduler_config import API_V1BETA3, ExtenderEndpoint, ExtenderTLS, second_scheduler_config
from tests.controlplane import nodes
from tests.controlplane.binaries import Binaries
from tests.controlplane.certs import CertificateAuthority, KeyPair, service_account_key
from tests.controlplane.processes import STOP_GRACE_SECONDS, ManagedProcess, ProcessError, free_port, wait_until

LOOPBACK = "127.0.0.1"
# Measured here (2 cores, shared/k8s/README.md): kube-apiserver answers /readyz ~4 s after launch,
# slower when other tests load the machine; 60 s only bounds a broken start.
START_TIMEOUT_SECONDS = 60.0
# kube-apiserver SIGTERM grace: with --shutdown-delay-duration=0 it still drains open watches for
# up to a minute; tests only need it gone, so SIGKILL follows quickly.
APISERVER_STOP_GRACE_SECONDS = 2.0
# kubectl calls are local and small; a minute only bounds a hang.
KUBECTL_TIMEOUT_SECONDS = 60.0
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"  # the value the shared README starts the API server with
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# Controllers that need a cloud or a kubelet are off; with nodelifecycle off nobody taints
# API-only nodes (shared/k8s/README.md).
CONTROLLERS = "*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service,-route"
# Where the logs of every process are copied when the control plane stops (unset: not kept).
KEEP_LOGS_ENV = "AIM_CONTROLPLANE_LOGS"
# Lifetime of a ServiceAccount token made for a test kubeconfig: longer than any session.
TOKEN_SECONDS = 3600


@contextmanager
def running_plane(binaries: Binaries, prefix: str, *, default_scheduler: bool = True) -> Iterator[ControlPlane]:
    """A ``ControlPlane`` in a fresh temporary directory (``prefix``), started, and stopped after the
    block however it ends (its directory removed)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as workdir:
        plane = ControlPlane(binaries, Path(workdir))
        try:
            plane.start(default_scheduler=default_scheduler)
            yield plane
        finally:
            plane.stop()
            keep = os.environ.get(KEEP_LOGS_ENV)
            if keep:  # the processes' logs outlive the temporary directory, for a failure's post-mortem
                shutil.copytree(plane.logs, Path(keep) / Path(workdir).name, dirs_exist_ok=True)


def prometheus_samples(text: str) -> dict[str, float]:
    """Prometheus text exposition as ``name{label="v",...}`` -> value (labels sorted)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


@dataclass
class RunningExtender:
    """An ``aim-extender serve`` child process."""

    url: str
    process: ManagedProcess
    verify: ssl.SSLContext | bool = False

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, verify=self.verify, timeout=5.0)

    def post(self, path: str, body: Any) -> httpx.Response:
        return httpx.post(self.url + path, json=body, verify=self.verify, timeout=10.0)

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics as ``name{label="v",...}`` -> value (labels sorted)."""
        return prometheus_samples(self.get("/metrics").text)

    def ready(self) -> bool:
        try:
            return self.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def endpoint(self, *, node_cache_capable: bool = True, tls: ExtenderTLS | None = None) -> ExtenderEndpoint:
        """Where a kube-scheduler on this machine reaches this extender: loopback, its port."""
        return ExtenderEndpoint(host=LOOPBACK, port=urlsplit(self.url).port or 0,
                                node_cache_capable=node_cache_capable, tls=tls)

    def scheduler_config(self, name: str, *, node_cache_capable: bool = True,
                         tls: ExtenderTLS | None = None) -> dict[str, Any]:
        """The second scheduler as shipped, calling this extender: v1beta3 (what this kube-scheduler
        build takes), ``name`` its profile's schedulerName, leader election off (one instance)."""
        return second_scheduler_config(API_V1BETA3, endpoint=self.endpoint(node_cache_capable=node_cache_capable,
                                                                           tls=tls),
                                       scheduler_name=name, leader_election=False)


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler, and extra processes."""

    def __init__(self, binaries: Binaries, workdir: Path) -> None:
        self.binaries = binaries
        self.workdir = workdir
        self.pki = workdir / "pki"
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.api_port = free_port()
        self.api_url = f"https://{LOOPBACK}:{self.api_port}"
        self.ca = CertificateAuthority(self.pki)
        self.kubeconfig = workdir / "admin.kubeconfig"
        self._processes: list[ManagedProcess] = []
        self._names = itertools.count(1)
        self._api: client.ApiClient | None = None
        self._etcd: ManagedProcess | None = None
        self._apiserver: ManagedProcess | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, *, default_scheduler: bool = True) -> ControlPlane:
        """Start everything (``default_scheduler=False``: no kube-scheduler for default-scheduler
        pods, as a benchmark wants); stopped again if any part fails to start."""
        atexit.register(self.stop)
        try:
            self._start_etcd()
            self._make_identities()
            self._apiserver = self._register(ManagedProcess("kube-apiserver", self._apiserver_argv(),
                                                            self.logs / "kube-apiserver.log"))
            self.start_apiserver()
            self._start_controller_manager()
            if default_scheduler:
                self.start_scheduler(self.scheduler_base_config(), name="kube-scheduler")
            wait_until(lambda: self.core.read_namespaced_service_account("default", "default"),
                       START_TIMEOUT_SECONDS, "kube-controller-manager to create ServiceAccount default/default")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process this control plane started, newest first; idempotent."""
        for process in reversed(self._processes):
            process.stop(APISERVER_STOP_GRACE_SECONDS if process is self._apiserver else STOP_GRACE_SECONDS)
        self._processes.clear()
        if self._api is not None:
            self._api.close()  # type: ignore[no-untyped-call]
            self._api = None

    def _register(self, process: ManagedProcess) -> ManagedProcess:
        self._processes.append(process)
        return process

    # --- etcd --------------------------------------------------------------------------------
    def _start_etcd(self) -> None:
        client_port, peer_port = free_port(), free_port()
        self.etcd_url = f"http://{LOOPBACK}:{client_port}"
        peer = f"http://{LOOPBACK}:{peer_port}"
        argv = [str(self.binaries.etcd), "--name=aim-test", f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}", f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=aim-test={peer}",
                # No fsync per write: the data is thrown away after the session, and fsync is
                # most of etcd's write latency on a shared disk.
                "--unsafe-no-fsync", "--log-level=warn"]
        self._etcd = self._register(ManagedProcess("etcd", argv, self.logs / "etcd.log"))
        self._etcd.start()

        def healthy() -> bool:
            self._etcd.check_alive()  # type: ignore[union-attr]
            return bool(httpx.get(self.etcd_url + "/health", timeout=2.0).json().get("health") == "true")

        wait_until(healthy, START_TIMEOUT_SECONDS, "etcd /health")

    # --- identities --------------------------------------------------------------------------
    def _make_identities(self) -> None:
        self.serving = self.ca.issue("apiserver", "kube-apiserver", server=True, ip_addresses=(LOOPBACK, "10.0.0.1"),
                                     dns_names=("localhost", "kubernetes", "kubernetes.default",
                                                "kubernetes.default.svc"))
        self.admin = self.ca.issue("admin", "aim-test-admin", organizations=("system:masters",), client=True)
        self.sa_private, self.sa_public = service_account_key(self.pki)
        self._write_kubeconfig(self.kubeconfig, user={"client-certificate": str(self.admin.cert),
                                                      "client-key": str(self.admin.key)})

    def _write_kubeconfig(self, path: Path, user: dict[str, str]) -> None:
        document = {
            "apiVersion": "v1", "kind": "Config", "current-context": "aim-test",
            "clusters": [{"name": "aim-test", "cluster": {"server": self.api_url,
                                                          "certificate-authority": str(self.ca.cert_path)}}],
            "users": [{"name": "user", "user": user}],
            "contexts": [{"name": "aim-test", "context": {"cluster": "aim-test", "user": "user"}}],
        }
        path.write_text(yaml.safe_dump(document))
        path.chmod(0o600)

    # --- kube-apiserver ----------------------------------------------------------------------
    def _apiserver_argv(self) -> list[str]:
        return [
            str(self.binaries.path("kube-apiserver")),
            f"--etcd-servers={self.etcd_url}",
            f"--bind-address={LOOPBACK}", f"--advertise-address={LOOPBACK}", f"--secure-port={self.api_port}",
            f"--tls-cert-file={self.serving.cert}", f"--tls-private-key-file={self.serving.key}",
            f"--client-ca-file={self.ca.cert_path}",
            f"--service-account-key-file={self.sa_public}",
            f"--service-account-signing-key-file={self.sa_private}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--authorization-mode=Node,RBAC",
            "--endpoint-reconciler-type=none",
            "--shutdown-delay-duration=0s",
            "--profiling=false",
        ]

    def start_apiserver(self) -> None:
        """Start kube-apiserver (same port, certificates and etcd every time) and wait for /readyz."""
        process = self._apiserver
        assert process is not None, "start() first"
        process.start()
        admin = self.ssl_context(client=self.admin)

        def ready() -> bool:
            process.check_alive()
            response = httpx.get(self.api_url + "/readyz", verify=admin, timeout=2.0)
            return response.status_code == 200

        wait_until(ready, START_TIMEOUT_SECONDS, "kube-apiserver /readyz")

    def ready(self) -> bool:
        """kube-apiserver answers /readyz with 200 now."""
        try:
            response = httpx.get(self.api_url + "/readyz", verify=self.ssl_context(client=self.admin), timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver (SIGTERM, SIGKILL after a short grace); etcd keeps the state."""
        assert self._apiserver is not None, "start() first"
        self._apiserver.stop(APISERVER_STOP_GRACE_SECONDS)

    # --- controller manager and schedulers ---------------------------------------------------
    def _start_controller_manager(self) -> None:
        argv = [str(self.binaries.path("kube-controller-manager")), f"--kubeconfig={self.kubeconfig}",
                f"--bind-address={LOOPBACK}", f"--secure-port={free_port()}", "--leader-elect=false",
                f"--service-account-private-key-file={self.sa_private}", f"--root-ca-file={self.ca.cert_path}",
                "--use-service-account-credentials=false", f"--controllers={CONTROLLERS}"]
        self.start_process("kube-controller-manager", argv)

    def scheduler_base_config(self) -> dict[str, Any]:
        """The default scheduler's configuration (v1beta3: what this kube-scheduler build takes)."""
        return {"apiVersion": "kubescheduler.config.k8s.io/v1beta3", "kind": "KubeSchedulerConfiguration",
                "clientConnection": {"kubeconfig": str(self.kubeconfig)},
                "leaderElection": {"leaderElect": False},
                "profiles": [{"schedulerName": "default-scheduler"}]}

    def start_scheduler(self, configuration: Mapping[str, Any], name: str | None = None,
                        extra_args: Sequence[str] = ()) -> ManagedProcess:
        """Run a kube-scheduler with ``configuration`` (clientConnection and leader election are
        filled in when absent) and ``extra_args``; returns once its /healthz answers."""
        config = dict(configuration)
        config.setdefault("clientConnection", {"kubeconfig": str(self.kubeconfig)})
        config.setdefault("leaderElection", {"leaderElect": False})
        label = name or f"kube-scheduler-{next(self._names)}"
        path = self.workdir / f"{label}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        port = free_port()
        process = self.start_process(label, [str(self.binaries.path("kube-scheduler")), f"--config={path}",
                                             f"--secure-port={port}", f"--bind-address={LOOPBACK}",
                                             # /metrics readable without a token (scheduler_metrics)
                                             "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
                                             *extra_args])

        def healthy() -> bool:
            process.check_alive()
            return httpx.get(f"https://{LOOPBACK}:{port}/healthz", verify=False, timeout=2.0).text == "ok"

        wait_until(healthy, START_TIMEOUT_SECONDS, f"{label} /healthz")
        return process

    @staticmethod
    def scheduler_metrics(process: ManagedProcess) -> dict[str, float]:
        """/metrics of a kube-scheduler started by ``start_scheduler``, as ``name{labels}`` -> value
        (e.g. ``scheduler_scheduler_cache_size{type="nodes"}``, refreshed by it every second)."""
        return prometheus_samples(httpx.get(f"{ControlPlane.scheduler_url(process)}/metrics", verify=False,
                                            timeout=5.0).text)

    @staticmethod
    def scheduler_url(process: ManagedProcess) -> str:
        """The HTTPS base URL of a kube-scheduler started by ``start_scheduler`` (its --secure-port)."""
        port = next(a.split("=", 1)[1] for a in process.argv if a.startswith("--secure-port="))
        return f"https://{LOOPBACK}:{port}"

    def wait_for_scheduler_cache(self, process: ManagedProcess, *, nodes: int, pods: int = 0,
                                 timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Wait until the kube-scheduler ``process`` caches at least ``nodes`` nodes and ``pods``
        bound pods (its cache-size gauge, refreshed every second): best fit judged among fewer nodes,
        or without the bound pods' usage, would be another decision. At least: a node deleted while
        pods were bound to it stays in the cache until they are gone."""
        def cached() -> bool:
            samples = self.scheduler_metrics(process)
            return (samples.get('scheduler_scheduler_cache_size{type="nodes"}', 0) >= nodes
                    and samples.get('scheduler_scheduler_cache_size{type="pods"}', 0) >= pods)

        wait_until(cached, timeout, f"{process.name} to cache {nodes} nodes and {pods} bound pods")

    # --- extra processes ---------------------------------------------------------------------
    def start_process(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> ManagedProcess:
        """Start ``argv`` with its output in logs/<name>.log; stopped with the control plane."""
        process = self._register(ManagedProcess(name, argv, self.logs / f"{name}.log", env))
        process.start()
        return process

    def stop_process(self, process: ManagedProcess) -> None:
        process.stop()
        if process in self._processes:
            self._processes.remove(process)

    def start_extender(self, *, node_cache: str = "watch", policy: str = "best-fit",
                       tls: KeyPair | None = None, extra_args: Sequence[str] = (),
                       kubeconfig: Path | None = None, wait_ready: bool = True) -> RunningExtender:
        """``aim-extender serve`` on a free port (HTTPS with ``tls``); waits for /readyz."""
        port = free_port()
        argv = [*extender_command(), "serve", f"--host={LOOPBACK}", f"--port={port}",
                f"--node-cache={node_cache}", f"--policy={policy}", "--log-level=info"]
        if node_cache == "watch":
            argv.append(f"--kubeconfig={kubeconfig or self.kubeconfig}")
        if tls is not None:
            argv += [f"--tls-cert-file={tls.cert}", f"--tls-key-file={tls.key}"]
        argv += list(extra_args)
        process = self.start_process(f"aim-extender-{next(self._names)}", argv)
        scheme = "https" if tls else "http"
        verify: ssl.SSLContext | bool = False
        if tls:
            # Trust the run's CA; the certificate may name the Service (as kube-scheduler is told
            # with serverName) rather than 127.0.0.1, so the harness does not check the host name.
            verify = self.ssl_context()
            verify.check_hostname = False
        extender = RunningExtender(f"{scheme}://{LOOPBACK}:{port}", process, verify=verify)
        if wait_ready:
            def ready() -> bool:
                process.check_alive()
                return extender.ready()

            wait_until(ready, START_TIMEOUT_SECONDS, f"{process.name} /readyz")
        return extender

    # --- clients -----------------------------------------------------------------------------
    def ssl_context(self, client: KeyPair | None = None) -> ssl.SSLContext:
        """Trusts this run's CA; presents ``client`` (e.g. ``self.admin``) when given."""
        context = ssl.create_default_context(cafile=str(self.ca.cert_path))
        if client is not None:
            context.load_cert_chain(str(client.cert), str(client.key))
        return context

    @property
    def api(self) -> client.ApiClient:
        """The admin ApiClient (system:masters)."""
        if self._api is None:
            self._api = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(self.kubeconfig))
        return self._api

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def kubectl(self, *args: str, kubeconfig: Path | None = None, stdin: str | None = None,
                check: bool = True, timeout: float = KUBECTL_TIMEOUT_SECONDS) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this control plane (admin unless ``kubeconfig``); raises
        ProcessError with stderr when ``check`` and it fails."""
        argv = [str(self.binaries.path("kubectl")), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout,
                                check=False)
        if check and result.returncode != 0:
            raise ProcessError(f"kubectl {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
        return result

    # --- objects -----------------------------------------------------------------------------
    def create_node(self, name: str, *, partitions: int | None, labels: Mapping[str, str | None] | None = None,
                    extra_resources: Mapping[str, str] | None = None) -> None:
        """An API-only node, Ready and untainted (tests/controlplane/nodes.py)."""
        nodes.create_node(self.core, name, partitions=partitions, labels=labels, extra_resources=extra_resources)

    def create_namespace(self, prefix: str = "t") -> str:
        """A new namespace with its ``default`` ServiceAccount in place (so pods are admitted)."""
        name = f"{prefix}-{next(self._names)}-{int(time.time() * 1000) % 100000}"
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        wait_until(lambda: self.core.read_namespaced_service_account("default", name), START_TIMEOUT_SECONDS,
                   f"ServiceAccount {name}/default")
        return name

    def delete_namespace(self, name: str) -> None:
        """Force-delete its pods (no kubelet would confirm a graceful end), then delete the
        namespace without waiting (the namespace controller finishes it in the background)."""
        try:
            self.core.delete_collection_namespaced_pod(name, grace_period_seconds=0)
            self.core.delete_namespace(name)
        except client.ApiException as error:
            if error.status != 404:
                raise

    def service_account_kubeconfig(self, namespace: str, name: str, *, create: bool = False) -> Path:
        """A kubeconfig that authenticates as ServiceAccount ``namespace/name`` with a bound token
        (TokenRequest API); ``create`` makes the ServiceAccount first if it is missing."""
        if create:
            try:
                self.core.create_namespaced_service_account(
                    namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name)))
            except client.ApiException as error:
                if error.status != 409:
                    raise
        spec = client.V1TokenRequestSpec(audiences=[], expiration_seconds=TOKEN_SECONDS)
        request = self.core.create_namespaced_service_account_token(
            name, namespace, client.AuthenticationV1TokenRequest(spec=spec))
        token = request.status.token if request.status else None
        if not token:
            raise ProcessError(f"TokenRequest for ServiceAccount {namespace}/{name} returned no token")
        path = self.workdir / f"sa-{namespace}-{name}.kubeconfig"
        self._write_kubeconfig(path, user={"token": token})
        return path


def extender_command() -> list[str]:
    """``aim-extender`` from this interpreter's environment (``python -m extender`` if the console
    script is not installed)."""
    script = Path(sys.executable).parent / "aim-extender"
    return [str(script)] if script.exists() else [sys.executable, "-m", "extender"]
