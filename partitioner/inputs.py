"""The advisor's cluster file: the planner's format, where a GPU group may leave its modes out.

    nodes:
      - name: gpu-a                      # modes given: the current layout, changed only where it pays
        gpus:
          - {product: MI300X, compute_mode: CPX, memory_mode: NPS4, count: 8}
      - name: gpu-b                      # modes left out: free to choose
        gpus:
          - {product: MI300X, count: 8}
      - name: gpu-c
        repartition: false               # keep the current layout whatever the advice
        gpus:
          - {product: MI325X, compute_mode: SPX, count: 8}

Every GPU group of a node must name the same product and the same modes (the advisor gives one
mode per node). Errors are ``AdvisorInputError`` naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from decision import planning
from extender import plan_files, yaml_file
from partitioner.advisor import MAX_GPUS_PER_NODE, AdvisorNode, AdvisorOptions, choices_for
from partitioner.demand import spec_key
from partitioner.errors import AdvisorInputError
from partitioner.modes import Mode, existing_option, product_name

# Search work of one ``advise``, in units of one node x pod decision: the greedy's walk and the
# planner's placements of a layout (one or two, once a layout costs more than the search budget)
# weigh every node for every pod, 1.5-2.8 us of CPU a unit (bench/bench_advisor.py --sections bounds,
# shared 2-core machine, before issue 19 made a layout's per-node set-up cheaper: an upper bound now).
# The greedy also finds each pod's tightest mode once per node kind (NodeChoices.kind): at 1,000 nodes
# x 2,000 pods, 2 kinds took 3.1 s and 272 kinds 7.5 s, ~7 us per kind x pod, three units.
KIND_WORK = 3
# One demand probe (the planner placing a workload on an empty node of one partition size, its offer
# built for it): 180-280 us for a 64-partition workload on a 16-GPU probe node, a hundred units.
PROBE_WORK = 100
# Just inside this bound advise took 14-20 s of CPU, 15-21 s end to end with the files read (3,175
# nodes x 2,000 pods; 272 nodes of 272 kinds x 7,330 pods; 46,368 probes); 5,000 nodes x 10,000 pods,
# each file within its own bounds, ran past 60 s.
MAX_ADVICE_WORK = 8_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuGroup(_Strict):
    product: str
    compute_mode: str | None = None
    memory_mode: str | None = None
    count: int = Field(1, ge=1, le=MAX_GPUS_PER_NODE)

    @model_validator(mode="after")
    def _valid(self) -> GpuGroup:
        product_name(self.product)
        if self.compute_mode is None and self.memory_mode is not None:
            raise ValueError("memory_mode is given without compute_mode")
        if self.compute_mode is not None:
            self.mode()  # raises, naming the valid modes
        return self

    def mode(self) -> Mode | None:
        """The group's current mode (the first valid memory mode when only compute_mode is given)."""
        if self.compute_mode is None:
            return None
        geometry = planning.partition_geometry(self.product, self.compute_mode, self.memory_mode)
        mode = Mode(geometry.compute_mode, geometry.memory_mode)
        existing_option(self.product, mode)
        return mode


class NodeEntry(_Strict):
    name: str
    repartition: bool = True
    gpus: list[GpuGroup] = Field(min_length=1, max_length=MAX_GPUS_PER_NODE)

    _name = field_validator("name")(planning.check_name)

    @model_validator(mode="after")
    def _one_layout(self) -> NodeEntry:
        total = sum(g.count for g in self.gpus)
        if total > MAX_GPUS_PER_NODE:
            raise ValueError(f"{total} GPUs in one node; at most {MAX_GPUS_PER_NODE}")
        if len({product_name(g.product) for g in self.gpus}) > 1:
            raise ValueError("GPU groups name different products; the advisor gives one mode per node")
        if len({g.mode() for g in self.gpus}) > 1:
            raise ValueError("GPU groups give different modes (or some none); the advisor models one mode per node")
        if not self.repartition and self.gpus[0].mode() is None:
            raise ValueError("repartition is false but the GPUs' current compute_mode is not given")
        return self

    def to_node(self) -> AdvisorNode:
        first = self.gpus[0]
        return AdvisorNode(self.name, product_name(first.product), sum(g.count for g in self.gpus),
                           first.mode(), self.repartition)


