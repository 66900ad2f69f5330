"""Render plan results: a per-node / per-GPU table for people, JSON for tools. Pure (whether the
terminal shows Unicode is ``extender.terminal``'s question)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from decision.planning.node_state import Assignment, GpuState, NodeState
from decision.planning.planner import PlanResult
from decision.text import GIB
from decision.verdict import Policy

WIDTH = 110  # wide enough for model ids, narrow enough for a laptop terminal

_POLICY_NOTE = {
    Policy.BEST_FIT: "smallest partition that holds the model, then the fullest node",
    Policy.SPREAD: "largest partition and emptiest node first, like kube-scheduler's default LeastAllocated",
}


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / GIB:.1f}"


def _bar(gpu: GpuState, *, unicode: bool) -> str:
    used, free = ("█", "░") if unicode else ("#", ".")
    return "".join(free if slot is None else used for slot in gpu.slots)


def _node_heading(node: NodeState) -> str:
    if not node.gpus:
        return f"{node.name}  (no GPUs)"
    groups: dict[str, int] = {}
    for gpu in node.gpus:
        groups[gpu.geometry.label] = groups.get(gpu.geometry.label, 0) + 1
    kinds = ", ".join(f"{n} x {label} ({gpu_partitions(node, label)})" for label, n in groups.items())
    return f"{node.name}  {kinds}  {node.used}/{node.capacity} partitions used"


def gpu_partitions(node: NodeState, label: str) -> str:
    gpu = next(g for g in node.gpus if g.geometry.label == label)
    return f"{gpu.geometry.partitions} x {gpu.geometry.memory_bytes / GIB:.0f} GiB"


def _slot_rows(gpu: GpuState) -> list[tuple[str, Assignment]]:
    """One row per workload on the GPU: ("p2+p3", assignment)."""
    order: list[str] = []
    slots: dict[str, list[int]] = {}
    first: dict[str, Assignment] = {}
    for index, slot in enumerate(gpu.slots):
        if slot is None:
            continue
        if slot.workload not in slots:
            order.append(slot.workload)
            slots[slot.workload] = []
            first[slot.workload] = slot
        slots[slot.workload].append(index)
    return [("+".join(f"p{i}" for i in slots[w]), first[w]) for w in order]


def render_result(result: PlanResult, *, unicode: bool) -> str:
    dot = "·" if unicode else "-"
    lines = [
        f"Policy {result.policy.value}: {_POLICY_NOTE[result.policy]}",
        (f"  {len(result.placements)} of {result.workload_count} workloads placed {dot} "
         f"{_gib(result.idle_bytes)} GiB idle inside used partitions {dot} "
         f"{result.free_gpus} of {result.gpu_count} GPUs untouched"),
        "",
    ]
    name_width = max([len(p.workload) for p in result.placements] + [8])
    for node in result.nodes:
        lines.append(_node_heading(node))
        for gpu in node.gpus:
            state = "free" if gpu.used == 0 else f"{gpu.used}/{len(gpu.slots)}"
            lines.append(f"  gpu{gpu.index}  {_bar(gpu, unicode=unicode):<8}  {state}")
            for where, slot in _slot_rows(gpu):
                each = " each" if "+" in where else ""
                unused = (f"{_gib(gpu.geometry.memory_bytes - slot.model_bytes)} GiB unused{each}"
                          if slot.model_bytes is not None else "size not declared")
                lines.append(f"        {where:<7} {slot.workload:<{name_width}}  {slot.subject:<44} {unused}")
        lines.append("")
    if result.unplaced:
        lines.append("Not placed:")
        for miss in result.unplaced:
            lines.append(f"  {miss.workload}  ({miss.subject})")
            lines.extend(textwrap.wrap(miss.reason, WIDTH, initial_indent="      ", subsequent_indent="      "))
        lines.append("")
    return "\n".join(lines)


def render_comparison(results: Sequence[PlanResult]) -> str:
    head = f"{'':<34}" + "".join(f"{r.policy.value:>14}" for r in results)
    rows = [
        ("workloads placed", [f"{len(r.placements)} / {r.workload_count}" for r in results]),
        ("GiB of model memory placed", [_gib(r.placed_bytes) for r in results]),
        ("GiB idle inside used partitions", [_gib(r.idle_bytes) for r in results]),
        ("whole GPUs left free", [f"{r.free_gpus} of {r.gpu_count}" for r in results]),
        ("partitions left free", [str(r.free_partitions) for r in results]),
    ]
    lines = ["Comparison (spread = kube-scheduler's default behaviour, least allocated first)", head]
    lines.extend(f"  {label:<32}" + "".join(f"{v:>14}" for v in values) for label, values in rows)
    lost = {m.workload for r in results for m in r.unplaced}
    if lost:
        lines.append("  not placed:")
        for r in results:
            names = ", ".join(m.workload for m in r.unplaced) or "-"
            lines.extend(textwrap.wrap(names, WIDTH, initial_indent=f"    {r.policy.value + ':':<10}",
                                       subsequent_indent=" " * 14))
    return "\n".join(lines)


def render_tables(results: Sequence[PlanResult], *, unicode: bool) -> str:
    rule = ("═" if unicode else "=") * WIDTH
    first = results[0]
    heading = (f"Placement plan: {first.workload_count} workloads on {len(first.nodes)} nodes /"
               f" {first.gpu_count} GPUs ({first.cluster.source})")
    parts = [heading, rule]
    for result in results:
        parts.extend([render_result(result, unicode=unicode), rule])
    if len(results) > 1:
        parts.append(render_comparison(results))
    return "\n".join(parts).rstrip() + "\n"


def _result_json(result: PlanResult) -> dict[str, Any]:
    nodes = []
    for node in result.nodes:
        gpus = []
        for gpu in node.gpus:
            partitions = [
                None if slot is None else {
                    "workload": slot.workload,
                    "subject": slot.subject,
                    "unused_bytes": (
                        gpu.geometry.memory_bytes - slot.model_bytes if slot.model_bytes is not None else None
                    ),
                }
                for slot in gpu.slots
            ]
            gpus.append({"index": gpu.index, "partitioning": gpu.geometry.label,
                         "partition_bytes": gpu.geometry.memory_bytes, "partitions": partitions})
        nodes.append({"name": node.name, "labels": dict(node.labels()), "gpus": gpus})
    return {
        "policy": result.policy.value,
        "totals": {
            "workloads": result.workload_count,
            "placed": len(result.placements),
            "placed_model_bytes": result.placed_bytes,
            "idle_bytes_in_used_partitions": result.idle_bytes,
            "gpus": result.gpu_count,
            "free_gpus": result.free_gpus,
            "free_partitions": result.free_partitions,
        },
        "placements": [
            {"workload": p.workload, "subject": p.subject, "node": p.node, "score": p.score,
             "partitions": [{"gpu": g, "partition": s} for g, s in p.partitions]}
            for p in result.placements
        ],
        "unplaced": [{"workload": m.workload, "subject": m.subject, "reason": m.reason} for m in result.unplaced],
        "nodes": nodes,
    }


def as_json(results: Sequence[PlanResult]) -> dict[str, Any]:
    return {"cluster": results[0].cluster.source, "results": [_result_json(r) for r in results]}
