"""Notify reacts to triage decisions, to the incident's progress, and to changes to people."""

from __future__ import annotations

from collections.abc import Sequence
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
    INCIDENT_REOPENED,
    INCIDENT_RESOLVED,
    INCIDENT_RESPONDER_ADDED,
    INCIDENT_RESPONDER_REMOVED,
    INCIDENT_ROLE_ASSIGNED,
    INCIDENT_TRIAGED,
    PAYLOAD_FIELDS,
    PERSON_CHANGED,
    PERSON_REGISTERED,
    STATUS_UPDATE_POSTED,
    from_timestamp,
)
from firebreak.outbox import Outbox
from services.notify import deadlines, escalation, people, service, update_cadence
from services.notify.models import escalations
from services.notify.update_cadence import Cadence

# What stops an incident's escalation: someone took it on, or it no longer needs anyone.
STOPS_ESCALATION = {
    INCIDENT_CONTAINED: "contained",
    INCIDENT_RESOLVED: "resolved",
    INCIDENT_DECLINED: "declined",
    INCIDENT_MERGED: "merged",
    INCIDENT_CLOSED: "closed",
}


# The other events that carry the incident's state: the update cadence follows them too.
FOLLOWED_FOR_CADENCE = frozenset(
    {
        INCIDENT_REOPENED,
        INCIDENT_ROLE_ASSIGNED,
        INCIDENT_RESPONDER_ADDED,
        INCIDENT_RESPONDER_REMOVED,
    }
)

# Declining or merging cancels an incident's pending contractual deadlines (deadlines.py).
CANCELS_CONTRACTUAL = frozenset({INCIDENT_DECLINED, INCIDENT_MERGED})


def build_handlers(
    *,
    outbox: Outbox,
    ack_lapse: timedelta | None,
    reminder_leads: Sequence[float],
    cadence: Cadence,
) -> dict[str, Handler]:
    async def on_incident_triaged(connection: AsyncConnection, event: EventEnvelope) -> None:
        await update_cadence.follow_event(connection, event, cadence=cadence)
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
        await deadlines.start_contractual(
            connection,
            outbox=outbox,
            incident=deadlines.Incident(
                event.incident_id, event.client_id, triaged.reference, triaged.title
            ),
            priority=triaged.priority,
            leads=reminder_leads,
            now=from_timestamp(event.occurred_at),
        )

    async def on_incident_reclassified(connection: AsyncConnection, event: EventEnvelope) -> None:
        """Into a paging priority: its policy starts (unless one is running already); into a
        priority a client's contractual rule lists: that rule's deadline starts."""
        await update_cadence.follow_event(connection, event, cadence=cadence)
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
        reference = earlier.reference if earlier else event.incident_id[:8]
        title = earlier.title if earlier else ""
        await escalation.start_escalation(
            connection,
            incident_id=event.incident_id,
            client_id=event.client_id,
            reference=reference,
            title=title,
            priority=change.new_priority,
            now=from_timestamp(event.occurred_at),
        )
        await deadlines.start_contractual(
            connection,
            outbox=outbox,
            incident=deadlines.Incident(event.incident_id, event.client_id, reference, title),
            priority=change.new_priority,
            leads=reminder_leads,
            now=from_timestamp(event.occurred_at),
        )

    async def on_progress(connection: AsyncConnection, event: EventEnvelope) -> None:
        await update_cadence.follow_event(connection, event, cadence=cadence)
        await escalation.stop_escalation(
            connection,
            outbox=outbox,
            incident_id=event.incident_id,
            client_id=event.client_id,
            reason=STOPS_ESCALATION[event.type],
            now=from_timestamp(event.occurred_at),
        )
        if event.type in CANCELS_CONTRACTUAL:
            await deadlines.cancel_contractual(
                connection,
                incident_id=event.incident_id,
                because=STOPS_ESCALATION[event.type],
                now=from_timestamp(event.occurred_at),
            )

    async def on_acknowledged(connection: AsyncConnection, event: EventEnvelope) -> None:
        await update_cadence.follow_event(connection, event, cadence=cadence)
        await escalation.acknowledge_escalation(
            connection,
            outbox=outbox,
            incident_id=event.incident_id,
            client_id=event.client_id,
            lapse=ack_lapse,
            now=from_timestamp(event.occurred_at),
        )

    async def on_status_update_posted(connection: AsyncConnection, event: EventEnvelope) -> None:
        """The client was told: the contractual deadlines a client update meets are met."""
        posted = event.status_update_posted
        if posted.audience == "client":
            await deadlines.meet_by_client_update(
                connection,
                outbox=outbox,
                incident_id=event.incident_id,
                update_id=posted.update_id,
                actor=event.actor,
                at=from_timestamp(event.occurred_at),
            )

    async def on_state_changed(connection: AsyncConnection, event: EventEnvelope) -> None:
        """Reopening restarts the update cadence; roles and responders say whom it reminds."""
        await update_cadence.follow_event(connection, event, cadence=cadence)

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
        **dict.fromkeys(sorted(FOLLOWED_FOR_CADENCE), on_state_changed),
        PERSON_REGISTERED: on_person,
        PERSON_CHANGED: on_person,
        STATUS_UPDATE_POSTED: on_status_update_posted,
    }
