"""Notify reacts to triage decisions."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.consumer import Handler
from firebreak.events import INCIDENT_TRIAGED
from firebreak.outbox import Outbox
from services.notify import service


def build_handlers(*, outbox: Outbox) -> dict[str, Handler]:
    async def on_incident_triaged(connection: AsyncConnection, event: EventEnvelope) -> None:
        await service.notify_responders(connection, outbox=outbox, triaged=event)

    return {INCIDENT_TRIAGED: on_incident_triaged}
