"""Evidence learns of incidents as they are reported, and follows their lifecycle status (its
evidence may be disposed of only once an incident ended)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.consumer import Handler
from firebreak.events import INCIDENT_REPORTED, PAYLOAD_FIELDS, STATE_CHANGES
from services.evidence import service


async def on_incident_reported(connection: AsyncConnection, event: EventEnvelope) -> None:
    await service.learn_incident(
        connection, incident_id=event.incident_id, client_id=event.client_id
    )


async def on_state_change(connection: AsyncConnection, event: EventEnvelope) -> None:
    state = getattr(event, PAYLOAD_FIELDS[event.type]).state
    await service.track_status(
        connection,
        incident_id=event.incident_id,
        client_id=event.client_id,
        status=state.status,
        version=state.version,
    )


HANDLERS: dict[str, Handler] = {
    INCIDENT_REPORTED: on_incident_reported,
    **dict.fromkeys(sorted(STATE_CHANGES), on_state_change),
}
