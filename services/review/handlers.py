"""Review records every event about an incident on the incident's timeline."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.consumer import Handler
from firebreak.events import INCIDENT_EVENTS
from services.review import service


async def on_any_event(connection: AsyncConnection, event: EventEnvelope) -> None:
    await service.record_event(connection, event=event)


HANDLERS: dict[str, Handler] = dict.fromkeys(sorted(INCIDENT_EVENTS), on_any_event)
