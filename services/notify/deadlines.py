"""An incident's deadlines (issue 9, §5): the regulatory ones its flags start (the table in
deadline_rules.py), the contractual ones its client's rules start (contractual_rules.py) when it
is triaged or reclassified into a listed priority, and recording them met.

Each deadline is a row with its due time and its next reminder (`next_at`), which the deadline
watch (deadline_watch.py) claims when it falls due. Functions here take the caller's connection
and never commit; each writes its rows and its events (outbox) in the caller's transaction.

Declining or merging an incident cancels its pending contractual deadlines (the client's
contract is about an incident that turned out not to be one, or lives on in the survivor);
regulatory ones stay, since the legal duty does not vanish with the ticket.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.errors import Conflict, InvalidArgument, NotFound
from firebreak.events import (
    DEADLINE_MARKED_NOT_APPLICABLE,
    DEADLINE_MET,
    DEADLINE_STARTED,
    INCIDENT_FLAGGED,
    SYSTEM,
    new_event,
    to_timestamp,
)
from firebreak.keyset_pages import aware
from firebreak.outbox import Outbox
from firebreak.telemetry import current_trace_context
from services.notify import contractual_rules, deadline_rules
from services.notify.models import deadlines, incident_flags

REGULATORY, CONTRACTUAL = "regulatory", "contractual"
PENDING, MET, MISSED, CANCELLED = "pending", "met", "missed", "cancelled"
NOT_APPLICABLE = "not_applicable"  # set aside with a reason (issue 11, §4)
MAX_REASON = 200  # kept in met_reference, beside what a met deadline was met with
MANUAL, CLIENT_UPDATE = contractual_rules.MANUAL, contractual_rules.CLIENT_UPDATE
# Clocks disagree a little (the gateway's and ours); an awareness further ahead is a mistake.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Incident:
    """What a deadline's reminders and pages name."""

    id: str
    client_id: str
    reference: str
    title: str


@dataclass(frozen=True)
class Flagged:
    flagged: list[str]  # set by this request
    already_set: list[str]  # set before: nothing started again
    started: list[Row[Any]]  # the deadlines this request started, by due time


def reminder_plan(
    due_at: datetime, leads: Sequence[float], *, now: datetime
) -> tuple[list[float], datetime]:
    """The lead times (minutes, largest first) whose reminders are still ahead of `now`, and
    when the deadline watch looks next: the first of those, else the due time. A reminder
    whose moment passed before the deadline started is not sent late."""
    ahead = sorted((lead for lead in leads if due_at - timedelta(minutes=lead) > now), reverse=True)
    next_at = due_at - timedelta(minutes=ahead[0]) if ahead else due_at
    return ahead, next_at


def deadline_message(row: Row[Any]) -> events_pb2.Deadline:
    """The deadline as events carry it."""
    return events_pb2.Deadline(
        id=row.id,
        kind=row.kind,
        rule=row.rule,
        flag=row.flag or "",
        source=row.source,
        due_at=to_timestamp(row.due_at),
    )


async def flag_incident(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    incident: Incident,
    flags: Sequence[str],
    aware_at: datetime,
    detected_at: datetime,
    actor: events_pb2.Actor,
    leads: Sequence[float],
    now: datetime,
) -> Flagged:
    """Sets `flags`; each not set before starts its regulatory deadlines, from `aware_at`
    (for dora also the classification as major: flagging it is that classification) and the
    incident's `detected_at`. Writes incident.flagged (unless every flag was set already) and
    a deadline.started per deadline."""
    for flag in flags:
        if flag not in deadline_rules.FLAGS:
            raise InvalidArgument(
                "flags", f"unknown flag {flag!r}: one of {', '.join(deadline_rules.FLAGS)}"
            )
    if aware_at > now + CLOCK_SKEW:
        raise InvalidArgument("aware_at", "must not be in the future")
    set_before = set(
        (
            await connection.execute(
                select(incident_flags.c.flag).where(incident_flags.c.incident_id == incident.id)
            )
        ).scalars()
    )
    wanted = list(dict.fromkeys(flags))  # each once, in the order given
    new = [flag for flag in wanted if flag not in set_before]
    started: list[Row[Any]] = []
    if new:
        await outbox.add(
            connection,
            new_event(
                INCIDENT_FLAGGED,
                incident_id=incident.id,
                client_id=incident.client_id,
                producer="notify",
                occurred_at=now,
                actor=actor,
                payload=events_pb2.IncidentFlagged(flags=new, aware_at=to_timestamp(aware_at)),
            ),
        )
    for flag in new:
        await connection.execute(
            incident_flags.insert().values(
                incident_id=incident.id,
                flag=flag,
                client_id=incident.client_id,
                aware_at=aware_at,
                flagged_at=now,
                flagged_by=actor.name,
            )
        )
        for due in deadline_rules.deadlines_for(
            flag, aware_at=aware_at, detected_at=detected_at, classified_at=aware_at
        ):
            row = await _start(
                connection,
                outbox=outbox,
                incident=incident,
                kind=REGULATORY,
                rule=due.rule,
                flag=flag,
                source=due.source,
                met_by=MANUAL,
                due_at=due.due_at,
                leads=leads,
                actor=actor,
                now=now,
            )
            if row is not None:
                started.append(row)
    return Flagged(
        flagged=new,
        already_set=[flag for flag in wanted if flag in set_before],
        started=sorted(started, key=lambda row: row.due_at),
    )


