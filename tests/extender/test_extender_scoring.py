"""best-fit and spread scores: strict order by unused memory, then by free partitions; 0..10."""

from __future__ import annotations

from collections.abc import Sequence

from extender.decisions import prioritize_nodes
from extender.nodefacts import NodeFacts
from extender.reasons import GIB
from extender.requirements import Requirement
from extender.scoring import MAX_SCORE, Policy


def node(name: str, partition_gib: int, allocatable: int) -> NodeFacts:
    return NodeFacts(name=name, allocatable=allocatable, partition_bytes=partition_gib * GIB)


def score_nodes(requirement: Requirement, views: Sequence[tuple[str, NodeFacts, int]], policy: Policy) -> list[tuple[str, int]]:
    keys = [(facts.allocatable, facts.partition_bytes, used) for _, facts, used in views]
    return list(zip([name for name, _, _ in views], prioritize_nodes(requirement, keys, policy=policy)))


SIZED = Requirement(partitions=1, required_bytes=20 * GIB, model_bytes=18 * GIB, subject="m")
UNSIZED = Requirement(partitions=1)


def test_best_fit_prefers_the_smallest_holding_partition_whatever_the_other_sizes() -> None:
    views = [("cpx24", node("cpx24", 24, 16), 15), ("cpx32", node("cpx32", 32, 8), 0),
             ("qpx48", node("qpx48", 48, 8), 0), ("spx192", node("spx192", 192, 2), 0), ("spx256", node("spx256", 256, 1), 0)]
    scores = dict(score_nodes(SIZED, views, Policy.BEST_FIT))
    assert scores == {"cpx24": 10, "cpx32": 8, "qpx48": 6, "spx192": 4, "spx256": 2}


def test_within_a_partition_size_the_fullest_node_wins() -> None:
    views = [("empty", node("empty", 24, 8), 0), ("busy", node("busy", 24, 8), 6), ("busier", node("busier", 24, 8), 7)]
    scores = dict(score_nodes(SIZED, views, Policy.BEST_FIT))
    assert scores["busier"] == MAX_SCORE and scores["busy"] < MAX_SCORE and scores["empty"] < MAX_SCORE


def test_spread_is_the_mirror_image() -> None:
    views = [("cpx24", node("cpx24", 24, 8), 0), ("spx192", node("spx192", 192, 1), 0)]
    assert dict(score_nodes(SIZED, views, Policy.SPREAD)) == {"cpx24": 8, "spx192": 10}


def test_unsized_pods_are_scored_by_packing_only() -> None:
    views = [("a", node("a", 24, 8), 0), ("b", node("b", 192, 8), 4), ("c", node("c", 48, 8), 4)]
    assert dict(score_nodes(UNSIZED, views, Policy.BEST_FIT)) == {"a": 9, "b": 10, "c": 10}
    assert dict(score_nodes(UNSIZED, views, Policy.SPREAD)) == {"a": 10, "b": 9, "c": 9}


def test_nodes_that_would_not_pass_the_filter_score_zero() -> None:
    views = [("fits", node("fits", 24, 8), 0), ("small", node("small", 16, 8), 0), ("full", node("full", 24, 8), 8)]
    assert dict(score_nodes(SIZED, views, Policy.BEST_FIT)) == {"fits": 10, "small": 0, "full": 0}


def test_scores_stay_in_range_with_many_sizes() -> None:
    views = [(f"n{i}", node(f"n{i}", 20 + i, 4), i % 4) for i in range(40)]
    for policy in Policy:
        assert all(0 <= s <= MAX_SCORE for _, s in score_nodes(SIZED, views, policy))
