"""``python -m deviceplugin.dra --node-name NODE [--sysfs-root /sys] [--interval 30] [--once]
[--kubelet-plugin [--cdi-dir D --plugin-dir D --registry-dir D --dev-root /dev]]``: publish this node's partitions
as ResourceSlices and, with ``--kubelet-plugin``, serve the kubelet's DRA gRPC API and keep the CDI
spec of the partitions (docs/dra.md). NODE defaults to $NODE_NAME."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from deviceplugin.cli import NODE_NAME_ENV, _positive_float
from deviceplugin.config import DEFAULT_DISCOVERY_INTERVAL_S
from deviceplugin.dra.cdi import DEFAULT_CDI_DIR
from deviceplugin.dra.kubelet_plugin import (
    DEFAULT_PLUGIN_DIR,
    DEFAULT_REGISTRY_DIR,
    DraPluginServicer,
    HealthServicer,
    api_claim_reader,
    serve,
)
from deviceplugin.dra.loop import publish_once, run
from deviceplugin.dra.node_devices import NodeDevices
from deviceplugin.dra.publish import SlicePublisher, SlicePublishError
from deviceplugin.health import HealthVerdict, check_health
from deviceplugin.inventory import Inventory

# Seconds the gRPC server lets a kubelet call finish at shutdown.
STOP_GRACE_S = 2.0
# The kubelet turns a device's health Unknown after this many discovery intervals without news:
# one missed discovery (a slow sysfs, an API server away) is not an outage.
HEALTH_TIMEOUT_INTERVALS = 3


def check_inventory(inventory: Inventory, *, dev_root: Path, sysfs_root: Path) -> dict[str, HealthVerdict]:
    """The device plugin's health verdicts (KFD node and render node present) for the inventory."""
    return dict(check_health(inventory.partitions, dev_root=dev_root, sysfs_root=sysfs_root))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deviceplugin.dra",
                                     description="Publish this node's GPU partitions as DRA ResourceSlices.")
    parser.add_argument("--node-name", default=os.environ.get(NODE_NAME_ENV),
                        help=f"this node (default: ${NODE_NAME_ENV})")
    parser.add_argument("--sysfs-root", type=Path, default=Path("/sys"))
    parser.add_argument("--interval", type=_positive_float, default=DEFAULT_DISCOVERY_INTERVAL_S,
                        help="seconds between discoveries (default %(default)s)")
    parser.add_argument("--once", action="store_true", help="publish once and exit (1 when refused)")
    parser.add_argument("--kubelet-plugin", action="store_true",
                        help="also serve the kubelet's DRA plugin API and write the CDI spec")
    parser.add_argument("--cdi-dir", type=Path, default=DEFAULT_CDI_DIR)
    parser.add_argument("--plugin-dir", type=Path, default=DEFAULT_PLUGIN_DIR)
    parser.add_argument("--registry-dir", type=Path, default=DEFAULT_REGISTRY_DIR)
    parser.add_argument("--dev-root", type=Path, default=Path("/dev"),
                        help="device directory whose render nodes are health-checked (default /dev)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.node_name:
        parser.error(f"--node-name or ${NODE_NAME_ENV} is required")
    publisher = SlicePublisher(args.node_name)
    if args.once:
        try:
            result = publish_once(publisher, args.sysfs_root)
        except SlicePublishError as exc:
            logging.getLogger("deviceplugin.dra").error("%s", exc)
            return 1
        print(f"{result.devices} device(s), pool generation {result.generation},"
              f" {'written' if result.changed else 'unchanged'}")
        return 0
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if not args.kubelet_plugin:
        run(publisher, args.sysfs_root, args.interval, stop)
        return 0
    devices = NodeDevices(args.cdi_dir, functools.partial(check_inventory, dev_root=args.dev_root,
                                                          sysfs_root=args.sysfs_root))
    try:
        reader = api_claim_reader(publisher.api_client())
    except SlicePublishError as exc:
        logging.getLogger("deviceplugin.dra").error("%s", exc)
        return 1
    servicer = DraPluginServicer(args.node_name, reader, devices)
    health = HealthServicer(args.node_name, devices, int(args.interval * HEALTH_TIMEOUT_INTERVALS) + 1)
    server, _ = serve(servicer, args.plugin_dir, args.registry_dir, health)
    try:
        run(publisher, args.sysfs_root, args.interval, stop, devices.update)
    finally:
        server.stop(STOP_GRACE_S).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
