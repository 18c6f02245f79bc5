"""Intake keeps the registry current from what the other services report on the bus."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.consumer import Handler
from firebreak.events import INCIDENT_TRIAGED, NOTIFICATION_SENT, from_timestamp
from services.intake import service


async def on_incident_triaged(connection: AsyncConnection, event: EventEnvelope) -> None:
    await service.record_triage(
        connection,
        incident_id=event.incident_id,
        priority=event.incident_triaged.priority,
        triaged_at=from_timestamp(event.occurred_at),
    )


async def on_notification_sent(connection: AsyncConnection, event: EventEnvelope) -> None:
    await service.record_notification(
        connection, incident_id=event.incident_id, notified_at=from_timestamp(event.occurred_at)
    )


HANDLERS: dict[str, Handler] = {
    INCIDENT_TRIAGED: on_incident_triaged,
    NOTIFICATION_SENT: on_notification_sent,
}
