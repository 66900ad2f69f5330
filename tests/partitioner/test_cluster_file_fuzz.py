"""Hostile cluster files: seeded mutations of a valid file give AdvisorInputError or an answer, fast,
never another exception."""

from __future__ import annotations

import copy
import random
import time
from typing import Any

import yaml

from extender import plan_files
from partitioner import AdvisorInputError, advise
from partitioner.inputs import parse_cluster

BASE: dict[str, Any] = {"nodes": [
    {"name": "a", "gpus": [{"product": "MI300X", "compute_mode": "CPX", "memory_mode": "NPS4", "count": 2}]},
    {"name": "b", "repartition": False, "gpus": [{"product": "MI325X", "compute_mode": "SPX", "count": 1}]},
]}
VALUES: list[Any] = [None, True, 0, -1, 10**40, "1e999", "²", "١", float("nan"), [], {}, [[[]]], "x" * 300,
                     "MI300X", "CPX", "NPS2", "spx", 3.0, "3", {"a": {"b": {}}}, "Bad Name"]


def _mutated(rng: random.Random) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    slots: list[tuple[Any, Any]] = []

    def walk(value: Any) -> None:
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
        for key, child in items:
            slots.append((value, key))
            walk(child)

    walk(document)
    for _ in range(rng.randint(1, 3)):
        container, key = rng.choice(slots)
        container[key] = copy.deepcopy(rng.choice(VALUES))
    return document


def test_mutated_cluster_files_are_refused_cleanly_or_advised() -> None:
    rng = random.Random(10)
    workloads = plan_files.demo_workloads()[:3]
    answered = refused = 0
    for _ in range(300):
        text = yaml.safe_dump(_mutated(rng))
        started = time.perf_counter()
        try:
            advice = advise(parse_cluster("cluster.yaml", text), workloads)
        except AdvisorInputError as error:
            assert str(error).startswith("cluster.yaml: ") or "node" in str(error)
            refused += 1
        else:
            assert advice.totals.workloads == 3
            answered += 1
        assert time.perf_counter() - started < 1.0
    assert refused > 100 and answered >= 5  # the mutations exercise both paths
