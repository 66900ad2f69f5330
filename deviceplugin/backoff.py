"""The one retry backoff of the device plugin: doubling from ``initial_s`` up to ``max_s``."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Backoff:
    """Delay before the next retry; ``failed`` returns it and doubles it, ``reset`` starts over.

    Owned by one thread (registration, label sync); not shared.
    """

    initial_s: float
    max_s: float
    current_s: float = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.current_s = self.initial_s

    def failed(self) -> float:
        """The delay to wait now; the next one is twice as long, at most ``max_s``."""
        delay = self.current_s
        self.current_s = min(self.current_s * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self.current_s = self.initial_s
