"""How often an incident's status updates are expected, and when the next one falls due.

Each priority has an interval (FIREBREAK_UPDATE_CADENCE_MINUTES; none for a priority not named).
The next update is due one interval after triage, then after the last update (either
audience). When it is overdue the communications lead is reminded (else the commander, else the
firm's managers inside the client's wall), and the next reminder falls one interval later.
Reclassification changes the interval; resolution, closure, decline or merge stops the
cadence; reopening starts it again from then.

Notify learns each incident's priority, status and role holders from the lifecycle events it
consumes (each carries the whole ResponseState, with a version: an older one changes nothing).
The due time is a row (`update_cadences`), claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL
(SQLite has one writer) inside the transaction that reminds, so a restarted notify, or two
replicas, remind once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Executable, Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope, Person, ResponseState
from firebreak.database import key_params, update_by, upsert_insert
from firebreak.events import (
    INCIDENT_REOPENED,
    INCIDENT_TRIAGED,
    PAYLOAD_FIELDS,
    from_timestamp,
)
from firebreak.telemetry import current_trace_context
from services.notify.models import update_cadences

# No update is expected once the incident no longer needs work, nor before it is triaged.
QUIET_STATUSES = frozenset({"reported", "resolved", "closed", "declined", "merged"})
ROLES = ("incident_commander", "communications_lead", "scribe")


@dataclass(frozen=True)
class Cadence:
    """Minutes expected between status updates, per priority (Settings.update_cadence)."""

    minutes: Mapping[str, float]

    def interval(self, priority: str) -> timedelta | None:
        minutes = self.minutes.get(priority)
        return timedelta(minutes=minutes) if minutes else None

    def next_due(self, *, priority: str, status: str, since: datetime) -> datetime | None:
        interval = self.interval(priority)
        if interval is None or status in QUIET_STATUSES:
            return None
        return since + interval


def roles_of(state: ResponseState) -> dict[str, Any]:
    """The state's role holders and responders, as `update_cadences.roles` keeps them."""

    def person(holder: Person) -> dict[str, str] | None:
        return {"id": holder.id, "name": holder.name} if holder.id else None

    roles: dict[str, Any] = {role: person(getattr(state, role)) for role in ROLES}
    roles["responders"] = [{"id": p.id, "name": p.name} for p in state.responders]
    return roles


async def follow_event(
    connection: AsyncConnection, event: EventEnvelope, *, cadence: Cadence
) -> None:
    """Takes in a lifecycle event's ResponseState: triage starts the cadence, reopening starts
    it again, every other change may change its interval or stop it."""
    payload = getattr(event, PAYLOAD_FIELDS[event.type])
    triaged = event.incident_triaged if event.type == INCIDENT_TRIAGED else None
    await follow_state(
        connection,
        cadence=cadence,
        incident_id=event.incident_id,
        client_id=event.client_id,
        state=payload.state,
        at=from_timestamp(event.occurred_at),
        reference=triaged.reference if triaged else "",
        title=triaged.title if triaged else "",
        restart=event.type == INCIDENT_REOPENED,
    )


async def follow_state(
    connection: AsyncConnection,
    *,
    cadence: Cadence,
    incident_id: str,
    client_id: str,
    state: ResponseState,
    at: datetime,
    reference: str = "",
    title: str = "",
    restart: bool = False,
) -> None:
    """Keeps the incident's newest state and sets its next due time from it. A state older
    than the one kept changes nothing (events may come twice or out of order)."""
    row = (
        await connection.execute(
            select(update_cadences).where(update_cadences.c.incident_id == incident_id)
        )
    ).first()
    if row is not None and state.version <= row.state_version:
        return
    values: dict[str, Any] = {
        "priority": state.priority,
        "status": state.status,
        "state_version": state.version,
        "roles": roles_of(state),
        "updated_at": at,
    }
    if reference:
        values |= {"reference": reference, "title": title[:200]}
    if row is None:
        triaged_at = from_timestamp(state.triaged_at) if state.HasField("triaged_at") else at
        since = at if restart else triaged_at
        # Another transaction may make the row first (the consumer's incident.triaged and a
        # status update posted at once): then this state applies to its row as a change.
        inserted = await connection.execute(
            _insert_if_new(connection.dialect.name),
            values
            | {
                "incident_id": incident_id,
                "client_id": client_id,
                "reference": reference or incident_id[:8],
                "title": title[:200],
                "since": since,
                "last_update_at": None,
                "next_due_at": cadence.next_due(
                    priority=state.priority, status=state.status, since=since
                ),
                # Reminders join the trace of what started the cadence (triage, usually).
                "trace_context": current_trace_context(),
            },
        )
        if inserted.rowcount == 0:
            await follow_state(
                connection,
                cadence=cadence,
                incident_id=incident_id,
                client_id=client_id,
                state=state,
                at=at,
                reference=reference,
                title=title,
                restart=restart,
            )
        return
    since = at if restart else row.since
    values |= {
        "since": since,
        "next_due_at": cadence.next_due(priority=state.priority, status=state.status, since=since),
    }
    await connection.execute(
        update_by(update_cadences, "incident_id"), values | key_params({"incident_id": incident_id})
    )


@cache
def _insert_if_new(dialect: str) -> Executable:
    return upsert_insert(dialect, update_cadences).on_conflict_do_nothing(
        index_elements=["incident_id"]
    )


async def count_update(
    connection: AsyncConnection, *, cadence: Cadence, incident_id: str, posted_at: datetime
) -> None:
    """A status update was posted: the next is due one interval after it."""
    row = (
        await connection.execute(
            select(update_cadences).where(update_cadences.c.incident_id == incident_id)
        )
    ).first()
    if row is None:
        return
    since = max(_aware(row.since), posted_at)
    await connection.execute(
        update(update_cadences)
        .where(update_cadences.c.incident_id == incident_id)
        .values(
            since=since,
            last_update_at=posted_at,
            next_due_at=cadence.next_due(priority=row.priority, status=row.status, since=since),
            updated_at=posted_at,
        )
    )


async def due_cadences(connection: AsyncConnection, *, now: datetime, limit: int) -> list[Row[Any]]:
    """Claims incidents whose next update is overdue; other replicas skip the claimed rows."""
    query = (
        select(update_cadences)
        .where(update_cadences.c.next_due_at <= now)
        .order_by(update_cadences.c.next_due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await connection.execute(query)).all())


async def reminded(
    connection: AsyncConnection, *, cadence: Cadence, row: Row[Any], now: datetime
) -> None:
    """The overdue update was reminded of: the next reminder falls one interval after it was
    due, or, when notify was away longer than an interval, one interval from now (missed
    reminders are not sent in a burst)."""
    due = _aware(row.next_due_at)
    interval = cadence.interval(row.priority)
    since = now if interval is None or now - due >= interval else due
    await connection.execute(
        update(update_cadences)
        .where(update_cadences.c.incident_id == row.incident_id)
        .values(
            since=since,
            next_due_at=cadence.next_due(priority=row.priority, status=row.status, since=since),
            updated_at=now,
        )
    )


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything Firebreak stores is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
