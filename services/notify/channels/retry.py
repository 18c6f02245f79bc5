"""How long to wait before trying a failed delivery again.

Exponential backoff with "full jitter", as in the AWS Architecture Blog's "Exponential Backoff
and Jitter": the wait is drawn uniformly from [0, min(cap, base * 2 ** attempt)]. The ceiling
grows exponentially, so a receiver that stays down is asked less and less often; drawing the
whole wait at random, rather than adding a little noise to a fixed one, spreads the retries of
many deliveries that failed together (one outage) over the window instead of sending them back
in waves.
"""

from __future__ import annotations

import math
import random


def backoff(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before the next try, in [0, min(cap, base * 2 ** attempt)].

    `attempt` counts the failed attempts before this wait, less one: 0 after the first
    failure (a wait of at most `base`), 1 after the second (at most 2 * base), and so on until
    the ceiling reaches `cap`. `rng` is passed in so a test can draw reproducibly.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be 0 or more, not {attempt}")
    if base <= 0 or cap < base:
        raise ValueError(f"need 0 < base <= cap, got base={base} and cap={cap}")
    try:
        ceiling = min(cap, math.ldexp(base, attempt))  # base * 2 ** attempt, exactly
    except OverflowError:  # far past the cap: 2 ** attempt is beyond a float
        ceiling = cap
    return rng.uniform(0.0, ceiling)
