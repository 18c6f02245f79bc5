"""Review's domain logic: turning events into an incident's timeline, and reading it back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.errors import NotFound
from firebreak.events import (
    EVIDENCE_COLLECTED,
    INCIDENT_REPORTED,
    INCIDENT_TRIAGED,
    NOTIFICATION_SENT,
    from_timestamp,
)
from services.review.models import timeline_entries

INSERT_ENTRY = timeline_entries.insert()


def summarise(event: EventEnvelope) -> str:
    """One human line per event, for the timeline an SRE or a court reads."""
    if event.type == INCIDENT_REPORTED:
        report = event.incident_reported
        return (
            f"{report.reference} reported by {report.reporter.name}: {report.title} "
            f"({report.type}, impact {report.impact}, urgency {report.urgency})"
        )
    if event.type == INCIDENT_TRIAGED:
        return f"triaged as {event.incident_triaged.priority}: {event.incident_triaged.rationale}"
    if event.type == NOTIFICATION_SENT:
        sent = event.notification_sent
        return f"notified {sent.audience} via {sent.channel}: {sent.subject}"
    if event.type == EVIDENCE_COLLECTED:
        item = event.evidence_collected
        return (
            f"evidence {item.filename} collected by {item.collected_by} "
            f"({item.size_bytes} bytes, sha256 {item.sha256})"
        )
    return event.type


async def record_event(connection: AsyncConnection, *, event: EventEnvelope) -> None:
    await connection.execute(
        INSERT_ENTRY,
        {
            "event_id": event.id,
            "incident_id": event.incident_id,
            "client_id": event.client_id,
            "type": event.type,
            "producer": event.producer,
            "occurred_at": from_timestamp(event.occurred_at),
            "summary": summarise(event),
        },
    )


async def get_timeline(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str
) -> list[Row[Any]]:
    """The incident's entries in order; NotFound until review has seen its first event."""
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
    return rows
