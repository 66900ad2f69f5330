"""The planner's cluster and workload files (``aim-extender plan``, ``aim-partitioner advise``): read
with the bounds of ``extender.yaml_file``, validated by ``decision.planning``; without a path, the
built-in demo in ``extender/data/``. Also the bound on what two files make together.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

from decision.planning.inputs import (
    Cluster,
    PlanInputError,
    Workload,
    cluster_from_document,
    workloads_from_document,
)
from extender.yaml_file import load_yaml, parse_yaml

DEMO_CLUSTER = "demo-cluster.yaml"
DEMO_WORKLOADS = "demo-workloads.yaml"
# Node x pod decisions of one plan (nodes x the sum of replicas), per policy: at ~60,000 a second
# (measured here, load 9 on 2 cores: 1,000 nodes of 8 MI300X CPX x 2,000 pods, 2 M decisions in 51 s,
# 19 s of CPU) a million take ~17 s, ~35 s for --policy both; the largest files each bound allows
# (5,000 nodes x 10,000 pods, 50 M) would run for ~14 minutes per policy.
MAX_DECISIONS = 1_000_000


def _read_yaml(path: str | None, demo: str) -> tuple[str, Any]:
    if path is None:
        source = f"built-in {demo}"
        return source, parse_yaml(source, resources.files("extender").joinpath("data", demo).read_text("utf-8"))
    return path, load_yaml(path)


def load_cluster(path: str | None) -> Cluster:
    """A cluster from a YAML file (None = the built-in demo); PlanInputError naming the field."""
    return cluster_from_document(*_read_yaml(path, DEMO_CLUSTER))


def load_workloads(path: str | None) -> list[Workload]:
    """Workloads from a YAML file (None = the built-in demo); PlanInputError naming the field."""
    return workloads_from_document(*_read_yaml(path, DEMO_WORKLOADS))


def demo_cluster() -> Cluster:
    """The built-in demo cluster (extender/data/demo-cluster.yaml)."""
    return load_cluster(None)


def demo_workloads() -> list[Workload]:
    """The built-in demo workloads (extender/data/demo-workloads.yaml)."""
    return load_workloads(None)


def size_refusal(cluster_source: str, workloads_path: str | None, work: str, limit: int, cost: str,
                 remedy: str) -> str:
    """The one line refusing a cluster and a workload file whose product is too much work (``aim-extender
    plan``, ``aim-partitioner advise``): both files, the work counted, the limit, its cost, a remedy."""
    source = workloads_path or f"built-in {DEMO_WORKLOADS}"
    return f"{cluster_source} and {source}: {work}, more than {limit:,} ({cost}); {remedy}"


def check_plan_size(cluster: Cluster, workloads: Sequence[Workload], workloads_path: str | None) -> None:
    """PlanInputError naming both files when planning them takes more than MAX_DECISIONS node x pod
    decisions (each file may be within its own bounds; their product is the planner's work)."""
    decisions = len(cluster.nodes) * len(workloads)
    if decisions > MAX_DECISIONS:
        raise PlanInputError(size_refusal(
            cluster.source, workloads_path,
            f"{len(cluster.nodes):,} nodes x {len(workloads):,} pods is {decisions:,} placement decisions",
            MAX_DECISIONS, "about 17 s per policy", "plan a part of the cluster or fewer replicas"))
