"""Notify's domain logic: who hears about a triaged incident, and the record that they did."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.events import NOTIFICATION_SENT, new_event
from firebreak.outbox import Outbox
from services.notify.models import notifications

log = logging.getLogger(__name__)

# Until real channels exist, a notification is a structured log record (the "log" channel).
CHANNEL = "log"

INSERT_NOTIFICATION = notifications.insert()


async def notify_responders(
    connection: AsyncConnection, *, outbox: Outbox, triaged: events_pb2.EventEnvelope
) -> None:
    """Tells the client's responders about a triaged incident and records that it did."""
    priority = triaged.incident_triaged.priority
    audience = f"responders:{triaged.client_id}"
    subject = f"[{priority}] incident {triaged.incident_id} triaged"
    notification_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    log.info("notification %s to %s via %s: %s", notification_id, audience, CHANNEL, subject)
    await connection.execute(
        INSERT_NOTIFICATION,
        {
            "id": notification_id,
            "incident_id": triaged.incident_id,
            "client_id": triaged.client_id,
            "channel": CHANNEL,
            "audience": audience,
            "priority": priority,
            "subject": subject,
            "sent_at": now,
        },
    )
    await outbox.add(
        connection,
        new_event(
            NOTIFICATION_SENT,
            incident_id=triaged.incident_id,
            client_id=triaged.client_id,
            producer="notify",
            occurred_at=now,
            payload=events_pb2.NotificationSent(
                notification_id=notification_id,
                channel=CHANNEL,
                audience=audience,
                priority=priority,
                subject=subject,
                # Intake's registry takes the triage from here: one event instead of two.
                state=triaged.incident_triaged.state,
            ),
        ),
    )


async def list_notifications(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str
) -> list[Row[Any]]:
    query = (
        select(notifications)
        .where(notifications.c.incident_id == incident_id)
        .order_by(notifications.c.sent_at)
    )
    if client_id is not None:
        query = query.where(notifications.c.client_id == client_id)
    return list((await connection.execute(query)).all())
