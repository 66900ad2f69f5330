"""Command line: ``aim-deviceplugin discover`` and ``aim-deviceplugin serve``.

The only module that reads the environment (NODE_NAME) or installs signal handlers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from deviceplugin.config import (
    DEFAULT_DISCOVERY_INTERVAL_S,
    DEFAULT_HEALTH_INTERVAL_S,
    DEFAULT_KUBELET_DIR,
    DEFAULT_RESOURCE_NAME,
    PluginConfig,
)
from deviceplugin.inventory import Inventory
from sizing.bounded import BoundedValueError, parse_int, shown

logger = logging.getLogger("deviceplugin")

NODE_NAME_ENV = "NODE_NAME"


# Longest interval a flag accepts: one day. A longer health or discovery interval means the
# plugin never notices a fault; NaN and infinity are refused outright.
MAX_INTERVAL_S = 86_400.0


def _positive_float(text: str) -> float:
    try:
        value = float(text) if text.isascii() else float("nan")
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a number of seconds") from None
    if not 0 < value <= MAX_INTERVAL_S:  # also false for NaN
        raise argparse.ArgumentTypeError(f"{shown(text)} must be > 0 and <= {MAX_INTERVAL_S:.0f} seconds")
    return value


def _port(text: str) -> int:
    try:
        return parse_int("--metrics-port", text, minimum=0, maximum=65535)
    except BoundedValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (a TCP port; 0 = off)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aim-deviceplugin",
        description="Kubelet device plugin advertising AMD Instinct GPU compute partitions.",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{discover,serve}")

    def add_sysfs(p: argparse.ArgumentParser) -> None:
        p.add_argument("--sysfs-root", type=Path, default=Path("/sys"), help="sysfs mount (default /sys)")

    discover = sub.add_parser("discover", help="print the partitions found in sysfs and exit")
    add_sysfs(discover)
    discover.add_argument("--format", choices=["table", "json"], default="table")

    serve = sub.add_parser("serve", help="run the device plugin")
    add_sysfs(serve)
    serve.add_argument(
        "--dev-root", type=Path, default=Path("/dev"), help="device directory to health-check (default /dev)"
    )
    serve.add_argument(
        "--kubelet-dir",
        type=Path,
        default=DEFAULT_KUBELET_DIR,
        help=f"kubelet device-plugin directory with kubelet.sock (default {DEFAULT_KUBELET_DIR})",
    )
    serve.add_argument(
        "--resource-name", default=DEFAULT_RESOURCE_NAME, help=f"default {DEFAULT_RESOURCE_NAME}"
    )
    serve.add_argument(
        "--node-name",
        default=os.environ.get(NODE_NAME_ENV) or None,
        help=f"node to label (default: ${NODE_NAME_ENV})",
    )
    serve.add_argument("--no-node-labels", action="store_true", help="do not patch node labels")
    serve.add_argument("--metrics-port", type=_port, default=0, help="Prometheus port (default 0 = off)")
    serve.add_argument(
        "--health-interval",
        type=_positive_float,
        default=DEFAULT_HEALTH_INTERVAL_S,
        help=f"seconds between health checks (default {DEFAULT_HEALTH_INTERVAL_S})",
    )
    serve.add_argument(
        "--discovery-interval",
        type=_positive_float,
        default=DEFAULT_DISCOVERY_INTERVAL_S,
        help=f"seconds between re-discoveries; SIGHUP re-discovers now (default {DEFAULT_DISCOVERY_INTERVAL_S})",
    )
    return parser


def _mib(value: int | None) -> str:
    return "?" if value is None else str(value // 2**20)


def format_table(inventory: Inventory) -> str:
    header = ("ID", "GPU", "IDX", "RENDER", "MEM_MIB", "CUS", "NUMA", "COMPUTE", "MEMORY", "PRODUCT")
    rows = [header]
    for p in inventory.partitions:
        rows.append(
            (
                p.id,
                p.gpu,
                str(p.index),
                f"renderD{p.render_minor}",
                _mib(p.memory_bytes) + ("*" if p.memory_source == "geometry" else ""),
                str(p.compute_units),
                "-" if p.numa_node is None else str(p.numa_node),
                (p.compute_mode or "-") + ("*" if p.compute_mode_source == "derived" else ""),
                (p.memory_mode or "-") + ("*" if p.memory_mode_source == "geometry" else ""),
                p.product,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.append(
        f"{len(inventory.partitions)} partition(s) on {len(inventory.gpus)} GPU(s); * = derived, not read"
    )
    lines.extend(f"note: {n}" for n in inventory.notes)
    lines.extend(f"problem: {p}" for p in inventory.problems)
    return "\n".join(lines)


def run_discover(args: argparse.Namespace) -> int:
    from deviceplugin.discovery import discover

    inventory = discover(args.sysfs_root)  # a bare KFD capture is read in place (discovery.kfd_topology_dir)
    if args.format == "json":
        for note in inventory.notes:
            logger.info("discovery: %s", note)
        for problem in inventory.problems:
            logger.warning("discovery: %s", problem)
        json.dump([p.to_dict() for p in inventory.partitions], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_table(inventory))
    return 0


def run_serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from deviceplugin.runner import PluginRunner

    config = PluginConfig(
        sysfs_root=args.sysfs_root,
        dev_root=args.dev_root,
        kubelet_dir=args.kubelet_dir,
        resource_name=args.resource_name,
        node_name=args.node_name,
        node_labels=not args.no_node_labels,
        metrics_port=args.metrics_port,
        health_interval_s=args.health_interval,
        discovery_interval_s=args.discovery_interval,
    )
    try:
        config.validate()
    except ValueError as exc:
        parser.error(str(exc))  # exits 2 with usage
    logger.info("aim-deviceplugin starting with config %s", config.to_json())
    runner = PluginRunner(config)

    def on_term(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s; stopping", signal.Signals(signum).name)
        runner.stop()

    def on_hup(signum: int, frame: FrameType | None) -> None:
        logger.info("received SIGHUP; re-discovering partitions now")
        runner.request_rediscovery()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.signal(signal.SIGHUP, on_hup)
    try:
        runner.run()
    except OSError as exc:
        logger.error(
            "cannot serve the device plugin: %s; exiting (check that --kubelet-dir %s is mounted "
            "read-write from the host and --metrics-port %d is free)",
            exc,
            config.kubelet_dir,
            config.metrics_port,
        )
        runner.shutdown()
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "discover":
        return run_discover(args)
    return run_serve(args, parser)


if __name__ == "__main__":
    raise SystemExit(main())
