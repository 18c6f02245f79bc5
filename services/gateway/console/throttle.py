"""Repeated failed sign-ins to one address are slowed down: after FREE_FAILURES, each further
attempt must wait twice as long as the last (up to MAX_WAIT), whether or not the address
exists, so the wait tells nothing either. Kept in each gateway replica's memory: with N
replicas an attacker gets N times the attempts, still a handful a day per address."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

FREE_FAILURES = 5
FIRST_WAIT = 2.0
MAX_WAIT = 15 * 60.0
REMEMBERED = 10_000  # addresses; the oldest is forgotten first


@dataclass
class _Failures:
    count: int
    blocked_until: float


class SignInThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def wait(self, address: str) -> int:
        """Whole seconds before `address` may try again; 0 now."""
        failures = self._failures.get(address.strip().lower())
        if failures is None:
            return 0
        return max(0, math.ceil(failures.blocked_until - self._clock()))

    def failed(self, address: str) -> None:
        key = address.strip().lower()
        failures = self._failures.pop(key, None) or _Failures(0, 0.0)
        failures.count += 1
        if failures.count > FREE_FAILURES:
            delay = min(MAX_WAIT, FIRST_WAIT * 2 ** (failures.count - FREE_FAILURES - 1))
            failures.blocked_until = self._clock() + delay
        self._failures[key] = failures
        while len(self._failures) > REMEMBERED:
            self._failures.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address.strip().lower(), None)
