"""Cluster and workload files for ``aim-extender plan``: YAML, validated, with errors naming the field.

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

Without a file the built-in demo in ``extender/data/`` is used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from decision.text import pydantic_problem
from extender.errors import PlanInputError
from extender.planning.geometry import (
    PartitionGeometry,
    known_precision,
    partition_geometry,
)
from extender.planning.yaml_file import load_yaml, parse_yaml
from sizing.bounded import MAX_CONTEXT_TOKENS, BoundedValueError, parse_memory_bytes
from sizing.contract import (
    ANNOTATION_MAX_MODEL_LEN,
    ANNOTATION_MEMORY,
    ANNOTATION_MODEL,
    ANNOTATION_PRECISION,
    ANNOTATION_PROFILE,
    RESOURCE_NAME,
)

DEMO_CLUSTER = "demo-cluster.yaml"
DEMO_WORKLOADS = "demo-workloads.yaml"

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
# Node x pod decisions of one plan (nodes x the sum of replicas), per policy: at ~60,000 a second
# (measured here, load 9 on 2 cores: 1,000 nodes of 8 MI300X CPX x 2,000 pods, 2 M decisions in 51 s,
# 19 s of CPU) a million take ~17 s, ~35 s for --policy both; the largest files each bound allows
# (5,000 nodes x 10,000 pods, 50 M) would run for ~14 minutes per policy.
MAX_DECISIONS = 1_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_name(value: str) -> str:
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

    _name = field_validator("name")(_check_name)

    @field_validator("gpus")
    @classmethod
    def _gpu_total(cls, groups: list[GpuGroupSpec]) -> list[GpuGroupSpec]:
        total = sum(g.count for g in groups)
        if total > MAX_GPUS_PER_NODE:
            raise ValueError(f"{total} GPUs in one node; at most {MAX_GPUS_PER_NODE}")
        return groups


def _unique_names(items: list[Any], what: str) -> list[Any]:
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
        return _unique_names(nodes, "node")


class WorkloadSpec(_Strict):
    name: str
    model: str | None = Field(None, description=f"catalogue id ({ANNOTATION_MODEL})")
    precision: str | None = Field(None, description=f"fp16, bf16, fp8, int8, int4 ({ANNOTATION_PRECISION})")
    max_model_len: int | None = Field(None, ge=1, le=MAX_CONTEXT_TOKENS, description=ANNOTATION_MAX_MODEL_LEN)
    profile: str | None = Field(None, description=f"AIM profile id ({ANNOTATION_PROFILE})")
    memory: str | None = Field(None, description=f"Kubernetes quantity per partition ({ANNOTATION_MEMORY})")
    partitions: int = Field(1, ge=0, le=MAX_PARTITIONS, description=f"{RESOURCE_NAME} count (tensor parallel)")
    replicas: int = Field(1, ge=1, le=MAX_REPLICAS)

    _name = field_validator("name")(_check_name)

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
        return _unique_names(workloads, "workload")


# --- resolved, ready for the planner ---------------------------------------------------------------


@dataclass(frozen=True)
class PlanNode:
    name: str
    gpus: tuple[PartitionGeometry, ...]  # one entry per GPU, in order


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
        annotations = {
            annotation: str(value)
            for annotation, value in (
                (ANNOTATION_MODEL, spec.model), (ANNOTATION_PRECISION, spec.precision),
                (ANNOTATION_MAX_MODEL_LEN, spec.max_model_len), (ANNOTATION_PROFILE, spec.profile),
                (ANNOTATION_MEMORY, spec.memory),
            )
            if value is not None
        }
        resources_ = {RESOURCE_NAME: str(spec.partitions)} if spec.partitions else {}
        return {
            "metadata": {"name": self.name, "namespace": "plan", "annotations": annotations},
            "spec": {"containers": [{"name": "vllm", "resources": {"requests": resources_, "limits": resources_}}]},
        }


def _read_yaml(path: str | None, demo: str) -> tuple[str, Any]:
    if path is None:
        source = f"built-in {demo}"
        return source, parse_yaml(source, resources.files("extender").joinpath("data", demo).read_text("utf-8"))
    return path, load_yaml(path)


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


def load_cluster(path: str | None) -> Cluster:
    """A cluster from a YAML file (None = the built-in demo); PlanInputError naming the field."""
    source, data = _read_yaml(path, DEMO_CLUSTER)
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


def load_workloads(path: str | None) -> list[Workload]:
    """Workloads from a YAML file (None = the built-in demo); PlanInputError naming the field."""
    source, data = _read_yaml(path, DEMO_WORKLOADS)
    parsed: WorkloadFile = _validate(WorkloadFile, source, data)
    return workloads_from_specs(parsed.workloads)


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


def demo_cluster() -> Cluster:
    """The built-in demo cluster (extender/data/demo-cluster.yaml)."""
    return load_cluster(None)


def demo_workloads() -> list[Workload]:
    """The built-in demo workloads (extender/data/demo-workloads.yaml)."""
    return load_workloads(None)