async def start_contractual(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    incident: Incident,
    priority: str,
    leads: Sequence[float],
    now: datetime,
) -> int:
    """Starts each of the client's rules that lists `priority` and has not started for this
    incident yet, counted from `now` (when the incident was triaged, or reclassified into the
    priority). Returns how many started."""
    count = 0
    for rule in await contractual_rules.rules_of(connection, incident.client_id):
        if priority not in rule["priorities"]:
            continue
        started = await _start(
            connection,
            outbox=outbox,
            incident=incident,
            kind=CONTRACTUAL,
            rule=rule["name"],
            flag=None,
            source=rule["description"] or rule["name"],
            met_by=rule["met_by"],
            due_at=now + timedelta(minutes=float(rule["within_minutes"])),
            leads=leads,
            actor=SYSTEM,
            now=now,
        )
        count += started is not None
    return count


async def _start(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    incident: Incident,
    kind: str,
    rule: str,
    flag: str | None,
    source: str,
    met_by: str,
    due_at: datetime,
    leads: Sequence[float],
    actor: events_pb2.Actor,
    now: datetime,
) -> Row[Any] | None:
    """Starts one deadline and says so; None when the rule started for the incident before."""
    exists = await connection.execute(
        select(deadlines.c.id).where(
            deadlines.c.incident_id == incident.id,
            deadlines.c.kind == kind,
            deadlines.c.rule == rule,
        )
    )
    if exists.first() is not None:
        return None
    reminders, next_at = reminder_plan(due_at, leads, now=now)
    values = {
        "id": str(uuid.uuid4()),
        "incident_id": incident.id,
        "client_id": incident.client_id,
        "reference": incident.reference,
        "title": incident.title[:200],
        "kind": kind,
        "rule": rule,
        "flag": flag,
        "source": source[:1000],
        "met_by": met_by,
        "due_at": due_at,
        "status": PENDING,
        "reminders": reminders,
        "next_at": next_at,
        "late": False,
        "trace_context": current_trace_context(),
        "started_at": now,
        "updated_at": now,
    }
    row = (await connection.execute(deadlines.insert().values(values).returning(deadlines))).one()
    await outbox.add(
        connection,
        new_event(
            DEADLINE_STARTED,
            incident_id=incident.id,
            client_id=incident.client_id,
            producer="notify",
            occurred_at=now,
            actor=actor,
            payload=events_pb2.DeadlineStarted(deadline=deadline_message(row)),
        ),
    )
    return row


