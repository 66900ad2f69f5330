"""``python -m deviceplugin.dra --node-name NODE [--sysfs-root /sys] [--interval 30] [--once]``:
publish this node's partitions as ResourceSlices (docs/dra.md). NODE defaults to $NODE_NAME."""

from __future__ import annotations

import argparse
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
from deviceplugin.dra.loop import publish_once, run
from deviceplugin.dra.publish import SlicePublisher, SlicePublishError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deviceplugin.dra",
                                     description="Publish this node's GPU partitions as DRA ResourceSlices.")
    parser.add_argument("--node-name", default=os.environ.get(NODE_NAME_ENV),
                        help=f"this node (default: ${NODE_NAME_ENV})")
    parser.add_argument("--sysfs-root", type=Path, default=Path("/sys"))
    parser.add_argument("--interval", type=_positive_float, default=DEFAULT_DISCOVERY_INTERVAL_S,
                        help="seconds between discoveries (default %(default)s)")
    parser.add_argument("--once", action="store_true", help="publish once and exit (1 when refused)")
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
    run(publisher, args.sysfs_root, args.interval, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
