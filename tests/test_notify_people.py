"""Notify's copy of people follows the gateway's events, newest first, whatever their order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.events.v1.events_pb2 import PersonDetails
from firebreak.database import create_engine
from firebreak.migrations import migrate
from services.notify.models import people
from services.notify.people import record_person

NOON = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}")
    await migrate(engine, "notify")
    yield engine
    await engine.dispose()


def details(**changes: object) -> PersonDetails:
    fields: dict[str, object] = {
        "id": "p-1",
        "name": "Ada",
        "email": "ada@firm.example",
        "phone": "+442079460000",
        "timezone": "Europe/London",
        "role": "responder",
        "client_id": "operator",
        "active": True,
    }
    return PersonDetails(**(fields | changes))  # type: ignore[arg-type]


async def copy_of(engine: AsyncEngine) -> list[tuple[str, str, bool, object]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(people.c.name, people.c.email, people.c.active, people.c.clients)
        )
        return [tuple(row) for row in rows]


async def test_a_newer_event_wins_and_an_older_one_arriving_late_changes_nothing(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        await record_person(connection, person=details(), as_of=NOON)
        await record_person(
            connection,
            person=details(name="Ada L.", active=False, walled=True, clients=["c-1"]),
            as_of=NOON + timedelta(minutes=5),
        )
        # The registration delivered again, late: the copy stays as the newer change left it.
        await record_person(connection, person=details(), as_of=NOON)
    assert await copy_of(engine) == [("Ada L.", "ada@firm.example", False, ["c-1"])]


async def test_an_unwalled_person_has_no_wall(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await record_person(connection, person=details(walled=False), as_of=NOON)
    assert (await copy_of(engine))[0][3] is None
