"""Node and pod JSON as the API server sends them, for the pure tests: partition labels from the
device plugin's own ``sizing.contract.node_labels`` with geometry from ``sizing``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decision import planning
from partitioner.controller import keys
from sizing.contract import (
    ANNOTATION_MODEL,
    ANNOTATION_PRECISION,
    LABEL_MEMORY_MIB,
    RESOURCE_NAME,
    PartitionShape,
    node_labels,
)

LLAMA_70B = {ANNOTATION_MODEL: "meta-llama/Llama-3.3-70B-Instruct", ANNOTATION_PRECISION: "fp16"}  # ~151 GiB
QWEN_14B = {ANNOTATION_MODEL: "Qwen/Qwen3-14B", ANNOTATION_PRECISION: "fp16"}  # ~34 GiB
LLAMA_8B = {ANNOTATION_MODEL: "meta-llama/Llama-3.1-8B-Instruct", ANNOTATION_PRECISION: "fp16"}  # ~20 GiB
TOO_SMALL = ("0/3 nodes are available: 3 gpu partition too small for model (24 GiB < 151 GiB). "
             "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")


def partition_labels(product: str, compute: str, memory: str, gpus: int) -> dict[str, str]:
    geometry = planning.partition_geometry(product, compute, memory)
    shape = PartitionShape(product=geometry.product, compute_mode=geometry.compute_mode,
                           memory_mode=geometry.memory_mode, compute_units=geometry.compute_units,
                           memory_bytes=geometry.memory_bytes)
    labels = node_labels([shape] * (geometry.partitions * gpus), gpus=gpus)
    return {k: v for k, v in labels.items() if v is not None}


def node(name: str, compute: str = "CPX", memory: str = "NPS4", *, gpus: int = 1, product: str = "MI300X",
         opted_in: bool = True, annotations: Mapping[str, str] | None = None, unschedulable: bool = False,
         taints: list[dict[str, str]] | None = None, labels: Mapping[str, str] | None = None,
         allocatable: str | None = None) -> dict[str, Any]:
    found = partition_labels(product, compute, memory, gpus)
    all_labels = {"kubernetes.io/hostname": name, **found, **(labels or {})}
    if opted_in:
        all_labels[keys.OPT_IN_LABEL] = keys.OPT_IN_VALUE
    spec: dict[str, Any] = {}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = taints
    return {
        "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "7", "labels": all_labels,
                     "annotations": dict(annotations or {})},
        "spec": spec,
        "status": {"allocatable": {RESOURCE_NAME: allocatable or found["amd.com/gpu-partition.count"]}},
    }


def pod(name: str, annotations: Mapping[str, str] | None = None, *, node_name: str | None = None,
        partitions: int = 1, blocked: str | None = TOO_SMALL, created: str = "2026-11-30T07:00:00Z",
        namespace: str = "ns", selector: Mapping[str, str] | None = None, deleting: bool = False,
        memory_mib_above: int | None = None) -> dict[str, Any]:
    amount = {RESOURCE_NAME: str(partitions)}
    status: dict[str, Any] = {"phase": "Pending" if node_name is None else "Running"}
    if node_name is None and blocked is not None:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                 "message": blocked}]
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{name}",
                                "creationTimestamp": created, "annotations": dict(annotations or {})}
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-30T07:00:01Z"
    spec: dict[str, Any] = {"containers": [{"name": "vllm", "resources": {"requests": amount, "limits": amount}}]}
    if node_name:
        spec["nodeName"] = node_name
    if selector:
        spec["nodeSelector"] = dict(selector)
    if memory_mib_above is not None:
        spec["affinity"] = memory_affinity(memory_mib_above)
    return {"metadata": metadata, "spec": spec, "status": status}


def memory_affinity(above_mib: int) -> dict[str, Any]:
    """The required node affinity our admission webhook writes: partitions larger than ``above_mib``."""
    expression = {"key": LABEL_MEMORY_MIB, "operator": "Gt", "values": [str(above_mib)]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [expression]}]}}}


AFFINITY_MISMATCH = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."


def _entry(compute: str, memory: str) -> dict[str, Any]:
    return {"skippedGPUs": {"ids": []}, "profiles": [{"computePartition": compute, "memoryPartition": memory}]}


# The shape of the GPU Operator's built-in DCM profiles (default-dcm-config, ROCm/gpu-operator
# internal/configmanager/default_dcm_config.json): numGPUsAssigned left out means every GPU.
OPERATOR_PROFILES: dict[str, Any] = {"gpu-config-profiles": {
    "default": _entry("SPX", "NPS1"), "cpx_nps1_all": _entry("CPX", "NPS1"), "cpx_nps4_all": _entry("CPX", "NPS4"),
    "dpx_nps2_all": _entry("DPX", "NPS2"), "qpx_nps1_all": _entry("QPX", "NPS1"),
    "heterogeneous_example": {"skippedGPUs": {"ids": []}, "profiles": [
        {"computePartition": "CPX", "memoryPartition": "NPS4", "numGPUsAssigned": 4},
        {"computePartition": "SPX", "memoryPartition": "NPS4", "numGPUsAssigned": 4}]},
}}
