"""Triage reacts to new reports, and to what a client's monitoring says of their alerts."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.consumer import Handler
from firebreak.events import ALERT_EVENTS, INCIDENT_REPORTED
from firebreak.outbox import Outbox
from services.triage import service
from services.triage.alert_commands import apply_alert
from services.triage.service import Rules


def build_handlers(*, outbox: Outbox, rules: Rules, instance_id: str) -> dict[str, Handler]:
    async def on_incident_reported(connection: AsyncConnection, event: EventEnvelope) -> None:
        await service.triage_incident(
            connection, outbox=outbox, rules=rules, reported=event, decided_by=instance_id
        )

    async def on_alert_changed(connection: AsyncConnection, event: EventEnvelope) -> None:
        await apply_alert(connection, outbox=outbox, rules=rules, event=event)

    return {
        INCIDENT_REPORTED: on_incident_reported,
        **dict.fromkeys(sorted(ALERT_EVENTS), on_alert_changed),
    }
