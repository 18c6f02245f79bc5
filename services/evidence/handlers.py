"""Evidence follows whose each incident is and whether it ended (its evidence may be disposed of
only once it did), from the few lifecycle events that tell it: each one consumed costs a
wake-up, a transaction and an inbox row per incident. Not incident.reported: an item collected
before the incident.triaged arrives brings its client with it (collection.py)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.consumer import Handler
from firebreak.events import (
    INCIDENT_CLOSED,
    INCIDENT_DECLINED,
    INCIDENT_MERGED,
    INCIDENT_REOPENED,
    INCIDENT_TRIAGED,
    PAYLOAD_FIELDS,
)
from services.evidence import service

# The first state every incident reaches, then the only changes into or out of an ended one
# (service.ENDED): the others (acknowledged, contained, resolved, roles, responders,
# reclassification) leave an incident open, so they change nothing evidence decides.
FOLLOWED = frozenset(
    {INCIDENT_TRIAGED, INCIDENT_CLOSED, INCIDENT_DECLINED, INCIDENT_MERGED, INCIDENT_REOPENED}
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


HANDLERS: dict[str, Handler] = dict.fromkeys(sorted(FOLLOWED), on_state_change)
