"""``aim-partitioner advise``: which partition mode each node should be in, for the given workloads.

Without ``--cluster`` the planner's demo cluster's GPUs are used with their modes left free;
without ``--workloads`` the planner's demo workloads. An invalid file, or two whose product is more
search work than ``inputs.MAX_ADVICE_WORK``, exits 2 with one line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from decision import planning
from extender import plan_files
from extender.terminal import stdout_supports_unicode
from partitioner import dcm
from partitioner.advisor import AdvisorOptions, advise
from partitioner.controller import cli as controller_cli
from partitioner.errors import AdvisorInputError
from partitioner.inputs import check_advice_size, demo_nodes, load_cluster
from partitioner.modes import Trust
from partitioner.output import as_json, render


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aim-partitioner",
        description="Partition layout advisor for AMD Instinct GPUs: the mode each node's GPUs should be in.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="{advise,controller}")
    advise_ = sub.add_parser("advise", help="choose one partition mode per node for the workloads you serve")
    advise_.add_argument("--cluster", metavar="FILE",
                         help="cluster YAML, the planner's format with modes optional (default: the demo cluster's"
                              " GPUs, modes free)")
    advise_.add_argument("--workloads", metavar="FILE", help="workloads YAML, the planner's (default: the demo's)")
    advise_.add_argument("--format", choices=["table", "json"], default="table", help="output (default table)")
    advise_.add_argument("--trust", choices=[t.value for t in Trust], default=Trust.DRIVER.value,
                         help="least-tested gpus.json status a chosen mode may have (default driver: AMD-validated"
                              " or driver-supported)")
    advise_.add_argument("--dcm-configmap", default=dcm.DEFAULT_CONFIGMAP_NAME,
                         help=f"name of the DCM ConfigMap in the JSON output (default {dcm.DEFAULT_CONFIGMAP_NAME})")
    advise_.add_argument("--dcm-namespace", default=dcm.DEFAULT_NAMESPACE,
                         help=f"its namespace (default {dcm.DEFAULT_NAMESPACE})")
    controller_cli.add_parser(sub)
    return parser


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `aim-partitioner advise | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _fail(error: Exception) -> int:
    """One line on stderr (a message quoting a file may hold line breaks), exit status 2."""
    print(f"aim-partitioner advise: error: {' '.join(str(error).splitlines())}", file=sys.stderr)
    return 2


def run_advise(args: argparse.Namespace) -> int:
    source = args.cluster or "built-in demo cluster, modes free"
    options = AdvisorOptions(trust=Trust(args.trust))
    try:
        nodes = load_cluster(args.cluster) if args.cluster else demo_nodes()
        workloads = plan_files.load_workloads(args.workloads)
        check_advice_size(nodes, workloads, options, source, args.workloads)  # each file is bounded; their product too
    except (AdvisorInputError, planning.PlanInputError) as error:
        return _fail(error)
    try:
        advice = advise(nodes, workloads, options, source=source)
    except AdvisorInputError as error:
        return _fail(error)
    if args.format == "json":
        document = as_json(advice, configmap_name=args.dcm_configmap, namespace=args.dcm_namespace)
        _write(json.dumps(document, indent=2) + "\n")
    else:
        _write(render(advice, unicode=stdout_supports_unicode()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "controller":
        return controller_cli.run(args)
    return run_advise(args)
