"""Cluster and workload files for ``aim-extender plan``, validated, with errors naming the field.
Pure: the documents come parsed (``extender.plan_files`` reads the files and the built-in demo).

Cluster file::

    nodes:
      - name: mi300x-cpx-a
        gpus:
          - {product: MI300X, compute_mode: CPX, memory_mode: NPS4, count: 2}

Workload file::

    workloads:
      - {name: chat-8b, model: meta-llama/Llama-3.1-8B-Instruct, precision: fp16, replicas: 3}
      - {name: coder-70b, model: meta-llama/Llama-3.3-70B-Instruct, precision: fp16, partitions: 1}
      - {name: bring-your-own, memory: 40Gi}
      - {name: by-profile, profile: qwen--qwen3-8b--int8}
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from decision.planning.geometry import PartitionGeometry, known_precision, partition_geometry
from decision.planning.partitioning import Partitioning, partitioning_of
from decision.pod_demand import demand_pod
from decision.text import pydantic_problem
from sizing import contract
from sizing.bounded import MAX_CONTEXT_TOKENS, BoundedValueError, parse_memory_bytes

# RFC 1123 subdomain, what Kubernetes accepts as a node or pod name (apimachinery IsDNS1123Subdomain).
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
# GPUs in one node: 8 is the OAM platform maximum for MI300X/MI325X; 16 leaves room for others.
MAX_GPUS_PER_NODE = 16
# One workload may ask for at most 64 partitions: 8 GPUs x CPX (8 partitions each).
MAX_PARTITIONS = 64
# Nodes in a cluster file: Kubernetes supports clusters of at most 5,000 nodes
# (kubernetes.io/docs/setup/best-practices/cluster-large).
MAX_NODES = 5000
# Pods in a workload file (the sum of replicas): a plan makes about 60,000 node x pod decisions a
# second on a busy 2-core machine (measured: 1,000 nodes x 2,000 pods in 34 s), so 10,000 pods plan
# on 100 nodes in ~15 s. More pods than this is a load test, not a plan.
MAX_PODS = 10_000
# Replicas of one workload: a Deployment of a thousand GPU pods is already a very large one.
MAX_REPLICAS = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_name(value: str) -> str:
    """``value`` when it is a Kubernetes name (a node or pod name), else ValueError for pydantic."""
    if not _NAME.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes name (lowercase letters, digits, '-', '.')")
    return value


class GpuGroupSpec(_Strict):
    product: str = Field(description="GPU product from sizing/data/gpus.json, e.g. MI300X, MI325X")
    compute_mode: str = Field(description="SPX, DPX, TPX, QPX or CPX")
    memory_mode: str | None = Field(None, description="NPS1, NPS2 or NPS4; default: the first valid one")
    count: int = Field(1, ge=1, le=MAX_GPUS_PER_NODE, description="GPUs of this kind in the node")

    @model_validator(mode="after")
    def _exists(self) -> GpuGroupSpec:
        partition_geometry(self.product, self.compute_mode, self.memory_mode)  # ValueError names choices
        return self


class NodeSpec(_Strict):
    name: str
    gpus: list[GpuGroupSpec] = Field(default_factory=list, max_length=MAX_GPUS_PER_NODE)

    _name = field_validator("name")(check_name)

    @field_validator("gpus")
    @classmethod
    def _gpu_total(cls, groups: list[GpuGroupSpec]) -> list[GpuGroupSpec]:
        total = sum(g.count for g in groups)
        if total > MAX_GPUS_PER_NODE:
            raise ValueError(f"{total} GPUs in one node; at most {MAX_GPUS_PER_NODE}")
        return groups


def unique_names(items: list[Any], what: str) -> list[Any]:
    """``items`` when no two have one ``name``, else ValueError naming the first repeated one."""
    seen: set[str] = set()
    for item in items:
        if item.name in seen:
            raise ValueError(f"{what} name {item.name!r} appears twice")
        seen.add(item.name)
    return items


class ClusterFile(_Strict):
    nodes: list[NodeSpec] = Field(min_length=1, max_length=MAX_NODES)

    @field_validator("nodes")
    @classmethod
    def _unique(cls, nodes: list[NodeSpec]) -> list[NodeSpec]:
        return unique_names(nodes, "node")


class WorkloadSpec(_Strict):
    name: str
    model: str | None = Field(None, description=f"catalogue id ({contract.ANNOTATION_MODEL})")
    precision: str | None = Field(None, description=f"fp16, bf16, fp8, int8, int4 ({contract.ANNOTATION_PRECISION})")
    max_model_len: int | None = Field(None, ge=1, le=MAX_CONTEXT_TOKENS, description=contract.ANNOTATION_MAX_MODEL_LEN)
    profile: str | None = Field(None, description=f"AIM profile id ({contract.ANNOTATION_PROFILE})")
    memory: str | None = Field(None, description=f"Kubernetes quantity per partition ({contract.ANNOTATION_MEMORY})")
    partitions: int = Field(1, ge=0, le=MAX_PARTITIONS, description=f"{contract.RESOURCE_NAME} count (tensor parallel)")
    replicas: int = Field(1, ge=1, le=MAX_REPLICAS)

    _name = field_validator("name")(check_name)

    @field_validator("precision")
    @classmethod
    def _precision(cls, value: str | None) -> str | None:
        return None if value is None else known_precision(value)

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError(f"must be a Kubernetes quantity such as 40Gi, not {type(value).__name__}")
        text = str(value)
        try:
            parse_memory_bytes("memory", text)
        except BoundedValueError:
            raise ValueError(f"{text!r} is not a positive Kubernetes quantity such as 40Gi") from None
        return text


class WorkloadFile(_Strict):
    workloads: list[WorkloadSpec] = Field(min_length=1, max_length=MAX_PODS)

    @field_validator("workloads")
    @classmethod
    def _unique(cls, workloads: list[WorkloadSpec]) -> list[WorkloadSpec]:
        pods = sum(w.replicas for w in workloads)
        if pods > MAX_PODS:
            raise ValueError(f"{pods} pods in all (the sum of replicas); at most {MAX_PODS}")
        return unique_names(workloads, "workload")


# --- resolved, ready for the planner ---------------------------------------------------------------


@dataclass(frozen=True)
class PlanNode:
    name: str
    gpus: tuple[PartitionGeometry, ...]  # one entry per GPU, in order

    @cached_property
    def partitioning(self) -> Partitioning:
        """What the node offers (shared by alike nodes), looked up once per PlanNode."""
        return partitioning_of(self.gpus)


@dataclass(frozen=True)
class Cluster:
    source: str
    nodes: tuple[PlanNode, ...]


@dataclass(frozen=True)
class Workload:
    """One pod to place (a replica of a WorkloadSpec)."""

    name: str
    spec: WorkloadSpec

    def to_pod(self) -> dict[str, Any]:
        """The pod KServe would create: AIM annotations and the partition request."""
        spec = self.spec
        return demand_pod(self.name, "plan", spec.partitions, model=spec.model, precision=spec.precision,
                          max_model_len=spec.max_model_len, profile=spec.profile, memory=spec.memory)


class PlanInputError(ValueError):
    """A cluster or workload file for the planner or the advisor is invalid; the message names the file and field."""


def validation_message(source: str, error: ValidationError) -> str:
    """One line for a pydantic error in an input file: the file, the field's path, the first problem."""
    return pydantic_problem(error, source=source)


