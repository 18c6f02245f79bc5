"""A token bucket whose request may take several tokens at once (a batch of alerts): it is
admitted while the bucket holds as many as it asks, or a full burst, and may then leave the
bucket in debt, which the next request waits out. So a batch larger than the burst still gets
through, at the bucket's rate on average."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    per_second: float
    burst: int
    tokens: float = field(init=False)
    updated: float = field(init=False, default=-math.inf)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def wait(self, now: float, count: int = 1) -> float:
        """Seconds until a request of `count` tokens would be admitted; 0 when it would be now
        (then `take` it)."""
        if self.updated != -math.inf:
            self.tokens = min(
                float(self.burst), self.tokens + (now - self.updated) * self.per_second
            )
        self.updated = now
        return max(0.0, (min(count, self.burst) - self.tokens) / self.per_second)

    def take(self, count: int = 1) -> None:
        self.tokens -= count

    def refusal(self, now: float, count: int = 1) -> int:
        """Takes `count` tokens and returns 0, or takes none and returns the whole seconds (at
        least 1) until the request would be admitted."""
        wait = self.wait(now, count)
        if wait == 0:
            self.take(count)
            return 0
        return max(1, math.ceil(wait))
