"""A timer's failed passes: a database outage is one warning when it begins and one line when
it ends, however many ticks it lasts; any other failure keeps its traceback every time."""

from __future__ import annotations

import asyncio
import logging

import pytest

from firebreak.database import DatabaseUnavailable
from firebreak.timer_passes import FailedPasses, run_passes


def test_an_outage_is_said_once_and_its_end_once_and_a_bug_every_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("tests.timer")
    failures = FailedPasses(log, "paging pass")
    with caplog.at_level(logging.INFO, logger="tests.timer"):
        for _ in range(5):
            failures.failed(DatabaseUnavailable("connection refused"))
        failures.succeeded()
        failures.succeeded()
        for _ in range(2):
            try:
                raise KeyError("a bug")
            except KeyError as error:
                failures.failed(error)
    said = [
        (record.levelname, record.getMessage(), record.exc_info is not None)
        for record in caplog.records
    ]
    assert said == [
        (
            "WARNING",
            "paging pass failed, the database is unavailable; trying again each tick: "
            "connection refused",
            False,
        ),
        ("INFO", "paging pass runs again: the database is back", False),
        ("ERROR", "paging pass failed; trying again", True),
        ("ERROR", "paging pass failed; trying again", True),
    ]


async def test_a_timer_outlives_failing_passes_and_stops_when_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stopping = asyncio.Event()
    outcomes: list[Exception | None] = [DatabaseUnavailable("refused"), KeyError("a bug"), None]
    passes = 0

    async def one_pass() -> None:
        nonlocal passes
        passes += 1
        outcome = outcomes[passes - 1] if passes <= len(outcomes) else None
        if passes == len(outcomes):
            stopping.set()
        if outcome is not None:
            raise outcome

    log = logging.getLogger("tests.timer")
    with caplog.at_level(logging.INFO, logger="tests.timer"):
        await run_passes(
            stopping, one_pass, tick_seconds=0.001, failures=FailedPasses(log, "test pass")
        )
    assert passes == 3  # the third pass set `stopping`: no fourth
    assert [record.levelname for record in caplog.records] == ["WARNING", "ERROR", "INFO"]
