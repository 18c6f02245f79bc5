"""How a timer's failed passes are logged (notify's paging and deadline watch, review's action
alarms, …): a timer tries again every tick, so a database outage would otherwise write a
traceback several times a second for as long as it lasts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from firebreak.database import is_unavailable


class FailedPasses:
    """A bug's traceback every time; a database outage as one warning when it begins and one
    line when a pass succeeds again."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self._what = what
        self._outage = False

    def failed(self, error: Exception) -> None:
        if not is_unavailable(error):
            self._log.exception("%s failed; trying again", self._what)
        elif not self._outage:
            self._outage = True
            self._log.warning(
                "%s failed, the database is unavailable; trying again each tick: %s",
                self._what,
                error,
            )

    def succeeded(self) -> None:
        if self._outage:
            self._outage = False
            self._log.info("%s runs again: the database is back", self._what)


async def run_passes(
    stopping: asyncio.Event,
    one_pass: Callable[[], Awaitable[object]],
    *,
    tick_seconds: float,
    failures: FailedPasses,
) -> None:
    """Runs `one_pass` every tick until `stopping` is set; a failing pass is logged through
    `failures` and tried again at the next tick: a timer must outlive a database hiccup."""
    while not stopping.is_set():
        try:
            await one_pass()
        except Exception as error:
            failures.failed(error)
        else:
            failures.succeeded()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), tick_seconds)
