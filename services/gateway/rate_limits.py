"""Rate limits: a token bucket per API key, and one per client organisation shared by all of
its keys (FIREBREAK_RATE_LIMIT_KEY, FIREBREAK_RATE_LIMIT_CLIENT).

The firm's own keys (staff, the operator's admin keys) have only their key's bucket: the
response team working one incident must not run dry of a bucket shared by everyone in it.

Each gateway replica keeps its own buckets in memory, so with N replicas a key may get up to N
times its rate; a bucket exists per key that was used, and keys are few (admins issue them).
The bucket is firebreak/token_buckets.py's, as intake's per-integration limits use: the
libraries for it either wait for a token instead of refusing (aiolimiter) or cannot say when
the next one comes (token-bucket), which Retry-After needs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from firebreak.settings import RateLimit, Settings
from firebreak.token_buckets import TokenBucket
from services.gateway.permissions import OPERATOR_CLIENT_ID, Principal
from services.gateway.problems import Problem


class Buckets:
    """One limit's token buckets, by name (a key's id, a client's id)."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._buckets: dict[str, TokenBucket] = {}

    def wait(self, name: str, now: float) -> float:
        """Seconds until the bucket holds a token; 0 when it holds one now."""
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = TokenBucket(self.limit.per_second, self.limit.burst)
        return bucket.wait(now)

    def take(self, name: str) -> None:
        """Takes a token; `wait` said there is one."""
        self._buckets[name].take()


@dataclass(frozen=True)
class Refusal:
    limit: str  # "key" or "client"
    rate: RateLimit
    retry_after: int  # whole seconds, at least 1

    def problem(self) -> Problem:
        return Problem(
            429,
            f"Too many requests for this {self.limit}: its limit is "
            f"{self.rate.per_second:g} a second in bursts of up to {self.rate.burst}. Retry "
            f"after {self.retry_after} s.",
            headers={"Retry-After": str(self.retry_after)},
            extensions={
                "limit": self.limit,
                "rate_per_second": self.rate.per_second,
                "burst": self.rate.burst,
            },
        )


class RateLimiter:
    def __init__(
        self,
        *,
        key: RateLimit | None,
        client: RateLimit | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {
            name: Buckets(limit)
            for name, limit in (("key", key), ("client", client))
            if limit is not None
        }
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        return cls(key=settings.key_rate_limit, client=settings.client_rate_limit)

    def refusal(self, principal: Principal) -> Refusal | None:
        """Takes a token from each bucket the principal draws on, or from none of them when
        one is empty: then why, and when to come back."""
        now = self._clock()
        names = {"key": principal.key_id}
        if principal.client_id != OPERATOR_CLIENT_ID:
            names["client"] = principal.client_id
        waits = {
            limit: buckets.wait(names[limit], now)
            for limit, buckets in self._limits.items()
            if limit in names
        }
        empty = max(waits, key=waits.__getitem__, default=None)
        if empty is not None and waits[empty] > 0:
            return Refusal(empty, self._limits[empty].limit, max(1, math.ceil(waits[empty])))
        for limit in waits:
            self._limits[limit].take(names[limit])
        return None

    def admit(self, principal: Principal) -> None:
        """Raises the 429 problem when the principal is over a limit."""
        refused = self.refusal(principal)
        if refused is not None:
            raise refused.problem()
