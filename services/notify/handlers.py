"""Notify reacts to triage decisions, to the incident's progress, and to changes to people."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.consumer import Handler
from firebreak.events import (
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_CLOSED,
    INCIDENT_CONTAINED,
    INCIDENT_DECLINED,
    INCIDENT_MERGED,
    INCIDENT_RECLASSIFIED,
    INCIDENT_RESOLVED,
    INCIDENT_TRIAGED,
    PAYLOAD_FIELDS,
    PERSON_CHANGED,
    PERSON_REGISTERED,
    from_timestamp,
)
from firebreak.outbox import Outbox
from services.notify import escalation, people, service
from services.notify.models import escalations

# What stops an incident's escalation: someone took it on, or it no longer needs anyone.
STOPS_ESCALATION = {
    INCIDENT_CONTAINED: "contained",
    INCIDENT_RESOLVED: "resolved",
    INCIDENT_DECLINED: "declined",
    INCIDENT_MERGED: "merged",
    INCIDENT_CLOSED: "closed",
}


def build_handlers(*, outbox: Outbox, ack_lapse: timedelta | None) -> dict[str, Handler]:
    async def on_incident_triaged(connection: AsyncConnection, event: EventEnvelope) -> None:
        await service.notify_responders(connection, outbox=outbox, triaged=event)
        triaged = event.incident_triaged
        await escalation.start_escalation(
            connection,
            incident_id=event.incident_id,
            client_id=event.client_id,
            reference=triaged.reference,
            title=triaged.title,
            priority=triaged.priority,
            now=from_timestamp(event.occurred_at),
        )

    async def on_incident_reclassified(connection: AsyncConnection, event: EventEnvelope) -> None:
        """Into a paging priority: its policy starts (unless one is running already)."""
        change = event.incident_reclassified
        if change.old_priority == change.new_priority:
            return
        earlier = (
            await connection.execute(
                select(escalations.c.reference, escalations.c.title).where(
                    escalations.c.incident_id == event.incident_id
                )
            )
        ).first()
        await escalation.start_escalation(
            connection,
            incident_id=event.incident_id,
            client_id=event.client_id,
            reference=earlier.reference if earlier else event.incident_id[:8],
            title=earlier.title if earlier else "",
            priority=change.new_priority,
            now=from_timestamp(event.occurred_at),
        )

    async def on_progress(connection: AsyncConnection, event: EventEnvelope) -> None:
        await escalation.stop_escalation(
            connection,
            outbox=outbox,
            incident_id=event.incident_id,
            client_id=event.client_id,
            reason=STOPS_ESCALATION[event.type],
            now=from_timestamp(event.occurred_at),
        )

    async def on_acknowledged(connection: AsyncConnection, event: EventEnvelope) -> None:
        await escalation.acknowledge_escalation(
            connection,
            outbox=outbox,
            incident_id=event.incident_id,
            client_id=event.client_id,
            lapse=ack_lapse,
            now=from_timestamp(event.occurred_at),
        )

    async def on_person(connection: AsyncConnection, event: EventEnvelope) -> None:
        details = getattr(event, PAYLOAD_FIELDS[event.type]).person
        await people.record_person(
            connection, person=details, as_of=from_timestamp(event.occurred_at)
        )

    return {
        INCIDENT_TRIAGED: on_incident_triaged,
        INCIDENT_RECLASSIFIED: on_incident_reclassified,
        INCIDENT_ACKNOWLEDGED: on_acknowledged,
        **dict.fromkeys(sorted(STOPS_ESCALATION), on_progress),
        PERSON_REGISTERED: on_person,
        PERSON_CHANGED: on_person,
    }
