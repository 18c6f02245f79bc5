"""Review's timer: actions that fell overdue, and effectiveness checks that fell due.

The next alarm of each action is its row's `alarm_at`, never only in memory: a review that
restarts (or another replica) raises every alarm that fell due, once, because each is claimed
inside the transaction that records it (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one
writer). Each alarm is an event on the timeline; notify reminds the action's owner of it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.events import ACTION_EFFECTIVENESS_CHECK_DUE, ACTION_OVERDUE, new_event
from firebreak.keyset_pages import aware
from firebreak.outbox import Outbox
from firebreak.telemetry import span_in_context
from firebreak.timer_passes import FailedPasses, run_passes
from services.review.action_states import PENDING
from services.review.actions import DUE, SCHEDULED, action_message, next_alarm
from services.review.models import action_items
from services.review.service import emit

log = logging.getLogger(__name__)

BATCH = 50


async def raise_alarm(
    connection: AsyncConnection, *, outbox: Outbox, row: Row[Any], now: datetime
) -> None:
    """Raises the action's alarm that fell due (if any still applies) and sets its next."""
    changes: dict[str, Any] = {}
    if row.status in PENDING and row.overdue_reminded_at is None and aware(row.due_at) <= now:
        changes["overdue_reminded_at"] = now
        event_type = ACTION_OVERDUE
    elif row.check_status == SCHEDULED and aware(row.check_due_at) <= now:
        changes["check_status"] = DUE
        event_type = ACTION_EFFECTIVENESS_CHECK_DUE
    else:
        event_type = ""  # a stale alarm: the action moved on since it was set
    changes["alarm_at"] = next_alarm(dict(row._mapping) | changes)
    updated = (
        await connection.execute(
            update(action_items)
            .where(action_items.c.id == row.id)
            .values(changes)
            .returning(*action_items.c)
        )
    ).one()
    if not event_type:
        return
    item = action_message(updated, now=now)
    payload = (
        events_pb2.ActionOverdue(action=item)
        if event_type == ACTION_OVERDUE
        else events_pb2.ActionEffectivenessCheckDue(action=item)
    )
    await emit(
        connection,
        outbox=outbox,
        event=new_event(
            event_type,
            incident_id=row.incident_id,
            client_id=row.client_id,
            producer="review",
            payload=payload,
            occurred_at=now,
        ),
    )


@dataclass
class ActionAlarms:
    outbox: Outbox
    tick_seconds: float = 0.5

    async def run(self, stopping: asyncio.Event) -> None:
        """Raises due alarms until `stopping` is set. A failing pass is logged and tried
        again: the timer must outlive a database hiccup."""
        await run_passes(
            stopping,
            self.raise_due_alarms,
            tick_seconds=self.tick_seconds,
            failures=FailedPasses(log, "action alarm pass"),
        )

    async def raise_due_alarms(self) -> int:
        now = datetime.now(UTC)
        async with self.outbox.transaction() as connection:
            due = (
                await connection.execute(
                    select(action_items)
                    .where(action_items.c.alarm_at <= now)
                    .order_by(action_items.c.alarm_at)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in due:
                # In the trace of the request that added the action.
                with span_in_context("action alarm", row.trace_context):
                    await raise_alarm(connection, outbox=self.outbox, row=row, now=now)
        return len(due)
