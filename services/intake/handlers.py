"""Intake keeps the registry current from what the other services report on the bus."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.consumer import Handler
from firebreak.events import NOTIFICATION_SENT, PAYLOAD_FIELDS, STATE_CHANGES, from_timestamp
from services.intake import service


async def on_response_changed(connection: AsyncConnection, event: EventEnvelope) -> None:
    """Every lifecycle event carries the whole response state after it."""
    payload = getattr(event, PAYLOAD_FIELDS[event.type])
    await service.record_response(connection, incident_id=event.incident_id, state=payload.state)


async def on_notification_sent(connection: AsyncConnection, event: EventEnvelope) -> None:
    await service.record_notification(
        connection, incident_id=event.incident_id, notified_at=from_timestamp(event.occurred_at)
    )


HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(sorted(STATE_CHANGES), on_response_changed),
    NOTIFICATION_SENT: on_notification_sent,
}
