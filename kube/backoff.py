"""The one retry backoff of the project (extender, webhook, device plugin, partitioner): doubling from
``initial`` up to ``maximum``, each wait shortened at random by up to ``jitter`` so replicas do not retry in step."""

from __future__ import annotations

import random
from typing import Final

# First wait after a failure: half a second, so a blip of the API server costs little.
INITIAL_SECONDS: Final = 0.5
# Longest wait: 3 s, so relisting starts within a few seconds of the API server coming back
# (client-go's reflector caps at 30 s, which left the cache stale ~20 s after an outage ended).
MAX_SECONDS: Final = 3.0
# Each wait is drawn from [1 - JITTER, 1] x the nominal wait, so replicas do not retry in step.
JITTER: Final = 0.25


class Backoff:
    """``next()`` gives the wait before the next retry; ``reset()`` after a success."""

    def __init__(self, initial: float = INITIAL_SECONDS, maximum: float = MAX_SECONDS, jitter: float = JITTER,
                 rng: random.Random | None = None) -> None:
        self._initial, self._maximum, self._jitter = initial, maximum, jitter
        self._rng = rng or random.Random()
        self._nominal = initial

    def next(self) -> float:
        wait = self._nominal * (1.0 - self._jitter * self._rng.random())
        self._nominal = min(self._nominal * 2, self._maximum)
        return wait

    def reset(self) -> None:
        self._nominal = self._initial
