"""Escalating an incident through its policy: which step is due, whom it pages, when it stops.

A step's `after_minutes` is how long its targets have to acknowledge before the next step's are
paged as well. After the last step the steps run again `repeat` times; when they have run out,
the firm's fallback (its active managers) is paged, so an escalation never goes silent. An
acknowledgement, or any end of the incident, stops it.

Due times live in the `escalations` table, never only in memory: a notify that restarts (or
another replica) picks up every step that fell due, once, because each is claimed inside the
transaction that advances it (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's one writer).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.ack_links import LinkMaker
from firebreak.api.events.v1 import events_pb2
from firebreak.database import key_params, update_by
from firebreak.events import ESCALATION_STEP_REACHED, ESCALATION_STOPPED, new_event
from firebreak.outbox import Outbox
from firebreak.telemetry import current_trace_context, span_in_context
from services.notify import oncall_targets
from services.notify.models import deliveries, escalations
from services.notify.outgoing import PAGE
from services.notify.policies import policy_for
from services.notify.templating import Templates

RUNNING, STOPPED, EXHAUSTED = "running", "stopped", "exhausted"
# Acknowledged, but watched: a P1 or P2 with no progress (containment, resolution; a status
# update renews the wait) by next_at starts paging again from its first step.
ACKNOWLEDGED = "acknowledged"
LAPSING_PRIORITIES = frozenset({"P1", "P2"})
EMAIL = "email"


async def start_escalation(
    connection: AsyncConnection,
    *,
    incident_id: str,
    client_id: str,
    reference: str,
    title: str,
    priority: str,
    now: datetime,
) -> bool:
    """Starts the incident's policy, due at once; False when no policy covers it or one is
    already running (a reclassification into a paging priority of a paged incident)."""
    existing = (
        await connection.execute(
            select(escalations.c.status).where(escalations.c.incident_id == incident_id)
        )
    ).first()
    if existing is not None and existing.status == RUNNING:
        return False
    policy = await policy_for(connection, client_id=client_id, priority=priority)
    if policy is None:
        return False
    snapshot = {
        "id": policy.id,
        "version": policy.version,
        "steps": policy.steps,
        "repeat": policy.repeat,
        "page": policy.page,
    }
    values = {
        "client_id": client_id,
        "reference": reference,
        "title": title,
        "priority": priority,
        "policy": snapshot,
        "step": 0,
        "round": 0,
        "status": RUNNING,
        "next_at": now,
        "stop_reason": None,
        "trace_context": current_trace_context(),
        "updated_at": now,
    }
    if existing is None:
        await connection.execute(
            escalations.insert(), values | {"incident_id": incident_id, "started_at": now}
        )
    else:  # an escalation that stopped or ran out starts over (the incident came back)
        await connection.execute(
            update_by(escalations, "incident_id"), values | key_params({"incident_id": incident_id})
        )
    return True


async def stop_escalation(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    incident_id: str,
    client_id: str,
    reason: str,
    now: datetime,
) -> None:
    """Stops a running, exhausted or watched escalation and says so on the timeline."""
    stopped = await connection.execute(
        update(escalations)
        .where(
            escalations.c.incident_id == incident_id,
            escalations.c.status.in_((RUNNING, EXHAUSTED, ACKNOWLEDGED)),
        )
        .values(status=STOPPED, next_at=None, stop_reason=reason, updated_at=now)
    )
    if stopped.rowcount:
        await outbox.add(
            connection,
            new_event(
                ESCALATION_STOPPED,
                incident_id=incident_id,
                client_id=client_id,
                producer="notify",
                occurred_at=now,
                payload=events_pb2.EscalationStopped(reason=reason),
            ),
        )


async def acknowledge_escalation(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    incident_id: str,
    client_id: str,
    lapse: timedelta | None,
    now: datetime,
) -> None:
    """Paging stops on an acknowledgement; for a P1 or P2 (with a lapse set) it only pauses:
    without progress by then, it starts again from the first step."""
    row = (
        await connection.execute(
            select(escalations.c.priority, escalations.c.status).where(
                escalations.c.incident_id == incident_id
            )
        )
    ).first()
    if lapse is None or row is None or row.priority not in LAPSING_PRIORITIES:
        await stop_escalation(
            connection,
            outbox=outbox,
            incident_id=incident_id,
            client_id=client_id,
            reason="acknowledged",
            now=now,
        )
        return
    if row.status not in (RUNNING, EXHAUSTED):
        return
    minutes = f"{lapse.total_seconds() / 60:g}"
    await connection.execute(
        update(escalations)
        .where(escalations.c.incident_id == incident_id)
        .values(status=ACKNOWLEDGED, step=0, round=0, next_at=now + lapse, updated_at=now)
    )
    await outbox.add(
        connection,
        new_event(
            ESCALATION_STOPPED,
            incident_id=incident_id,
            client_id=client_id,
            producer="notify",
            occurred_at=now,
            payload=events_pb2.EscalationStopped(
                reason=f"acknowledged (paging resumes without progress within {minutes} min)"
            ),
        ),
    )


async def renew_acknowledgement(
    connection: AsyncConnection, *, incident_id: str, lapse: timedelta, now: datetime
) -> None:
    """A status update is progress: an acknowledged P1 or P2 lapses `lapse` after it instead."""
    await connection.execute(
        update(escalations)
        .where(escalations.c.incident_id == incident_id, escalations.c.status == ACKNOWLEDGED)
        .values(next_at=now + lapse, updated_at=now)
    )


async def due_escalations(
    connection: AsyncConnection, *, now: datetime, limit: int
) -> list[Row[Any]]:
    """Claims escalations whose next step is due; other replicas skip the claimed rows."""
    query = (
        select(escalations)
        .where(escalations.c.status.in_((RUNNING, ACKNOWLEDGED)), escalations.c.next_at <= now)
        .order_by(escalations.c.next_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await connection.execute(query)).all())


async def reach_step(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    escalation: Row[Any],
    now: datetime,
    templates: Templates,
    links: LinkMaker | None = None,
) -> None:
    """Pages the due step's targets, records the step, and sets when the next one is due, in
    the trace of the incident's triage. Each page is rendered from the `page` templates and
    carries a one-click acknowledge link made by `links` (none without one)."""
    with span_in_context("escalation step", escalation.trace_context):
        await _reach_step(
            connection,
            outbox=outbox,
            escalation=escalation,
            now=now,
            templates=templates,
            links=links,
        )


async def _reach_step(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    escalation: Row[Any],
    now: datetime,
    templates: Templates,
    links: LinkMaker | None,
) -> None:
    policy = escalation.policy
    steps: list[dict[str, Any]] = policy["steps"]
    fallback = escalation.step >= len(steps)
    not_paged: list[tuple[str, str]] = []
    if fallback:
        people = await oncall_targets.fallback_people(connection)
        wait = None
    else:
        step = steps[escalation.step]
        named = await oncall_targets.people_of(connection, step["targets"], at=now)
        people, not_paged = named.reachable, named.not_paged
        wait = timedelta(minutes=float(step["after_minutes"]))
    for person in people:
        await _queue_page(
            connection,
            escalation=escalation,
            person=person,
            now=now,
            templates=templates,
            links=links,
        )
    await outbox.add(
        connection,
        new_event(
            ESCALATION_STEP_REACHED,
            incident_id=escalation.incident_id,
            client_id=escalation.client_id,
            producer="notify",
            occurred_at=now,
            payload=events_pb2.EscalationStepReached(
                policy_id=policy["id"],
                policy_version=policy["version"],
                step=escalation.step,
                round=escalation.round,
                targets=[events_pb2.Person(id=p.id, name=p.name) for p in people],
                fallback=fallback,
                resumed=escalation.status == ACKNOWLEDGED,
                not_paged=[events_pb2.Person(id=pid, name=name) for pid, name in not_paged],
            ),
        ),
    )
    await connection.execute(
        update(escalations)
        .where(escalations.c.incident_id == escalation.incident_id)
        .values(**_after(escalation, wait=wait, now=now))
    )


def _after(escalation: Row[Any], *, wait: timedelta | None, now: datetime) -> dict[str, Any]:
    """Where the escalation goes after reaching its current step."""
    policy = escalation.policy
    if wait is None or not policy["page"]:
        # The fallback has been paged, or an email-only policy has sent its one round.
        return {"status": EXHAUSTED, "next_at": None, "updated_at": now}
    step, round_ = escalation.step + 1, escalation.round
    if step == len(policy["steps"]) and round_ < policy["repeat"]:
        step, round_ = 0, round_ + 1
    return {
        "status": RUNNING,  # a lapsed acknowledgement runs again
        "step": step,
        "round": round_,
        "next_at": now + wait,
        "updated_at": now,
    }


async def move_on_now(connection: AsyncConnection, *, incident_id: str, now: datetime) -> None:
    """A page that finally failed: the next step is due at once instead of after the wait."""
    await connection.execute(
        update(escalations)
        .where(escalations.c.incident_id == incident_id, escalations.c.status == RUNNING)
        .values(next_at=now, updated_at=now)
    )


async def _queue_page(
    connection: AsyncConnection,
    *,
    escalation: Row[Any],
    person: oncall_targets.Reachable,
    now: datetime,
    templates: Templates,
    links: LinkMaker | None = None,
) -> None:
    delivery_id = str(uuid.uuid4())
    # The link acknowledges as this person, for this delivery only (once, until it expires).
    ack_url, ack_until = None, ""
    if links is not None:
        ack_url = links.url(
            incident_id=escalation.incident_id,
            client_id=escalation.client_id,
            person_id=person.id,
            delivery_id=delivery_id,
            now=now,
        )
        ack_until = f"{now + links.lifetime:%Y-%m-%d %H:%M}"
    message = templates.render(
        PAGE,
        incident={
            "id": escalation.incident_id,
            "reference": escalation.reference,
            "title": escalation.title,
            "priority": escalation.priority,
        },
        person={"id": person.id, "name": person.name},
        kind="page" if escalation.policy["page"] else "notification",
        ack_url=ack_url,
        ack_until=ack_until,
    )
    await connection.execute(
        deliveries.insert().values(
            id=delivery_id,
            incident_id=escalation.incident_id,
            client_id=escalation.client_id,
            person_id=person.id,
            person_name=person.name,
            step=escalation.step,
            channel=EMAIL,
            address=person.email,
            status="pending",
            attempts=0,
            due_at=now,
            reference=escalation.reference,
            priority=escalation.priority,
            subject=message.subject[:300],
            body=message.text,
            html=message.html,
            purpose=PAGE,
            ack_url=ack_url,
            created_at=now,
            trace_context=current_trace_context(),
        )
    )
