"""The offline placement planner: place workloads on a described cluster, one at a time, with the
extender's own filter and prioritize code (online best-fit or spread), and render the result.

This is the package's public API; other packages (the partition advisor) import only from here::

    from extender import planning
    cluster = planning.load_cluster("cluster.yaml")      # or planning.demo_cluster()
    workloads = planning.load_workloads("workloads.yaml")  # or planning.demo_workloads()
    result = planning.place_all(cluster, workloads, policy=planning.Policy.BEST_FIT)
    print(planning.render_tables([result], unicode=True))

Modules: ``geometry`` (partitionings and precisions from ``sizing``), ``yaml_file`` (a YAML file read
with its size, depth and aliases bounded), ``inputs`` (cluster and workload files, validated),
``planner`` (placement), ``output`` (table and JSON rendering).
"""

from decision.verdict import Policy
from extender.errors import PlanInputError
from extender.planning.geometry import (
    PartitionGeometry,
    known_precision,
    partition_geometry,
)
from extender.planning.inputs import (
    MAX_NODES,
    MAX_PODS,
    Cluster,
    GpuGroupSpec,
    PlanNode,
    Workload,
    WorkloadSpec,
    demo_cluster,
    demo_workloads,
    load_cluster,
    load_workloads,
    size_refusal,
    validation_message,
    workloads_from_specs,
)
from extender.planning.output import (
    as_json,
    render_comparison,
    render_result,
    render_tables,
    stdout_supports_unicode,
)
from extender.planning.planner import (
    Assignment,
    GpuState,
    NodeState,
    Placement,
    PlanResult,
    Unplaced,
    place_all,
    place_one,
)
from extender.planning.yaml_file import load_yaml, parse_yaml

__all__ = [
    "MAX_NODES",
    "MAX_PODS",
    "Assignment",
    "Cluster",
    "GpuGroupSpec",
    "GpuState",
    "NodeState",
    "PartitionGeometry",
    "Placement",
    "PlanInputError",
    "PlanNode",
    "PlanResult",
    "Policy",
    "Unplaced",
    "Workload",
    "WorkloadSpec",
    "as_json",
    "demo_cluster",
    "demo_workloads",
    "known_precision",
    "load_cluster",
    "load_workloads",
    "load_yaml",
    "parse_yaml",
    "partition_geometry",
    "place_all",
    "place_one",
    "render_comparison",
    "render_result",
    "render_tables",
    "size_refusal",
    "stdout_supports_unicode",
    "validation_message",
    "workloads_from_specs",
]
