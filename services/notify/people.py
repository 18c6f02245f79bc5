"""Notify's copy of the gateway's people, kept from person.registered and person.changed: whom
it may page and how to reach them, without asking the gateway in the middle of the night."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import PersonDetails
from firebreak.database import upsert_insert
from services.notify.models import people


def _upsert(dialect: str) -> Executable:
    statement = upsert_insert(dialect, people)
    return statement.on_conflict_do_update(
        index_elements=["id"],
        set_={
            column: statement.excluded[column]
            for column in ("name", "email", "phone", "timezone", "role", "client_id")
        }
        | {
            "clients": statement.excluded.clients,
            "active": statement.excluded.active,
            "updated_at": statement.excluded.updated_at,
        },
        # Events may come twice or out of order: only a newer one changes the copy.
        where=people.c.updated_at <= statement.excluded.updated_at,
    )


async def record_person(
    connection: AsyncConnection, *, person: PersonDetails, as_of: datetime
) -> None:
    await connection.execute(
        _upsert(connection.dialect.name),
        {
            "id": person.id,
            "name": person.name,
            "email": person.email,
            "phone": person.phone,
            "timezone": person.timezone,
            "role": person.role,
            "client_id": person.client_id,
            "clients": list(person.clients) if person.walled else None,
            "active": person.active,
            "updated_at": as_of,
        },
    )
