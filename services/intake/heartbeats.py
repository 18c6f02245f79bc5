"""Heartbeats (issue 14 §5): a client's job pings its heartbeat integration every interval
(`POST /v1/heartbeats/{key}`); no ping within the interval plus the grace opens an incident, and
a ping after that resolves its alert.

Both go through the alert path (`alerts.apply`) with the dedup key "heartbeat": a missed
heartbeat triggers, so an outage whose incident is still open counts on it, and one soon after
its incident was resolved reopens it (the flapping window); a ping resolves, and the incident
with it where the integration's `resolve_with_alerts` and the lifecycle allow.

An integration's `overdue_at` is when it is missed. A ping moves it on; the watch claims the
integrations past it (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer) and, in
the same transaction, clears it and triggers, so each outage triggers once however many
replicas watch, and a restarted intake catches up on what fell due while it was down. Should two
triggers meet anyway, the alert's open key is unique per integration (alerts.py), so they make
one incident. Before its first ping an integration is waiting: `overdue_at` is unset, and
nothing can be missed while its sender is still being set up.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import trace
from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.api.intake.v1.intake_pb2 import AlertEvent
from firebreak.database import reading
from firebreak.events import to_timestamp
from firebreak.keyset_pages import aware
from firebreak.outbox import Outbox
from firebreak.telemetry import current_span_id, current_trace_id
from firebreak.timer_passes import FailedPasses, run_passes
from services.intake import alerts
from services.intake.models import integrations

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

DEDUP_KEY = "heartbeat"
SEVERITY = "error"  # a missed heartbeat's; the integration's severity_mapping says what it means
BATCH = 50


@dataclass(frozen=True)
class Ping:
    overdue_at: datetime  # when the next one is missed
    resolved: bool  # it ended an outage


async def record_ping(outbox: Outbox, sender: alerts.Sender) -> Ping:
    """Records a ping of the sender's heartbeat integration; one that ends an outage resolves
    the outage's alert in the same transaction."""
    async with outbox.transaction() as connection:
        now = datetime.now(UTC)
        # Locked: a ping and the watch's claim of the same integration take turns.
        row = (
            await connection.execute(
                select(integrations).where(integrations.c.id == sender.row.id).with_for_update()
            )
        ).one()
        overdue_at = now + timedelta(seconds=row.interval_seconds + row.grace_seconds)
        await connection.execute(
            update(integrations)
            .where(integrations.c.id == row.id)
            .values(last_ping_at=now, overdue_at=overdue_at, down_since=None)
        )
        resolved = False
        if row.down_since is not None:
            outcome = await alerts.apply(
                connection,
                outbox=outbox,
                sender=alerts.Sender(row),
                event=AlertEvent(action="resolve", dedup_key=DEDUP_KEY),
                now=now,
                trace_id=current_trace_id(),
                span_id=current_span_id(),
            )
            resolved = outcome.result == "resolved"
    return Ping(overdue_at=overdue_at, resolved=resolved)


@dataclass
class HeartbeatWatch:
    """Opens the incident of each heartbeat missed, once per outage."""

    engine: AsyncEngine
    outbox: Outbox
    tick_seconds: float

    async def run(self, stopping: asyncio.Event) -> None:
        """Looks for missed heartbeats every tick until `stopping` is set. A failing pass is
        logged and tried again: a database hiccup must not end the watch."""
        await run_passes(
            stopping,
            self.run_due,
            tick_seconds=self.tick_seconds,
            failures=FailedPasses(log, "heartbeat pass"),
        )

    async def run_due(self) -> int:
        """Triggers the alert of each heartbeat past its `overdue_at`; how many there were."""
        now = datetime.now(UTC)
        # Most ticks find nothing: a read says so without a write transaction (on SQLite, the
        # database's one write lock).
        async with reading(self.engine) as connection:
            if (await connection.execute(ANY_OVERDUE, {"now": now})).first() is None:
                return 0
        async with self.outbox.transaction() as connection:
            due = list((await connection.execute(OVERDUE, {"now": now})).all())
            for row in due:
                with tracer.start_as_current_span("heartbeat missed"):
                    await self._missed(connection, row, now)
        return len(due)

    async def _missed(self, connection: AsyncConnection, row: Row[Any], now: datetime) -> None:
        await connection.execute(
            update(integrations)
            .where(integrations.c.id == row.id)
            .values(overdue_at=None, down_since=now)
        )
        await alerts.apply(
            connection,
            outbox=self.outbox,
            sender=alerts.Sender(row),
            event=missed_event(row),
            now=now,
            trace_id=current_trace_id(),
            span_id=current_span_id(),
        )


def missed_event(row: Row[Any]) -> AlertEvent:
    last_ping = aware(row.last_ping_at)
    overdue_at = aware(row.overdue_at)
    event = AlertEvent(
        action="trigger",
        dedup_key=DEDUP_KEY,
        summary=(
            f"No heartbeat from {row.name} since {last_ping:%Y-%m-%d %H:%M:%S} UTC (expected "
            f"every {row.interval_seconds:g} s, with {row.grace_seconds:g} s of grace)"
        ),
        severity=SEVERITY,
        source=row.service,
        details_json=json.dumps(
            {
                "last_ping_at": last_ping.isoformat(),
                "overdue_at": overdue_at.isoformat(),
                "interval_seconds": row.interval_seconds,
                "grace_seconds": row.grace_seconds,
            }
        ),
    )
    event.detected_at.CopyFrom(to_timestamp(overdue_at))
    return event


MISSED = (
    integrations.c.kind == "heartbeat",
    integrations.c.disabled_at.is_(None),
    integrations.c.overdue_at <= bindparam("now"),
)
ANY_OVERDUE = select(integrations.c.id).where(*MISSED).limit(1)
OVERDUE = (
    select(integrations)
    .where(*MISSED)
    .order_by(integrations.c.overdue_at)
    .limit(BATCH)
    .with_for_update(skip_locked=True)
)
