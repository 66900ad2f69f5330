"""The advisor's proof is the planner's placement: replay and planning.place_all agree exactly."""

from __future__ import annotations

import pytest

from extender import planning
from partitioner.advisor import AdvisorOptions, choices_for, layout_cluster
from partitioner.replay import replay
from tests.partitioner.mixes import random_mix


@pytest.mark.parametrize("seed", range(12))
def test_replay_equals_place_all(seed: int) -> None:
    mix = random_mix(1000 + seed, nodes=4, max_gpus=3, workloads=(10, 30))
    choices = choices_for(mix.nodes, AdvisorOptions())
    layout = tuple(seed % len(c.options) for c in choices)
    cluster = layout_cluster(choices, layout, "replay-test")
    expected = planning.as_json([planning.place_all(cluster, list(mix.workloads), policy=planning.Policy.BEST_FIT)])
    assert planning.as_json([replay(cluster, mix.workloads)]) == expected
