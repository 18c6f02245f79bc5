"""Reminding an action's owner when review raises one of its alarms: the action fell overdue, or
its effectiveness check fell due. The reminder is an email (queue_message, through the owner's
contact methods), rendered from the `action_overdue` or `effectiveness_check_due` templates."""

from __future__ import annotations

from google.protobuf.message import Message
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.consumer import Handler
from firebreak.events import (
    ACTION_EFFECTIVENESS_CHECK_DUE,
    ACTION_OVERDUE,
    PAYLOAD_FIELDS,
    from_timestamp,
)
from firebreak.telemetry import current_trace_context
from services.notify.models import update_cadences
from services.notify.outgoing import queue_message
from services.notify.templating import Templates

# The reminder each alarm sends; each is also the delivery's purpose and the templates' name.
PURPOSES = {
    ACTION_OVERDUE: "action_overdue",
    ACTION_EFFECTIVENESS_CHECK_DUE: "effectiveness_check_due",
}


def _utc(message: Message, field: str) -> str:
    """The time `field` of `message` holds, for a person to read (UTC); empty when unset."""
    if not message.HasField(field):
        return ""
    return f"{from_timestamp(getattr(message, field)):%Y-%m-%d %H:%M}"


def reminder_handlers(templates: Templates) -> dict[str, Handler]:
    async def on_action_alarm(connection: AsyncConnection, event: EventEnvelope) -> None:
        purpose = PURPOSES[event.type]
        action = getattr(event, PAYLOAD_FIELDS[event.type]).action
        # The incident's priority as notify last saw it (it follows every incident's state).
        priority = (
            await connection.execute(
                select(update_cadences.c.priority).where(
                    update_cadences.c.incident_id == event.incident_id
                )
            )
        ).scalar() or ""
        message = templates.render(
            purpose,
            incident={
                "id": event.incident_id,
                "reference": action.incident_reference,
                "title": action.incident_title,
                "priority": priority,
            },
            action={
                "id": action.id,
                "kind": action.kind,
                "title": action.title,
                "description": action.description,
                "status": action.status.replace("_", " "),
                "due_at": _utc(action, "due_at"),
                "done_at": _utc(action, "done_at"),
                "check_due_at": _utc(action.effectiveness, "due_at"),
            },
            person={"id": action.owner.id, "name": action.owner.name},
        )
        await queue_message(
            connection,
            incident_id=event.incident_id,
            client_id=event.client_id,
            reference=action.incident_reference,
            priority=priority,
            person_id=action.owner.id,
            purpose=purpose,
            subject=message.subject,
            text=message.text,
            html=message.html,
            trace_context=current_trace_context(),
            now=from_timestamp(event.occurred_at),
        )

    return dict.fromkeys(sorted(PURPOSES), on_action_alarm)
