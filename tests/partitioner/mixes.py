"""Seeded random clusters and workload mixes for the advisor's quality checks (tests and bench)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from decision import planning
from partitioner import AdvisorNode, Mode

# Workload kinds: catalogue models at several precisions and sizes, bring-your-own memory, and
# tensor-parallel requests, so mixes need every partition size from CPX to SPX.
KINDS: tuple[dict[str, object], ...] = (
    {"model": "meta-llama/Llama-3.1-8B-Instruct", "precision": "fp16"},
    {"model": "Qwen/Qwen3-8B", "precision": "fp16"},
    {"model": "google/gemma-3-12b-it", "precision": "fp16"},
    {"model": "microsoft/phi-4", "precision": "fp16"},
    {"model": "Qwen/Qwen3-32B", "precision": "fp8"},
    {"model": "Qwen/Qwen3-32B", "precision": "fp16"},
    {"model": "meta-llama/Llama-3.3-70B-Instruct", "precision": "fp8", "partitions": 2},
    {"model": "meta-llama/Llama-3.3-70B-Instruct", "precision": "fp16"},
    {"model": "Qwen/Qwen3-235B-A22B", "precision": "int4"},
    {"memory": "12Gi"},
    {"memory": "40Gi"},
    {"memory": "90Gi", "partitions": 2},
)
PRODUCTS = ("MI300X", "MI325X")
CURRENT_MODES = (None, Mode("SPX", "NPS1"), Mode("CPX", "NPS1"), Mode("QPX", "NPS1"))


@dataclass(frozen=True)
class Mix:
    seed: int
    nodes: tuple[AdvisorNode, ...]
    workloads: tuple[planning.Workload, ...]


def random_mix(seed: int, *, nodes: int = 3, max_gpus: int = 2, workloads: tuple[int, int] = (6, 18)) -> Mix:
    rng = random.Random(seed)
    cluster = []
    for i in range(rng.randint(2, nodes) if nodes > 2 else nodes):
        current = rng.choice(CURRENT_MODES)
        cluster.append(AdvisorNode(f"node-{i}", rng.choice(PRODUCTS), rng.randint(1, max_gpus), current))
    specs = [
        planning.WorkloadSpec.model_validate({"name": f"w{j}", **rng.choice(KINDS)})
        for j in range(rng.randint(*workloads))
    ]
    return Mix(seed, tuple(cluster), tuple(planning.workloads_from_specs(specs)))


def large_mix(seed: int, *, nodes: int = 100, gpus: int = 8, workloads: int = 500) -> Mix:
    """A big cluster (one product per node, modes free) for the speed benchmark."""
    rng = random.Random(seed)
    cluster = tuple(AdvisorNode(f"node-{i:03d}", rng.choice(PRODUCTS), gpus) for i in range(nodes))
    specs = [planning.WorkloadSpec.model_validate({"name": f"w{j}", **rng.choice(KINDS)}) for j in range(workloads)]
    return Mix(seed, cluster, tuple(planning.workloads_from_specs(specs)))
