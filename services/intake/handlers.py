"""Intake keeps the registry current from what the other services report on the bus."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.consumer import Handler
from firebreak.events import (
    ATTACHMENT_SOURCE,
    EVIDENCE_COLLECTED,
    INCIDENT_TRIAGED,
    NOTIFICATION_SENT,
    PAYLOAD_FIELDS,
    STATE_CHANGES,
    from_timestamp,
)
from firebreak.outbox import Outbox
from services.intake import alerts, service
from services.intake.models import incidents, report_attachments


def on_response_changed(outbox: Outbox) -> Handler:
    async def handle(connection: AsyncConnection, event: EventEnvelope) -> None:
        """Every lifecycle event carries the whole response state after it. The one that
        tells intake the incident is resolved may find alerts counted on it since, while intake
        still had it open: those reopen it (alerts.retrigger_fired_since)."""
        state = getattr(event, PAYLOAD_FIELDS[event.type]).state
        before = None
        if state.status == "resolved":
            # Locked: waits for any request counting on the incident's alerts (alerts.py).
            before = (
                await connection.execute(
                    select(incidents.c.status)
                    .where(incidents.c.id == event.incident_id)
                    .with_for_update()
                )
            ).scalar()
        recorded = await service.record_response(
            connection, incident_id=event.incident_id, state=state
        )
        if recorded and before not in (None, "resolved") and state.HasField("resolved_at"):
            await alerts.retrigger_fired_since(
                connection,
                outbox=outbox,
                incident_id=event.incident_id,
                resolved_at=from_timestamp(state.resolved_at),
            )

    return handle


async def on_notification_sent(connection: AsyncConnection, event: EventEnvelope) -> None:
    """Notify answers every incident.triaged with this event, carrying the state triage left:
    the registry records the triage and the notification from it alone."""
    await service.record_notification(
        connection,
        incident_id=event.incident_id,
        notified_at=from_timestamp(event.occurred_at),
        state=event.notification_sent.state,
    )


async def on_evidence_collected(connection: AsyncConnection, event: EventEnvelope) -> None:
    """An attachment of a report by email, collected as evidence: it names its item."""
    collected = event.evidence_collected
    attachment_id = collected.source_reference.removeprefix(ATTACHMENT_SOURCE)
    if collected.collection_method != "email" or attachment_id == collected.source_reference:
        return  # an item of another source: nothing of intake's
    await connection.execute(
        update(report_attachments)
        .where(
            report_attachments.c.id == attachment_id,
            report_attachments.c.incident_id == event.incident_id,
            report_attachments.c.client_id == event.client_id,
        )
        .values(evidence_id=collected.evidence_id)
    )


def build_handlers(outbox: Outbox) -> dict[str, Handler]:
    """The handlers, by event type; what they publish goes through `outbox`. Not
    incident.triaged: the notification.sent that answers it carries the same state."""
    return {
        **dict.fromkeys(sorted(STATE_CHANGES - {INCIDENT_TRIAGED}), on_response_changed(outbox)),
        NOTIFICATION_SENT: on_notification_sent,
        EVIDENCE_COLLECTED: on_evidence_collected,
    }