def _validate(model: type[_Strict], source: str, data: Any) -> Any:
    if not isinstance(data, dict):
        raise PlanInputError(f"{source}: expected a YAML mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise PlanInputError(validation_message(source, error)) from error


def cluster_from_document(source: str, data: Any) -> Cluster:
    """A cluster from a parsed cluster file named ``source``; PlanInputError naming the field."""
    parsed: ClusterFile = _validate(ClusterFile, source, data)
    nodes = []
    for node in parsed.nodes:
        gpus: list[PartitionGeometry] = []
        for group in node.gpus:
            gpus.extend([partition_geometry(group.product, group.compute_mode, group.memory_mode)] * group.count)
        nodes.append(PlanNode(node.name, tuple(gpus)))
    return Cluster(source, tuple(nodes))


def workloads_from_specs(specs: Iterable[WorkloadSpec]) -> list[Workload]:
    """One Workload per replica, named ``name-1``, ``name-2``, ... when there are several."""
    out: list[Workload] = []
    for spec in specs:
        if spec.replicas == 1:
            out.append(Workload(spec.name, spec))
        else:
            out.extend(Workload(f"{spec.name}-{i + 1}", spec) for i in range(spec.replicas))
    return out


def workloads_from_document(source: str, data: Any) -> list[Workload]:
    """Workloads from a parsed workload file named ``source``; PlanInputError naming the field."""
    parsed: WorkloadFile = _validate(WorkloadFile, source, data)
    return workloads_from_specs(parsed.workloads)