class ClusterFile(_Strict):
    nodes: list[NodeEntry] = Field(min_length=1, max_length=planning.MAX_NODES)

    @field_validator("nodes")
    @classmethod
    def _unique(cls, nodes: list[NodeEntry]) -> list[NodeEntry]:
        return planning.unique_names(nodes, "node")


def parse_cluster(source: str, text: str) -> list[AdvisorNode]:
    """Nodes from the text of a cluster file; AdvisorInputError naming ``source`` and the field."""
    try:
        data: Any = yaml_file.parse_yaml(source, text)
    except planning.PlanInputError as error:
        raise AdvisorInputError(str(error)) from None
    return _nodes(source, data)


def load_cluster(path: str) -> list[AdvisorNode]:
    """Nodes from a cluster file, read with the planner's bounds (size, depth, aliases)."""
    try:
        data: Any = yaml_file.load_yaml(path)
    except planning.PlanInputError as error:
        raise AdvisorInputError(str(error)) from None
    return _nodes(path, data)


def _nodes(source: str, data: Any) -> list[AdvisorNode]:
    if not isinstance(data, dict):
        raise AdvisorInputError(f"{source}: expected a YAML mapping at the top level, got {type(data).__name__}")
    try:
        parsed = ClusterFile.model_validate(data)
    except ValidationError as error:
        raise AdvisorInputError(planning.validation_message(source, error)) from None
    return [node.to_node() for node in parsed.nodes]


def demo_nodes() -> list[AdvisorNode]:
    """The planner's demo cluster's GPUs, with their modes left free."""
    return [AdvisorNode(node.name, node.gpus[0].product, len(node.gpus)) for node in plan_files.demo_cluster().nodes
            if node.gpus]


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class AdviceWork:
    """What one ``advise`` will do for these inputs, counted before any search."""

    nodes: int
    kinds: int  # distinct node kinds (NodeChoices.kind)
    pods: int
    specs: int  # distinct workloads (partitioner.demand.spec_key): each probed once per partition size
    sizes: int  # distinct partition sizes among the nodes' candidate modes

    @property
    def probes(self) -> int:
        return self.specs * self.sizes

    @property
    def total(self) -> int:
        return (self.nodes + KIND_WORK * self.kinds) * self.pods + PROBE_WORK * self.probes

    def __str__(self) -> str:
        return (f"{self.nodes:,} nodes ({_count(self.kinds, 'kind')}) x {self.pods:,} pods and"
                f" {_count(self.specs, 'distinct workload')} x {_count(self.sizes, 'partition size')} are"
                f" {self.total:,} units of search work"
                f" ((nodes + {KIND_WORK} x kinds) x pods + {PROBE_WORK} x workloads x sizes)")


def advice_work(nodes: Sequence[AdvisorNode], workloads: Sequence[planning.Workload],
                options: AdvisorOptions) -> AdviceWork:
    """The work of advising on these inputs; AdvisorInputError for invalid nodes or modes."""
    choices = choices_for(nodes, options)
    sizes = {option.partition_bytes for choice in choices for option in choice.options}
    specs = {spec_key(workload.spec) for workload in workloads}
    return AdviceWork(len(nodes), len({choice.kind for choice in choices}), len(workloads), len(specs), len(sizes))


def check_advice_size(nodes: Sequence[AdvisorNode], workloads: Sequence[planning.Workload], options: AdvisorOptions,
                      cluster_source: str, workloads_path: str | None) -> None:
    """AdvisorInputError naming both files when advising on them is more than MAX_ADVICE_WORK units of
    search work. Each file may be within its own bounds; this bounds what they make together. Cheap (no
    placement): call it before ``advise``."""
    work = advice_work(nodes, workloads, options)
    if work.total > MAX_ADVICE_WORK:
        raise AdvisorInputError(plan_files.size_refusal(
            cluster_source, workloads_path, str(work), MAX_ADVICE_WORK, "about 20 s",
            "advise on a part of the cluster or fewer workloads"))
