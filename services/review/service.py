"""Review's domain logic: turning events into an incident's timeline, and reading it back. An
entry's summaries are the platform's own words; what people wrote is stored beside them, as
named values (lines.py).

Events from the bus become entries as they arrive; review's own events (notes, the analysis,
actions) are written to the timeline in the transaction that produces them, so whoever wrote
one sees it at once (review does not consume its own events).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import Actor, EventEnvelope
from firebreak.api.review.v1 import review_pb2
from firebreak.errors import NotFound
from firebreak.events import (
    INCIDENT_MERGED,
    NOTE_ADDED,
    from_timestamp,
    new_event,
    to_timestamp,
)
from firebreak.outbox import Outbox
from services.review.lines import stored
from services.review.models import timeline_entries
from services.review.narration import narrate

INSERT_ENTRY = timeline_entries.insert()
CLIENT_KINDS = frozenset({"client_system", "client_contact", "system"})
CLIENT = "client"


def happened_at(event: EventEnvelope) -> datetime:
    """When what the event tells happened: its time, unless it tells of something earlier (a
    note written at 14:00 of what was seen at 09:12)."""
    if event.type == NOTE_ADDED and event.note_added.HasField("occurred_at"):
        return from_timestamp(event.note_added.occurred_at)
    return from_timestamp(event.occurred_at)


async def record_event(connection: AsyncConnection, *, event: EventEnvelope) -> None:
    said = narrate(event)
    entry = {
        "event_id": event.id,
        "incident_id": event.incident_id,
        "client_id": event.client_id,
        "type": event.type,
        "producer": event.producer,
        "occurred_at": happened_at(event),
        # The producer wrote the fact down when the event says; review's copy is the record.
        "recorded_at": from_timestamp(event.occurred_at),
        "summary": said.internal,
        "client_summary": said.client,
        "fields": stored(said.fields),
        "client_fields": stored(said.client_fields if said.client is not None else ()),
        "actor_id": event.actor.id,
        "actor_kind": event.actor.kind or "system",
        "actor_name": event.actor.name,
    }
    entries = [entry]
    if event.type == INCIDENT_MERGED:
        # The survivor's timeline shows the duplicate it absorbed.
        line = f"incident {event.incident_id} was merged into this one as a duplicate"
        entries.append(
            entry
            | {
                # Derived from the event's id, so a redelivered event makes the same entry.
                "event_id": str(uuid.uuid5(uuid.UUID(event.id), event.incident_merged.into)),
                "incident_id": event.incident_merged.into,
                "summary": line,
                "client_summary": line,
            }
        )
    await connection.execute(INSERT_ENTRY, entries)


async def emit(connection: AsyncConnection, *, outbox: Outbox, event: EventEnvelope) -> None:
    """One of review's own events: on the bus after commit, and on the timeline now."""
    await outbox.add(connection, event)
    await record_event(connection, event=event)


async def emit_about(
    connection: AsyncConnection,
    outbox: Outbox,
    row: Row[Any],
    actor: Actor,
    event_type: str,
    payload: Message,
    *,
    now: datetime,
) -> None:
    """`emit` for a record of review's own (an action, a review): the event about its incident."""
    await emit(
        connection,
        outbox=outbox,
        event=new_event(
            event_type,
            incident_id=row.incident_id,
            client_id=row.client_id,
            producer="review",
            payload=payload,
            occurred_at=now,
            actor=actor,
        ),
    )


async def get_timeline(
    connection: AsyncConnection,
    *,
    client_id: str | None,
    incident_id: str,
    audience: str = "",
    key_events_only: bool = False,
) -> list[Row[Any]]:
    """The incident's entries in order (for a client audience, only those meant for it);
    NotFound until review has seen the incident's first event."""
    query = (
        select(timeline_entries)
        .where(timeline_entries.c.incident_id == incident_id)
        .order_by(timeline_entries.c.occurred_at, timeline_entries.c.seq)
    )
    if client_id is not None:
        query = query.where(timeline_entries.c.client_id == client_id)
    rows = list((await connection.execute(query)).all())
    if not rows:
        raise NotFound(f"no timeline entries for incident {incident_id}")
    if audience == CLIENT:
        rows = [row for row in rows if row.client_summary is not None]
    if key_events_only:
        rows = [row for row in rows if row.key_event]
    return rows


async def mark_key_event(
    connection: AsyncConnection,
    *,
    client_id: str,
    incident_id: str,
    event_id: str,
    key_event: bool,
) -> Row[Any]:
    """Marks an entry of the incident a key event, or no longer one."""
    marked = await connection.execute(
        update(timeline_entries)
        .where(
            timeline_entries.c.event_id == event_id,
            timeline_entries.c.incident_id == incident_id,
            timeline_entries.c.client_id == client_id,
        )
        .values(key_event=key_event)
        .returning(*timeline_entries.c)
    )
    row = marked.first()
    if row is None:
        raise NotFound(f"no timeline entry {event_id} on incident {incident_id}")
    return row


def entry_actor(row: Row[Any], *, audience: str) -> Actor:
    """Who did it; a client is not told which of the firm's people did what."""
    if audience == CLIENT and row.actor_kind not in CLIENT_KINDS:
        return Actor(kind="staff", name="Response team")
    return Actor(id=row.actor_id, kind=row.actor_kind, name=row.actor_name)


def entry_message(row: Row[Any], *, audience: str = "") -> review_pb2.TimelineEntry:
    """An entry as its audience reads it: a client gets its own line and values only."""
    for_client = audience == CLIENT
    values = row.client_fields if for_client else row.fields
    return review_pb2.TimelineEntry(
        event_id=row.event_id,
        type=row.type,
        occurred_at=to_timestamp(row.occurred_at),
        recorded_at=to_timestamp(row.recorded_at),
        producer=row.producer,
        summary=row.client_summary if for_client else row.summary,
        fields=[review_pb2.TimelineField(name=f["name"], value=f["value"]) for f in values],
        actor=entry_actor(row, audience=audience),
        audience="client" if row.client_summary is not None else "internal",
        key_event=row.key_event,
    )
