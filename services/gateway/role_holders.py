"""Who may hold a role in (or respond to) an incident: active staff inside its client's wall.
The gateway owns people, so it checks here and hands triage the person's id and name."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.events.v1 import events_pb2
from firebreak.database import reading
from firebreak.errors import InvalidArgument
from services.gateway.models import people
from services.gateway.people import STAFF_ROLES


async def role_holder(
    engine: AsyncEngine, person_id: str, *, client_id: str, field: str = "person_id"
) -> events_pb2.Person:
    """The person, if they can take part in an incident of `client_id`; else a 422 saying why."""
    async with reading(engine) as connection:
        row = (
            await connection.execute(
                select(
                    people.c.id, people.c.name, people.c.role, people.c.active, people.c.clients
                ).where(people.c.id == person_id)
            )
        ).first()
    if row is None:
        raise InvalidArgument(field, f"no person {person_id}")
    if row.role not in STAFF_ROLES:
        raise InvalidArgument(field, f"{row.name} is a client's contact, not staff")
    if not row.active:
        raise InvalidArgument(field, f"{row.name} is deactivated")
    if row.clients is not None and client_id not in row.clients:
        raise InvalidArgument(field, f"{row.name} may not work on this client's incidents")
    return events_pb2.Person(id=row.id, name=row.name)
