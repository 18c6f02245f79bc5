"""Notes: what the firm's people write on an incident's timeline, for themselves or for the
client too. A note keeps when it was written apart from when what it tells happened."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.errors import InvalidArgument
from firebreak.events import NOTE_ADDED, new_event, to_timestamp
from firebreak.outbox import Outbox
from services.review.models import timeline_entries
from services.review.service import emit

AUDIENCES = ("internal", "client")
MAX_BODY = 20_000
# Clocks disagree a little; a note of something further ahead than this is a mistake.
CLOCK_SKEW = timedelta(minutes=1)


def checked_text(field: str, text: str, *, limit: int, required: bool = True) -> str:
    """`text` stripped, if it fits; a 422 naming `field` otherwise."""
    text = text.strip()
    if required and not text:
        raise InvalidArgument(field, "must not be empty")
    if len(text) > limit or "\x00" in text:
        raise InvalidArgument(field, f"must be at most {limit} characters, without NUL")
    return text


def not_in_future(field: str, moment: datetime, *, now: datetime) -> datetime:
    if moment > now + CLOCK_SKEW:
        raise InvalidArgument(field, "must not be in the future")
    return moment


async def add_note(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    incident_id: str,
    client_id: str,
    actor: events_pb2.Actor,
    body: str,
    audience: str,
    occurred_at: datetime | None,
    now: datetime,
) -> Row[Any]:
    """Writes the note onto the timeline (and the bus); returns its entry."""
    if audience not in AUDIENCES:
        raise InvalidArgument("audience", "must be internal or client")
    note = events_pb2.NoteAdded(
        body=checked_text("body", body, limit=MAX_BODY),
        audience=audience,
        occurred_at=to_timestamp(not_in_future("occurred_at", occurred_at or now, now=now)),
    )
    event = new_event(
        NOTE_ADDED,
        incident_id=incident_id,
        client_id=client_id,
        producer="review",
        payload=note,
        occurred_at=now,
        actor=actor,
    )
    await emit(connection, outbox=outbox, event=event)
    query = select(timeline_entries).where(timeline_entries.c.event_id == event.id)
    return (await connection.execute(query)).one()
