"""Two transactions that each find no cadence for an incident and make one (notify's consumer
applying incident.triaged while a status update is posted): the second applies its state to
the first's row instead of failing on its key (a 502 for the person posting the update)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.api.events.v1.events_pb2 import ResponseState
from firebreak.database import create_engine
from firebreak.migrations import migrate
from services.notify.models import update_cadences
from services.notify.update_cadence import Cadence, follow_state
from tests.conftest import BACKEND_PARAMS

CADENCE = Cadence({"P1": 30.0})


@pytest.mark.parametrize("new_database", [BACKEND_PARAMS["postgresql"]], indirect=True)
async def test_the_second_of_two_first_states_updates_the_firsts_row(
    new_database: Callable[[str], str],
) -> None:
    engine = create_engine(new_database("notify"))
    await migrate(engine, "notify")
    now = datetime.now(UTC)

    async def follow(connection: AsyncConnection, version: int, status: str) -> None:
        await follow_state(
            connection,
            cadence=CADENCE,
            incident_id="incident-1",
            client_id="client-1",
            state=ResponseState(version=version, priority="P1", status=status),
            at=now,
        )

    try:
        async with engine.connect() as first, engine.connect() as second:
            await first.begin()
            await follow(first, 1, "triaged")  # inserted, not committed yet
            await second.begin()
            # Finds no row (the first is not committed), then waits on the first's key.
            waiting = asyncio.create_task(follow(second, 2, "acknowledged"))
            await blocked_on_a_lock(engine)
            await first.commit()
            await waiting  # before the fix: UniqueViolationError
            await second.commit()
        async with engine.connect() as connection:
            row = (await connection.execute(select(update_cadences))).one()
        assert (row.state_version, row.status) == (2, "acknowledged")
    finally:
        await engine.dispose()


async def blocked_on_a_lock(engine: AsyncEngine) -> None:
    """Until a session of the database waits on a lock (the second insert, on the first's
    uncommitted key)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while True:
        async with engine.connect() as connection:
            if (await connection.execute(query)).scalar_one():
                return
        await asyncio.sleep(0.05)
