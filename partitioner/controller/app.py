"""The controller process: configuration, watches, leader election, metrics server, signals."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Final

from kubernetes import client
from prometheus_client import start_http_server

from kube.client import load_api_client
from partitioner.controller.cache import Cache
from partitioner.controller.kube import Kube
from partitioner.controller.leader import LeaseSettings, release, run_elected
from partitioner.controller.loop import Controller
from partitioner.controller.metrics import Metrics
from partitioner.controller.profiles import DcmConfig
from partitioner.controller.settings import RunMode, Settings
from partitioner.controller.watch import Watcher, short
from partitioner.modes import Trust

logger = logging.getLogger("partitioner.controller")

# On SIGTERM the Lease is released after the current pass ends; a pass makes a few API calls of
# at most 30 s each (kube.TIMEOUT), normally milliseconds. Longer: the Lease simply expires.
RELEASE_WAIT_SECONDS: Final = 10.0
# --once waits this long for the first node and pod lists.
ONCE_WAIT_SECONDS: Final = 30.0


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        mode=RunMode(args.mode), allow_eviction=args.allow_eviction, max_in_flight=args.max_in_flight,
        cooldown_seconds=args.cooldown_seconds, stable_seconds=args.stable_seconds,
        drain_timeout_seconds=args.drain_timeout_seconds, dcm_timeout_seconds=args.dcm_timeout_seconds,
        advertise_timeout_seconds=args.advertise_timeout_seconds, backoff_seconds=args.backoff_seconds,
        configmap_settle_seconds=args.configmap_settle_seconds, trust=Trust(args.trust),
    )


def _api_client(kubeconfig: str | None) -> client.ApiClient:
    """Load the configuration as the process default (the Lease lock uses the default client)."""
    return load_api_client(kubeconfig)  # the kubeconfig file checked first: a FIFO would block for good


def run(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except ValueError as error:
        print(f"aim-partitioner controller: error: {error}", file=sys.stderr)
        return 2
    if args.once and settings.mode is RunMode.APPLY:
        print("aim-partitioner controller: error: --once only plans (--mode recommend): without the Lease a"
              " one-off apply could race the running controller", file=sys.stderr)
        return 2
    lease = LeaseSettings(args.lease_name, args.lease_namespace, args.lease_duration_seconds,
                          args.renew_deadline_seconds, args.retry_period_seconds)
    if args.leader_elect and not args.once and (problem := lease.problem()):
        print(f"aim-partitioner controller: error: {problem}", file=sys.stderr)
        return 2
    if not 0 <= args.metrics_port <= 65535:
        print(f"aim-partitioner controller: error: --metrics-port={args.metrics_port}: must be 0..65535",
              file=sys.stderr)
        return 2
    for name in ("resync_seconds", "min_interval_seconds"):
        if not 0 < getattr(args, name) <= 3600:
            print(f"aim-partitioner controller: error: --{name.replace('_', '-')} must be in (0, 3600]",
                  file=sys.stderr)
            return 2
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        api = _api_client(args.kubeconfig)
    except Exception as error:  # noqa: BLE001 - a bad kubeconfig is a usage error, not a traceback
        print(f"aim-partitioner controller: error: cannot load the Kubernetes configuration: {short(error)}",
              file=sys.stderr)
        return 2
    cache = Cache()
    watcher = Watcher(client.CoreV1Api(api), cache)
    metrics = Metrics()
    controller = Controller(Kube(api), cache.snapshot, lambda: cache.live, settings, metrics,
                            DcmConfig(args.dcm_namespace, args.dcm_configmap, args.dcm_configmap_existing))
    watcher.start()
    if args.once:
        code = _once(controller, cache)
        watcher.stop()
        # The watch threads may sit in a TLS read; letting the interpreter finalize around them
        # aborted the process once (SIGABRT after the plan was printed). Nothing is left to clean up.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_host, registry=metrics.registry)
        logger.info("metrics on http://%s:%d/metrics", args.metrics_host, args.metrics_port)
    stop = threading.Event()
    lost = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("%s received; stopping after the current pass", signal.Signals(signum).name)
        stop.set()
        cache.changed.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    loop_done = threading.Event()

    def lead() -> None:
        logger.info("leading: this replica now acts on the cluster")
        try:
            controller.run(stop, cache.changed, args.resync_seconds, args.min_interval_seconds)
        finally:
            loop_done.set()

    def on_lost() -> None:
        logger.error("lost the Lease %s/%s; stopping so that this replica restarts as a follower",
                     lease.namespace, lease.name)
        lost.set()
        stop.set()
        cache.changed.set()

    campaign = run_elected(lease, lead, on_lost) if args.leader_elect else None
    if campaign is None:
        threading.Thread(target=lead, name="controller", daemon=True).start()
    stop.wait()
    watcher.stop()
    # Release the Lease only once the current pass has finished its API calls (each is bounded).
    if campaign is not None and campaign.leading.is_set() and not lost.is_set() \
            and loop_done.wait(RELEASE_WAIT_SECONDS):
        release(lease, campaign)
    return 1 if lost.is_set() else 0


def _once(controller: Controller, cache: Cache) -> int:
    deadline = time.monotonic() + ONCE_WAIT_SECONDS
    while not cache.live:
        if time.monotonic() > deadline:
            print("aim-partitioner controller: error: no node and pod lists from the API server within"
                  f" {ONCE_WAIT_SECONDS:.0f} s", file=sys.stderr)
            return 1
        cache.changed.wait(0.5)
    plan = controller.tick()
    sys.stdout.write(json.dumps(plan.as_json() if plan else {}, indent=2) + "\n")
    return 0
