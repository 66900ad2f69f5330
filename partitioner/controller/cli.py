"""``aim-partitioner controller``: its flags. The process itself (watches, leader election,
metrics server) is in ``app``, imported only when the command runs, so ``aim-partitioner advise``
does not load the kubernetes client."""

from __future__ import annotations

import argparse
import os
from typing import Any, Final

from partitioner import dcm
from partitioner.controller import keys, settings as defaults
from partitioner.controller.settings import RunMode
from partitioner.modes import Trust

# Namespace of the Lease when POD_NAMESPACE (downward API) is not set: the project's namespace.
DEFAULT_NAMESPACE: Final = "aim-gpu-sharing"
LEASE_NAME: Final = "aim-partitioner-controller"
# Port of /metrics: next to the extender's and the device plugin's (any free port works).
METRICS_PORT: Final = 9403


def add_parser(sub: Any) -> None:
    p = sub.add_parser("controller", help="reshape idle GPUs to the pending demand through AMD's DCM",
                       description="Watch pods left unschedulable for partition size and repartition opted-in"
                                   f" nodes (label {keys.OPT_IN_LABEL}={keys.OPT_IN_VALUE}) through AMD's Device Config"
                                   " Manager. Default --mode recommend changes nothing.")
    p.add_argument("--mode", choices=[m.value for m in RunMode], default=RunMode.RECOMMEND.value,
                   help="recommend (default): Events, metrics and a dry-run plan only; apply: repartition")
    p.add_argument("--allow-eviction", action="store_true",
                   help="also repartition nodes whose GPU pods can run elsewhere (Eviction API, PDBs respected)")
    p.add_argument("--max-in-flight", type=int, default=defaults.MAX_IN_FLIGHT, help="nodes repartitioned at once")
    p.add_argument("--cooldown-seconds", type=float, default=defaults.COOLDOWN_SECONDS)
    p.add_argument("--stable-seconds", type=float, default=defaults.STABLE_SECONDS,
                   help="a change starts once it has been planned this long in a row, or its pods have been"
                        " pending this long (and it was planned in two passes in a row)")
    p.add_argument("--drain-timeout-seconds", type=float, default=defaults.DRAIN_TIMEOUT_SECONDS)
    p.add_argument("--dcm-timeout-seconds", type=float, default=defaults.DCM_TIMEOUT_SECONDS)
    p.add_argument("--advertise-timeout-seconds", type=float, default=defaults.ADVERTISE_TIMEOUT_SECONDS)
    p.add_argument("--backoff-seconds", type=float, default=defaults.BACKOFF_SECONDS)
    p.add_argument("--configmap-settle-seconds", type=float, default=defaults.CONFIGMAP_SETTLE_SECONDS,
                   help="a DCM profile is used this long after it was written (written at start-up, ahead of"
                        " any change)")
    p.add_argument("--resync-seconds", type=float, default=defaults.RESYNC_SECONDS)
    p.add_argument("--min-interval-seconds", type=float, default=defaults.MIN_INTERVAL_SECONDS)
    p.add_argument("--trust", choices=[t.value for t in Trust], default=Trust.DRIVER.value)
    p.add_argument("--dcm-configmap", default=dcm.DEFAULT_CONFIGMAP_NAME,
                   help=f"ConfigMap of DCM profiles (default {dcm.DEFAULT_CONFIGMAP_NAME})")
    p.add_argument("--dcm-namespace", default=dcm.DEFAULT_NAMESPACE, help=f"its namespace ({dcm.DEFAULT_NAMESPACE})")
    p.add_argument("--dcm-configmap-existing", action="store_true",
                   help="use the profiles already in that ConfigMap; never write it")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, then ~/.kube/config)")
    p.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True,
                   help="hold a Lease before acting (default on; off for a single local run)")
    p.add_argument("--lease-name", default=LEASE_NAME)
    p.add_argument("--lease-namespace", default=os.environ.get("POD_NAMESPACE") or DEFAULT_NAMESPACE)
    p.add_argument("--lease-duration-seconds", type=int, default=defaults.LEASE_DURATION_SECONDS)
    p.add_argument("--renew-deadline-seconds", type=int, default=defaults.RENEW_DEADLINE_SECONDS)
    p.add_argument("--retry-period-seconds", type=int, default=defaults.RETRY_PERIOD_SECONDS)
    p.add_argument("--metrics-port", type=int, default=METRICS_PORT, help="0 turns /metrics off")
    p.add_argument("--metrics-host", default="0.0.0.0")  # noqa: S104 - in a pod, Prometheus scrapes the pod IP
    p.add_argument("--once", action="store_true", help="evaluate once, print the plan as JSON and exit")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")


def run(args: argparse.Namespace) -> int:
    from partitioner.controller import app  # the kubernetes client loads only for this command

    return app.run(args)


