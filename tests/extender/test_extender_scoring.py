"""best-fit and spread scores: 0 only for nodes that do not fit, 1..10 in order of partition size,
then free partitions, across the whole 21-288 GiB range of partition sizes."""

from __future__ import annotations

import sizing
from decision.nodes import prioritize_nodes
from decision.requirement import Requirement
from decision.text import GIB
from decision.verdict import MAX_SCORE, Capacity, Policy, size_bucket

SIZED = Requirement(partitions=1, required_bytes=20 * GIB, model_bytes=18 * GIB, subject="m")
UNSIZED = Requirement(partitions=1)
ALL_SIZES = sorted({mode.memory_bytes for product in sizing.GEOMETRY.products for mode in product.modes})


def capacity(partition_gib: float, allocatable: int, used: int = 0) -> Capacity:
    return (allocatable, int(partition_gib * GIB), used, None)


def scores(requirement: Requirement, nodes: dict[str, Capacity], policy: Policy) -> dict[str, int]:
    return dict(zip(nodes, prioritize_nodes(requirement, list(nodes.values()), policy=policy), strict=True))


def test_best_fit_prefers_the_smallest_holding_partition_whatever_the_other_sizes() -> None:
    nodes = {
        "cpx24": capacity(24, 16, 15),
        "cpx32": capacity(32, 8),
        "qpx48": capacity(48, 8),
        "spx192": capacity(192, 2),
        "spx256": capacity(256, 1),
    }
    assert scores(SIZED, nodes, Policy.BEST_FIT) == {"cpx24": 10, "cpx32": 9, "qpx48": 8, "spx192": 7, "spx256": 6}


def test_the_large_end_keeps_its_order_and_never_scores_like_a_rejected_node() -> None:
    nodes = {f"n{size}": (8, size, 0, None) for size in ALL_SIZES}  # all 14 sizes that exist, 21.3..288 GiB
    nodes["too-small"] = capacity(16, 8)
    result = scores(SIZED, nodes, Policy.BEST_FIT)
    assert result["too-small"] == 0
    fitting = [result[f"n{size}"] for size in ALL_SIZES if size >= SIZED.required_bytes]  # type: ignore[operator]
    assert all(score >= 1 for score in fitting)
    assert fitting == sorted(fitting, reverse=True)  # never inverted
    assert fitting[0] == MAX_SCORE and fitting[-1] < fitting[0]
    two = scores(SIZED, {"n256": capacity(256, 8), "n288": capacity(288, 8), "small": capacity(16, 8)}, Policy.BEST_FIT)
    assert two["n256"] > two["n288"] > two["small"] == 0


def test_log_buckets_are_monotone_and_span_the_range() -> None:
    buckets = [size_bucket(size) for size in ALL_SIZES]
    assert buckets == sorted(buckets) and buckets[0] == 0 and buckets[-1] == MAX_SCORE - 1
    assert len(set(buckets)) >= 9  # sizes a factor ~1.3 apart land in different buckets
    assert size_bucket(256 * GIB) < size_bucket(288 * GIB) or size_bucket(192 * GIB) < size_bucket(288 * GIB)


def test_within_a_partition_size_the_fullest_node_wins() -> None:
    nodes = {"empty": capacity(24, 8, 0), "busy": capacity(24, 8, 6), "busier": capacity(24, 8, 7)}
    result = scores(SIZED, nodes, Policy.BEST_FIT)
    assert result["busier"] == MAX_SCORE and result["busier"] > result["busy"] > result["empty"] >= 1


def test_spread_is_the_mirror_image() -> None:
    nodes = {"cpx24": capacity(24, 8), "spx192": capacity(192, 1)}
    assert scores(SIZED, nodes, Policy.SPREAD) == {"cpx24": 9, "spx192": 10}


def test_unsized_pods_are_scored_by_packing_only() -> None:
    nodes = {"a": capacity(24, 8, 0), "b": capacity(192, 8, 4), "c": capacity(48, 8, 4)}
    assert scores(UNSIZED, nodes, Policy.BEST_FIT) == {"a": 9, "b": 10, "c": 10}
    assert scores(UNSIZED, nodes, Policy.SPREAD) == {"a": 10, "b": 9, "c": 9}


def test_nodes_that_would_not_pass_the_filter_score_zero() -> None:
    nodes = {
        "fits": capacity(24, 8),
        "small": capacity(16, 8),
        "full": capacity(24, 8, 8),
        "unreadable": (8, 24 * GIB, 0, "invalid node label x"),
    }
    assert scores(SIZED, nodes, Policy.BEST_FIT) == {"fits": 10, "small": 0, "full": 0, "unreadable": 0}


def test_scores_stay_in_range_and_fitting_nodes_above_zero_with_many_shapes() -> None:
    nodes = {f"n{i}": capacity(20 + i, 4, i % 4) for i in range(40)}
    for policy in Policy:
        result = scores(SIZED, nodes, policy)
        assert all(0 <= s <= MAX_SCORE for s in result.values())
        assert all(s >= 1 for name, s in result.items() if name not in ("n0",))  # n0: 20 GiB, exactly fits


def test_spare_levels_separate_fullness_for_the_best_sizes_first() -> None:
    nodes = {f"{gib}-{used}": capacity(gib, 8, used) for gib in (24, 48, 192) for used in range(4)}
    result = scores(SIZED, nodes, Policy.BEST_FIT)
    by_size = {gib: [result[f"{gib}-{used}"] for used in (3, 2, 1, 0)] for gib in (24, 48, 192)}  # fullest first
    assert by_size[24] == [10, 9, 8, 7]  # every fullness rank of the best size is told apart
    assert min(by_size[24]) > max(by_size[48]) and min(by_size[48]) > max(by_size[192]) >= 1
    assert by_size[48] == sorted(by_size[48], reverse=True) and by_size[192] == sorted(by_size[192], reverse=True)
