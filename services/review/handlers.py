"""Review records every event about an incident on the incident's timeline."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.consumer import Handler
from firebreak.events import (
    ACTION_ADDED,
    ACTION_EFFECTIVENESS_CHECK_DUE,
    ACTION_EFFECTIVENESS_CHECKED,
    ACTION_OVERDUE,
    ACTION_UPDATED,
    ALERT_EVENTS,
    ANALYSIS_UPDATED,
    INCIDENT_EVENTS,
    NOTE_ADDED,
    PIR_DRAFTED,
    PIR_EDITED,
    PIR_SIGNED,
)
from services.review import records, service

# Review's own events are on the timeline from the transaction that produced them.
OWN_EVENTS = frozenset(
    {
        NOTE_ADDED,
        ANALYSIS_UPDATED,
        ACTION_ADDED,
        ACTION_UPDATED,
        ACTION_OVERDUE,
        ACTION_EFFECTIVENESS_CHECK_DUE,
        ACTION_EFFECTIVENESS_CHECKED,
        PIR_DRAFTED,
        PIR_EDITED,
        PIR_SIGNED,
    }
)


async def on_any_event(connection: AsyncConnection, event: EventEnvelope) -> None:
    await service.record_event(connection, event=event)
    await records.project(connection, event)  # the PIR's, closure's and metrics' copies


# Intake's alert events too: what a client's monitoring said is part of the record, beside what
# triage did about it.
HANDLERS: dict[str, Handler] = dict.fromkeys(
    sorted((INCIDENT_EVENTS | ALERT_EVENTS) - OWN_EVENTS), on_any_event
)
