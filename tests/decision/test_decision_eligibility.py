"""Where a pod may run (decision.eligibility): nodeSelector, required node affinity (matchExpressions and
matchFields), tolerations against taints and the cordon, as kube-scheduler's node-only filters judge
them; hostile specs are bounded and never raise."""

from __future__ import annotations

from typing import Any

import pytest

from decision.eligibility import (
    MAX_AFFINITY_TERMS,
    NodeFacts,
    Taint,
    read_node_facts,
    read_placement,
)

POOL = "pool"
GPU_TAINT = Taint("amd.com/gpu", "present", "NoSchedule")


def pod(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}], **spec}}


def required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}}


def expression(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": operator, "values": list(values)}


A = NodeFacts("a", {POOL: "small", "zone": "1"})
B = NodeFacts("b", {POOL: "big", "zone": "2"})
TAINTED = NodeFacts("t", {POOL: "big"}, (GPU_TAINT,))
CORDONED = NodeFacts("c", {POOL: "big"}, unschedulable=True)


def admitted(spec: dict[str, Any], nodes: tuple[NodeFacts, ...] = (A, B, TAINTED, CORDONED)) -> list[str]:
    rules = read_placement(pod(spec))
    return [n.name for n in nodes if rules.admits(n)]


def test_a_pod_without_rules_runs_on_every_node_without_a_blocking_taint_or_cordon() -> None:
    assert admitted({}) == ["a", "b"]
    assert admitted({}, (NodeFacts("soft", {}, (Taint("k", "", "PreferNoSchedule"),)),)) == ["soft"]


def test_node_selector_and_required_affinity_must_both_match() -> None:
    assert admitted({"nodeSelector": {POOL: "big"}}) == ["b"]
    assert admitted(required({"matchExpressions": [expression("zone", "In", "1", "2")]})) == ["a", "b"]
    both = {"nodeSelector": {POOL: "big"}, **required({"matchExpressions": [expression("zone", "In", "1")]})}
    assert admitted(both) == []


def test_terms_are_ored_requirements_anded_and_an_empty_term_matches_nothing() -> None:
    ored = required({"matchExpressions": [expression("zone", "In", "1")]},
                    {"matchExpressions": [expression(POOL, "In", "big"), expression("zone", "Exists")]})
    assert admitted(ored) == ["a", "b"]
    assert admitted(required({})) == []
    assert admitted(required({"matchExpressions": [{"key": 7, "operator": "In"}]})) == []  # unreadable


def test_match_fields_name_the_node() -> None:
    assert admitted(required({"matchFields": [expression("metadata.name", "In", "b")]})) == ["b"]
    assert admitted(required({"matchFields": [expression("metadata.name", "NotIn", "b")]})) == ["a"]


def test_tolerations_as_the_scheduler_matches_them() -> None:
    nodes = (TAINTED,)
    assert admitted({"tolerations": [{"key": "amd.com/gpu", "operator": "Exists"}]}, nodes) == ["t"]
    assert admitted({"tolerations": [{"key": "amd.com/gpu", "value": "present", "effect": "NoSchedule"}]},
                    nodes) == ["t"]
    assert admitted({"tolerations": [{"key": "amd.com/gpu", "value": "absent"}]}, nodes) == []
    assert admitted({"tolerations": [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoExecute"}]},
                    nodes) == []
    assert admitted({"tolerations": [{"operator": "Exists"}]}, (TAINTED, CORDONED)) == ["t", "c"]
    assert admitted({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                      "effect": "NoSchedule"}]}, (CORDONED,)) == ["c"]


def test_ignored_keys_leave_the_rest_of_the_rules() -> None:
    webhook = expression("amd.com/gpu-partition.memory-mib", "Gt", "100000")
    only = read_placement(pod(required({"matchExpressions": [webhook]})), ignore_keys={webhook["key"]})
    assert only.admits(A) and only.admits(B)
    pinned = read_placement(pod({"nodeSelector": {POOL: "big"}, **required({"matchExpressions": [webhook]})}),
                            ignore_keys={webhook["key"]})
    assert not pinned.admits(A) and pinned.admits(B)
    kept = read_placement(pod(required({"matchExpressions": [webhook, expression("zone", "In", "1")]})),
                          ignore_keys={webhook["key"]})
    assert kept.admits(A) and not kept.admits(B)


@pytest.mark.parametrize("spec", [
    {"nodeSelector": "x", "tolerations": {"a": 1}, "affinity": []},
    {"tolerations": [None, 3, {"key": ["x"]}], "affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": "all"}}}},
    required(*[{"matchExpressions": [expression("k", "In", *["v"] * 10_000)] * 10_000}] * 10_000),
])
def test_hostile_specs_are_bounded_and_never_raise(spec: dict[str, Any]) -> None:
    rules = read_placement(pod(spec))
    assert len(rules.affinity) <= MAX_AFFINITY_TERMS
    assert all(len(term) <= MAX_AFFINITY_TERMS and all(len(r.values) <= MAX_AFFINITY_TERMS for r in term)
               for term in rules.affinity)
    rules.admits(A)


def test_node_facts_from_the_node_object() -> None:
    facts = read_node_facts({"metadata": {"name": "n", "labels": {POOL: "big", "bad": 3}},
                             "spec": {"unschedulable": True, "taints": [{"key": "k", "effect": "NoExecute"}, "junk"]}})
    assert facts == NodeFacts("n", {POOL: "big"}, (Taint("k", "", "NoExecute"),), True)
    assert read_node_facts({"metadata": {"name": ""}}) is None and read_node_facts([]) is None
