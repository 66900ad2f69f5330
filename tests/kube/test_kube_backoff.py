"""The one retry backoff: 0.5 s doubling to a 3 s cap, each wait shortened by up to 25 % at random."""

from __future__ import annotations

import random

from kube.backoff import INITIAL_SECONDS, JITTER, MAX_SECONDS, Backoff


def test_waits_double_up_to_the_cap_with_jitter_below_the_nominal_wait() -> None:
    backoff = Backoff(rng=random.Random(1))
    waits = [backoff.next() for _ in range(8)]
    nominal = [min(INITIAL_SECONDS * 2**i, MAX_SECONDS) for i in range(8)]
    assert all(n * (1 - JITTER) <= w <= n for w, n in zip(waits, nominal, strict=True))
    assert max(waits) <= MAX_SECONDS and waits[-1] >= MAX_SECONDS * (1 - JITTER)
    assert len(set(waits)) == len(waits)  # jittered: no two replicas retry in step


def test_reset_starts_again_from_the_first_wait() -> None:
    backoff = Backoff(rng=random.Random(2))
    for _ in range(5):
        backoff.next()
    backoff.reset()
    assert backoff.next() <= INITIAL_SECONDS
