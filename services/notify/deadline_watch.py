"""The deadline watch: reminders before each pending deadline falls due, and the miss when it
does (issue 9, §5).

One loop per replica. Each pass claims the deadlines whose `next_at` has come (`FOR UPDATE SKIP
LOCKED` on PostgreSQL; SQLite has one writer) and, in the same transaction, queues the messages,
writes the event and moves `next_at` on, so a notify killed and restarted, or a second replica,
reminds and records a miss once.

A reminder goes to the incident's communications lead and commander, else (neither known, or
neither reachable) to the firm's active managers inside the client's wall; a miss pages those
managers. When several reminders fell due together (notify was down), one goes out, for the
nearest lead time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.events import DEADLINE_MISSED, DEADLINE_REMINDER_SENT, new_event
from firebreak.keyset_pages import aware
from firebreak.outbox import Outbox
from firebreak.telemetry import span_in_context
from firebreak.timer_passes import FailedPasses, run_passes
from services.notify.deadlines import MISSED, PENDING, deadline_message
from services.notify.models import deadlines, people, update_cadences
from services.notify.outgoing import queue_message
from services.notify.templating import Templates

log = logging.getLogger(__name__)

BATCH = 50
REMINDED_ROLES = ("communications_lead", "incident_commander")


@dataclass(frozen=True)
class Recipient:
    id: str
    name: str


def duration(minutes: float) -> str:
    """A lead time as people say it: "24 hours", "90 minutes", "30 seconds"."""
    if minutes >= 60 and minutes % 60 == 0:
        hours = int(minutes // 60)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if minutes >= 1:
        return f"{minutes:g} minute{'s' if minutes != 1 else ''}"
    return f"{minutes * 60:g} seconds"


@dataclass
class DeadlineWatch:
    outbox: Outbox
    templates: Templates
    tick_seconds: float = 0.25

    async def run(self, stopping: asyncio.Event) -> None:
        """Reminds and records misses until `stopping` is set. A failing pass is logged and
        tried again: a database hiccup must not end the watch."""
        await run_passes(
            stopping,
            self.run_due,
            tick_seconds=self.tick_seconds,
            failures=FailedPasses(log, "deadline pass"),
        )

    async def run_due(self) -> int:
        now = datetime.now(UTC)
        async with self.outbox.transaction() as connection:
            query = (
                select(deadlines)
                .where(deadlines.c.status == PENDING, deadlines.c.next_at <= now)
                .order_by(deadlines.c.next_at)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
            due = list((await connection.execute(query)).all())
            for row in due:
                with span_in_context("deadline due", row.trace_context):
                    if aware(row.due_at) <= now:
                        await self._miss(connection, row, now=now)
                    else:
                        await self._remind(connection, row, now=now)
        return len(due)

    async def _remind(self, connection: AsyncConnection, row: Row[Any], *, now: datetime) -> None:
        due_at = aware(row.due_at)
        passed = [lead for lead in row.reminders if due_at - timedelta(minutes=lead) <= now]
        ahead = [lead for lead in row.reminders if lead not in passed]
        await connection.execute(
            update(deadlines)
            .where(deadlines.c.id == row.id)
            .values(
                reminders=ahead,
                next_at=due_at - timedelta(minutes=ahead[0]) if ahead else due_at,
                updated_at=now,
            )
        )
        lead = min(passed)  # next_at was the earliest reminder's moment: one has passed
        cadence = await _cadence(connection, row.incident_id)
        priority = cadence.priority if cadence else ""
        reminded = await self._send(
            connection, row, _role_holders(cadence), priority=priority, lead=lead, now=now
        )
        if not reminded:  # no role holder, or none reachable: the managers are told instead
            managers = await _managers(connection, row.client_id)
            reminded = await self._send(
                connection, row, managers, priority=priority, lead=lead, now=now
            )
        await self._event(
            connection,
            row,
            DEADLINE_REMINDER_SENT,
            events_pb2.DeadlineReminderSent(
                deadline=deadline_message(row), lead_minutes=lead, reminded=reminded
            ),
            now=now,
        )

    async def _miss(self, connection: AsyncConnection, row: Row[Any], *, now: datetime) -> None:
        await connection.execute(
            update(deadlines)
            .where(deadlines.c.id == row.id)
            .values(status=MISSED, reminders=[], next_at=None, updated_at=now)
        )
        cadence = await _cadence(connection, row.incident_id)
        paged = await self._send(
            connection,
            row,
            await _managers(connection, row.client_id),
            priority=cadence.priority if cadence else "",
            lead=None,
            now=now,
        )
        await self._event(
            connection,
            row,
            DEADLINE_MISSED,
            events_pb2.DeadlineMissed(deadline=deadline_message(row), escalated_to=paged),
            now=now,
        )

    async def _send(
        self,
        connection: AsyncConnection,
        row: Row[Any],
        recipients: list[Recipient],
        *,
        priority: str,
        lead: float | None,
        now: datetime,
    ) -> list[events_pb2.Person]:
        """Queues a reminder (`lead` minutes before due), or with no lead the page of a miss,
        to each recipient; those it could be queued for."""
        purpose = "deadline_missed" if lead is None else "deadline_reminder"
        reached = []
        for person in recipients:
            message = self.templates.render(
                purpose,  # the templates are named for the purpose
                person={"name": person.name},
                incident={
                    "id": row.incident_id,
                    "reference": row.reference,
                    "title": row.title,
                    "priority": priority,
                },
                deadline={
                    "id": row.id,
                    "kind": row.kind,
                    "rule": row.rule,
                    "flag": row.flag or "",
                    "source": row.source,
                    "met_by": row.met_by,
                    "due_at": f"{aware(row.due_at):%Y-%m-%d %H:%M:%S}",
                },
                lead=duration(lead) if lead is not None else "",
            )
            queued = await queue_message(
                connection,
                incident_id=row.incident_id,
                client_id=row.client_id,
                reference=row.reference,
                priority=priority,
                person_id=person.id,
                purpose=purpose,
                subject=message.subject,
                text=message.text,
                html=message.html,
                trace_context=row.trace_context,
                now=now,
            )
            if queued:
                reached.append(events_pb2.Person(id=person.id, name=person.name))
        return reached

    async def _event(
        self,
        connection: AsyncConnection,
        row: Row[Any],
        event_type: str,
        payload: Any,
        *,
        now: datetime,
    ) -> None:
        await self.outbox.add(
            connection,
            new_event(
                event_type,
                incident_id=row.incident_id,
                client_id=row.client_id,
                producer="notify",
                occurred_at=now,
                payload=payload,
            ),
        )


async def _cadence(connection: AsyncConnection, incident_id: str) -> Row[Any] | None:
    """What notify knows of the incident from its lifecycle events (update_cadence.py keeps
    it): its priority and role holders."""
    query = select(update_cadences).where(update_cadences.c.incident_id == incident_id)
    return (await connection.execute(query)).first()


def _role_holders(cadence: Row[Any] | None) -> list[Recipient]:
    """The incident's communications lead and commander, each once."""
    if cadence is None:
        return []
    found: dict[str, Recipient] = {}
    for role in REMINDED_ROLES:
        holder = (cadence.roles or {}).get(role) or {}
        if holder.get("id"):
            found.setdefault(holder["id"], Recipient(holder["id"], holder.get("name", "")))
    return list(found.values())


async def _managers(connection: AsyncConnection, client_id: str) -> list[Recipient]:
    """The firm's active managers whose ethical wall lets them see the client."""
    rows = await connection.execute(
        select(people.c.id, people.c.name, people.c.clients)
        .where(
            people.c.role == "manager",
            people.c.active.is_(True),
            people.c.client_id == "operator",
        )
        .order_by(people.c.name, people.c.id)
    )
    return [
        Recipient(row.id, row.name)
        for row in rows
        if row.clients is None or client_id in row.clients or client_id == "operator"
    ]
