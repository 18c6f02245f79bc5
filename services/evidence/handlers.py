"""Evidence learns of incidents as they are reported."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.consumer import Handler
from firebreak.events import INCIDENT_REPORTED
from services.evidence import service


async def on_incident_reported(connection: AsyncConnection, event: EventEnvelope) -> None:
    await service.learn_incident(
        connection, incident_id=event.incident_id, client_id=event.client_id
    )


HANDLERS: dict[str, Handler] = {INCIDENT_REPORTED: on_incident_reported}
