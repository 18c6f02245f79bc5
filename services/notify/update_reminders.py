"""The loop that reminds of overdue status updates (update_cadence.py has the rules).

One loop per replica. Each pass claims the incidents whose update is overdue, in the
transaction that queues the reminders (outgoing.py: the Pager's loop sends them), records
`status_update.overdue` and sets the next due time, so each reminder is sent once however many
replicas run and whenever one is killed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.events import STATUS_UPDATE_OVERDUE, new_event, to_timestamp
from firebreak.outbox import Outbox
from firebreak.telemetry import current_trace_context, span_in_context
from firebreak.timer_passes import FailedPasses, run_passes
from services.notify import update_cadence
from services.notify.models import people
from services.notify.outgoing import queue_message
from services.notify.templating import Templates
from services.notify.update_cadence import Cadence

log = logging.getLogger(__name__)

BATCH = 50
REMINDED_FIRST = ("communications_lead", "incident_commander")
STAFF_ROLES = frozenset({"responder", "manager", "admin"})
FIRM = "operator"  # the client id of the firm's own people


@dataclass(frozen=True)
class Reminded:
    id: str
    name: str


@dataclass
class UpdateReminders:
    outbox: Outbox
    templates: Templates
    cadence: Cadence
    tick_seconds: float = 0.25

    async def run(self, stopping: asyncio.Event) -> None:
        """Reminds of overdue updates until `stopping` is set; a failing pass is logged and
        tried again."""
        await run_passes(
            stopping,
            self.remind_due,
            tick_seconds=self.tick_seconds,
            failures=FailedPasses(log, "update reminder pass"),
        )

    async def remind_due(self) -> int:
        now = datetime.now(UTC)
        async with self.outbox.transaction() as connection:
            due = await update_cadence.due_cadences(connection, now=now, limit=BATCH)
            for row in due:
                with span_in_context("status update overdue", row.trace_context):
                    await self._remind(connection, row, now=now)
        return len(due)

    async def _remind(self, connection: AsyncConnection, row: Row[Any], *, now: datetime) -> None:
        due = _utc(row.next_due_at)
        last = _utc(row.last_update_at) if row.last_update_at is not None else None
        interval = self.cadence.interval(row.priority) or timedelta()
        whom = await whom_to_remind(connection, row)
        for person in whom:
            message = self.templates.render(
                "update_reminder",
                incident={
                    "id": row.incident_id,
                    "reference": row.reference,
                    "title": row.title,
                    "priority": row.priority,
                    "status": row.status,
                },
                person={"id": person.id, "name": person.name},
                due_at=f"{due:%Y-%m-%d %H:%M:%S} UTC",
                last_update_at=f"{last:%Y-%m-%d %H:%M:%S} UTC" if last else None,
                interval=spoken(interval),
            )
            await queue_message(
                connection,
                incident_id=row.incident_id,
                client_id=row.client_id,
                reference=row.reference,
                priority=row.priority,
                person_id=person.id,
                purpose="update_reminder",
                subject=message.subject,
                text=message.text,
                html=message.html,
                trace_context=current_trace_context(),
                now=now,
            )
        overdue = events_pb2.StatusUpdateOverdue(
            priority=row.priority,
            due_at=to_timestamp(due),
            interval_minutes=interval.total_seconds() / 60,
            reminded=[events_pb2.Person(id=person.id, name=person.name) for person in whom],
        )
        if last is not None:
            overdue.last_update_at.CopyFrom(to_timestamp(last))
        await self.outbox.add(
            connection,
            new_event(
                STATUS_UPDATE_OVERDUE,
                incident_id=row.incident_id,
                client_id=row.client_id,
                producer="notify",
                occurred_at=now,
                payload=overdue,
            ),
        )
        await update_cadence.reminded(connection, cadence=self.cadence, row=row, now=now)


async def whom_to_remind(connection: AsyncConnection, row: Row[Any]) -> list[Reminded]:
    """The communications lead; without one (or one notify cannot reach: deactivated, or not
    known yet), the commander; without either, the firm's active managers inside the wall."""
    for role in REMINDED_FIRST:
        holder = row.roles.get(role)
        if holder is None:
            continue
        found = (
            await connection.execute(
                select(people.c.name).where(
                    people.c.id == holder["id"],
                    people.c.active.is_(True),
                    people.c.role.in_(STAFF_ROLES),
                )
            )
        ).first()
        if found is not None:
            return [Reminded(holder["id"], found.name)]
    managers = await connection.execute(
        select(people.c.id, people.c.name, people.c.clients)
        .where(people.c.role == "manager", people.c.active.is_(True), people.c.client_id == FIRM)
        .order_by(people.c.name, people.c.id)
    )
    return [
        Reminded(manager.id, manager.name)
        for manager in managers
        if manager.clients is None or row.client_id in manager.clients
    ]


def spoken(interval: timedelta) -> str:
    """An interval as a reminder says it: "30 minutes", "2 hours", "1 day", "6 seconds"."""
    seconds = interval.total_seconds()
    for unit, length in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= length and seconds % length == 0:
            count = int(seconds // length)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} seconds"


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything Firebreak stores is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
