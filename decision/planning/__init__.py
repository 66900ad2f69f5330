"""The placement planner's pure core: place workloads on a described cluster, one at a time, with
the extender's own filter and prioritize code (online best-fit or spread), and render the result.

This is the package's public API; other packages (the partition advisor, the partition controller)
import only from here::

    from decision import planning
    from extender import plan_files                       # the files and the built-in demo (I/O)
    cluster = plan_files.load_cluster("cluster.yaml")     # or plan_files.demo_cluster()
    workloads = plan_files.load_workloads("workloads.yaml")
    result = planning.place_all(cluster, workloads, policy=planning.Policy.BEST_FIT)
    print(planning.render_tables([result], unicode=True))

Modules: ``geometry`` (partitionings and precisions from ``sizing``), ``partitioning`` (what a
node's GPUs offer, shared by alike nodes), ``inputs`` (cluster and workload documents, validated),
``node_state`` (one node's partitions while planning: the one node state of the planner, the advisor
and the controller), ``planner`` (placement), ``output`` (table and JSON rendering). Pure, like the
rest of ``decision``: reading the files is ``extender.plan_files``' job.
"""

from decision.planning.geometry import PartitionGeometry, known_precision, partition_geometry
from decision.planning.inputs import (
    MAX_NODES,
    MAX_PODS,
    Cluster,
    GpuGroupSpec,
    PlanInputError,
    PlanNode,
    Workload,
    WorkloadSpec,
    check_name,
    cluster_from_document,
    unique_names,
    validation_message,
    workloads_from_document,
    workloads_from_specs,
)
from decision.planning.node_state import Assignment, GpuState, NodeState
from decision.planning.output import as_json, render_comparison, render_result, render_tables
from decision.planning.partitioning import Partitioning, partitioning_of
from decision.planning.planner import Placement, PlanResult, Unplaced, place_all, place_one
from decision.verdict import Policy

__all__ = [
    "MAX_NODES",
    "MAX_PODS",
    "Assignment",
    "Cluster",
    "GpuGroupSpec",
    "GpuState",
    "NodeState",
    "PartitionGeometry",
    "Partitioning",
    "Placement",
    "PlanInputError",
    "PlanNode",
    "PlanResult",
    "Policy",
    "Unplaced",
    "Workload",
    "WorkloadSpec",
    "as_json",
    "check_name",
    "cluster_from_document",
    "known_precision",
    "partition_geometry",
    "partitioning_of",
    "place_all",
    "place_one",
    "render_comparison",
    "render_result",
    "render_tables",
    "unique_names",
    "validation_message",
    "workloads_from_document",
    "workloads_from_specs",
]
