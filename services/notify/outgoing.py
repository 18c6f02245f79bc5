"""Messages that are not pages: status updates, reminders, deadline warnings.

They travel the pages' road: one row in `deliveries` per person, sent by the Pager's loop with
its retries and backoff, tried on the person's next contact method when one finally fails
(contact_methods.queue_next_method), and listed with the incident's deliveries. What sets them
apart is their `purpose`: only a page's final failure moves an escalation on, and only pages
are announced on the timeline (page.delivered / page.failed) as they go out.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notify.models import deliveries, people

PAGE = "page"
PURPOSES = frozenset(
    {
        "status_update",
        "update_reminder",
        "deadline_reminder",
        "deadline_missed",
        "action_overdue",
        "effectiveness_check_due",
        "integrity_failed",
    }
)  # besides PAGE, which escalation.py queues with its acknowledge link
EMAIL = "email"
EMAIL_INDEX = 0  # the person's own email: their first contact method


async def queue_message(
    connection: AsyncConnection,
    *,
    incident_id: str,
    client_id: str,
    reference: str,
    priority: str,
    person_id: str,
    purpose: str,
    subject: str,
    text: str,
    html: str | None,
    trace_context: dict[str, str],
    now: datetime,
) -> int:
    """Queues the message to the person's first contact method (their email), due at once;
    how many deliveries were queued: 0 when notify does not know the person or they are
    deactivated, else 1. It is written in the caller's transaction, with what that records."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose {purpose!r}: expected one of {sorted(PURPOSES)}")
    person = (
        await connection.execute(
            select(people.c.name, people.c.email, people.c.active).where(people.c.id == person_id)
        )
    ).first()
    if person is None or not person.active:
        return 0
    await connection.execute(
        deliveries.insert().values(
            id=str(uuid.uuid4()),
            incident_id=incident_id,
            client_id=client_id,
            person_id=person_id,
            person_name=person.name,
            step=0,
            channel=EMAIL,
            address=person.email,
            method_index=EMAIL_INDEX,
            status="pending",
            attempts=0,
            due_at=now,
            reference=reference,
            priority=priority,
            subject=subject[:300],
            body=text,
            html=html,
            ack_url=None,
            purpose=purpose,
            created_at=now,
            trace_context=trace_context,
        )
    )
    return 1
