"""Render advice: a table for people (current vs target per node, totals, the proving placement in
the planner's own table), JSON for tools (fields in docs/partitioner.md). Pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from decision import planning
from partitioner import dcm
from partitioner.advisor import Advice, NodeAdvice, Totals

WIDTH = 110  # the planner's table width


def _mode_json(node: NodeAdvice, which: str) -> dict[str, str] | None:
    mode = node.current if which == "current" else node.target
    return None if mode is None else {"compute_mode": mode.compute_mode, "memory_mode": mode.memory_mode}


def as_json(advice: Advice, *, configmap_name: str = dcm.DEFAULT_CONFIGMAP_NAME,
            namespace: str = dcm.DEFAULT_NAMESPACE) -> dict[str, Any]:
    placement = planning.as_json([advice.plan])
    return {
        "cluster": advice.plan.cluster.source,
        "nodes": [
            {"name": n.name, "product": n.product, "gpus": n.gpus, "current": _mode_json(n, "current"),
             "target": _mode_json(n, "target"), "changed": n.changed, "repartition_allowed": n.repartition_allowed,
             "dcm_profile": n.dcm_profile}
            for n in advice.nodes
        ],
        "totals": advice.totals.as_json(),
        "current_totals": advice.current_totals.as_json() if advice.current_totals is not None else None,
        "placement": placement["results"][0],
        "unplaceable": [{"workload": u.workload, "subject": u.subject, "reason": u.reason} for u in advice.unplaceable],
        "dcm": {
            "configmap": dcm.configmap(advice.dcm_config, name=configmap_name, namespace=namespace),
            "node_labels": {n.name: {dcm.PROFILE_LABEL: n.dcm_profile} for n in advice.nodes},
        },
        "search": {"layouts_evaluated": advice.evaluations, "greedy_totals": advice.greedy_totals.as_json()},
    }


def _totals_rows(advice: Advice) -> list[str]:
    columns: list[tuple[str, Totals]] = []
    if advice.current_totals is not None:
        columns.append(("current", advice.current_totals))
    columns.append(("target", advice.totals))
    head = f"  {'':<28}" + "".join(f"{name:>12}" for name, _ in columns)
    rows: list[tuple[str, Callable[[Totals], str]]] = [
        ("workloads placed", lambda t: f"{t.placed} / {t.workloads}"),
        ("GPUs used", lambda t: f"{t.gpus_used} / {t.gpus}"),
        ("whole GPUs left free", lambda t: str(t.gpus_free)),
        ("nodes changed", lambda t: str(t.nodes_changed)),
    ]
    return [head, *(f"  {label:<28}" + "".join(f"{cell(t):>12}" for _, t in columns) for label, cell in rows)]


def render(advice: Advice, *, unicode: bool) -> str:
    rule = ("═" if unicode else "=") * WIDTH
    arrow = "→" if unicode else "->"
    totals = advice.totals
    lines = [
        f"Partition advice: {totals.workloads} workloads on {len(advice.nodes)} nodes / {totals.gpus} GPUs"
        f" ({advice.plan.cluster.source})",
        rule,
    ]
    name_width = max(len(n.name) for n in advice.nodes)
    for node in advice.nodes:
        current = str(node.current) if node.current is not None else "free"
        change = f"change {arrow} DCM profile {node.dcm_profile}" if node.changed else (
            "keep" if node.current is not None else f"set {arrow} DCM profile {node.dcm_profile}")
        fixed = "" if node.repartition_allowed else "  (repartition not allowed)"
        lines.append(f"  {node.name:<{name_width}}  {node.gpus} x {node.product:<7} {current:>9} {arrow} "
                     f"{node.target!s:<9} {change}{fixed}")
    lines += ["", *_totals_rows(advice), ""]
    if advice.unplaceable:
        lines.append("No layout can place:")
        lines += [f"  {u.workload}  ({u.subject}): {u.reason}" for u in advice.unplaceable]
        lines.append("")
    lines += [rule, "Proof: the planner's best-fit placement on the target layout", rule,
              planning.render_result(advice.plan, unicode=unicode).rstrip(), rule]
    to_set = [n for n in advice.nodes if n.changed or (n.current is None and n.repartition_allowed)]
    if to_set:
        lines.append("To apply with AMD's Device Config Manager: create the ConfigMap from --format json"
                     " (dcm.configmap), drain each node (taint amd-dcm=up:NoExecute), then:")
        lines += [f"  kubectl label node {n.name} {dcm.PROFILE_LABEL}={n.dcm_profile} --overwrite" for n in to_set]
    else:
        lines.append("No node needs to change.")
    return "\n".join(lines) + "\n"