async def record_met(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    incident_id: str,
    client_id: str,
    deadline_id: str,
    reference: str,
    actor: events_pb2.Actor,
    now: datetime,
) -> Row[Any]:
    """Records the deadline met now (late after its due time, a missed one included); one
    already met, cancelled or marked not applicable is a Conflict."""
    row = (
        await connection.execute(
            select(deadlines)
            .where(
                deadlines.c.id == deadline_id,
                deadlines.c.incident_id == incident_id,
                deadlines.c.client_id == client_id,
            )
            .with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound(f"deadline {deadline_id} not found")
    if row.status == MET:
        raise Conflict(
            f"deadline {deadline_id} was met already, at {row.met_at:%Y-%m-%d %H:%M} UTC"
        )
    if row.status == CANCELLED:
        raise Conflict(
            f"deadline {deadline_id} was cancelled: the incident was {row.cancelled_because}"
        )
    if row.status == NOT_APPLICABLE:
        raise Conflict(f"deadline {deadline_id} was marked not applicable: {row.met_reference}")
    return await _meet(connection, outbox=outbox, row=row, reference=reference, actor=actor, at=now)


async def mark_not_applicable(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    incident_id: str,
    client_id: str,
    deadline_id: str,
    reason: str,
    actor: events_pb2.Actor,
    now: datetime,
) -> Row[Any]:
    """Sets a pending or missed deadline aside: it does not apply to the incident (the reason
    says why, e.g. "no risk to individuals: GDPR Art. 33(1) needs no notification"). No more
    reminders; review no longer counts it against closing the incident. One met, cancelled or
    set aside already is a Conflict."""
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON or "\x00" in reason:
        raise InvalidArgument("reason", f"must be 1 to {MAX_REASON} characters, without NUL")
    row = (
        await connection.execute(
            select(deadlines)
            .where(
                deadlines.c.id == deadline_id,
                deadlines.c.incident_id == incident_id,
                deadlines.c.client_id == client_id,
            )
            .with_for_update()
        )
    ).first()
    if row is None:
        raise NotFound(f"deadline {deadline_id} not found")
    if row.status not in (PENDING, MISSED):
        raise Conflict(f"deadline {deadline_id} is {row.status.replace('_', ' ')} already")
    marked = (
        await connection.execute(
            update(deadlines)
            .where(deadlines.c.id == row.id)
            .values(status=NOT_APPLICABLE, met_reference=reason, next_at=None, updated_at=now)
            .returning(deadlines)
        )
    ).one()
    await outbox.add(
        connection,
        new_event(
            DEADLINE_MARKED_NOT_APPLICABLE,
            incident_id=row.incident_id,
            client_id=row.client_id,
            producer="notify",
            occurred_at=now,
            actor=actor,
            payload=events_pb2.DeadlineMarkedNotApplicable(
                deadline=deadline_message(row), reason=reason
            ),
        ),
    )
    return marked


async def meet_by_client_update(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    incident_id: str,
    update_id: str,
    actor: events_pb2.Actor,
    at: datetime,
) -> int:
    """A client-audience status update meets the incident's contractual deadlines that a client
    update meets and that started before it (a missed one, late). Returns how many."""
    rows = (
        await connection.execute(
            select(deadlines).where(
                deadlines.c.incident_id == incident_id,
                deadlines.c.met_by == CLIENT_UPDATE,
                deadlines.c.status.in_((PENDING, MISSED)),
                deadlines.c.started_at <= at,
            )
        )
    ).all()
    for row in rows:
        await _meet(connection, outbox=outbox, row=row, reference=update_id, actor=actor, at=at)
    return len(rows)


async def _meet(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    row: Row[Any],
    reference: str,
    actor: events_pb2.Actor,
    at: datetime,
) -> Row[Any]:
    late = at > aware(row.due_at)
    met = (
        await connection.execute(
            update(deadlines)
            .where(deadlines.c.id == row.id)
            .values(
                status=MET,
                met_at=at,
                met_reference=reference[:200],
                late=late,
                next_at=None,
                updated_at=at,
            )
            .returning(deadlines)
        )
    ).one()
    await outbox.add(
        connection,
        new_event(
            DEADLINE_MET,
            incident_id=row.incident_id,
            client_id=row.client_id,
            producer="notify",
            occurred_at=at,
            actor=actor,
            payload=events_pb2.DeadlineMet(
                deadline=deadline_message(row), reference=reference, late=late
            ),
        ),
    )
    return met


async def cancel_contractual(
    connection: AsyncConnection, *, incident_id: str, because: str, now: datetime
) -> None:
    """The incident was declined or merged: its pending contractual deadlines no longer apply
    (listed as cancelled). Regulatory ones stay."""
    await connection.execute(
        update(deadlines)
        .where(
            deadlines.c.incident_id == incident_id,
            deadlines.c.kind == CONTRACTUAL,
            deadlines.c.status == PENDING,
        )
        .values(status=CANCELLED, cancelled_because=because, next_at=None, updated_at=now)
    )


async def list_deadlines(
    connection: AsyncConnection, *, incident_id: str, client_id: str
) -> list[Row[Any]]:
    query = (
        select(deadlines)
        .where(deadlines.c.incident_id == incident_id, deadlines.c.client_id == client_id)
        .order_by(deadlines.c.due_at, deadlines.c.rule)
    )
    return list((await connection.execute(query)).all())
