"""Time spent on incidents, as people log it, and its totals per client, person and role: what
a firm bills its clients for. Time is bookkeeping, not part of the incident's story, so it
makes no timeline entry and no event."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.errors import InvalidArgument
from services.review.models import time_entries
from services.review.notes import checked_text, not_in_future

# The capacity the time was spent in: an incident role, or responding.
ROLES = ("incident_commander", "communications_lead", "scribe", "responder")
MAX_MINUTES = 24 * 60  # one entry is at most a day's work; log longer work day by day
MAX_ACTIVITY = 2000


async def log_time(
    connection: AsyncConnection,
    *,
    incident_id: str,
    client_id: str,
    person: events_pb2.Person,
    role: str,
    activity: str,
    minutes: int,
    at: datetime | None,
    now: datetime,
) -> Row[Any]:
    if not person.id:
        raise InvalidArgument("person", "time is logged by a person, not by a key of no person")
    if not 1 <= minutes <= MAX_MINUTES:
        raise InvalidArgument("minutes", f"must be 1 to {MAX_MINUTES} (a day)")
    if role not in ROLES:
        raise InvalidArgument("role", f"must be one of {', '.join(ROLES)}")
    values = {
        "id": str(uuid.uuid4()),
        "incident_id": incident_id,
        "client_id": client_id,
        "person_id": person.id,
        "person_name": person.name,
        "role": role,
        "activity": checked_text("activity", activity, limit=MAX_ACTIVITY),
        "minutes": minutes,
        "at": not_in_future("at", at or now, now=now),
        "recorded_at": now,
    }
    inserted = await connection.execute(
        time_entries.insert().values(values).returning(*time_entries.c)
    )
    return inserted.one()


async def list_time(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str
) -> list[Row[Any]]:
    query = (
        select(time_entries)
        .where(time_entries.c.incident_id == incident_id)
        .order_by(time_entries.c.at, time_entries.c.recorded_at)
    )
    if client_id is not None:
        query = query.where(time_entries.c.client_id == client_id)
    return list((await connection.execute(query)).all())


async def time_totals(
    connection: AsyncConnection,
    *,
    client_ids: list[str] | None,
    person_id: str,
    start: datetime | None,
    end: datetime | None,
) -> list[Row[Any]]:
    """Minutes and entries per client, person and role, of work done in [start, end);
    `client_ids` None: every client's."""
    if start is not None and end is not None and start >= end:
        raise InvalidArgument("to", "must be after from")
    query = (
        select(
            time_entries.c.client_id,
            time_entries.c.person_id,
            # The name as logged (one of them, for a person renamed since): the gateway, which
            # owns people, shows their current name.
            func.max(time_entries.c.person_name).label("person_name"),
            time_entries.c.role,
            func.count().label("entries"),
            func.sum(time_entries.c.minutes).label("minutes"),
        )
        .group_by(time_entries.c.client_id, time_entries.c.person_id, time_entries.c.role)
        .order_by(time_entries.c.client_id, time_entries.c.person_id, time_entries.c.role)
    )
    if client_ids is not None:
        query = query.where(time_entries.c.client_id.in_(client_ids))
    if person_id:
        query = query.where(time_entries.c.person_id == person_id)
    if start is not None:
        query = query.where(time_entries.c.at >= start)
    if end is not None:
        query = query.where(time_entries.c.at < end)
    return list((await connection.execute(query)).all())
