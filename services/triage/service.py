"""Triage's domain logic: deciding priority, opening the response with its playbook's tasks, and
reading it back.

Functions take the open connection of the caller's unit of work and never commit themselves.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import Executable, Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.database import upsert_insert
from firebreak.errors import Forbidden, NotFound
from firebreak.events import INCIDENT_TRIAGED, from_timestamp, new_event, to_timestamp
from firebreak.outbox import Outbox
from services.triage.models import decisions, responses, tasks
from services.triage.playbooks import PlaybookTask
from services.triage.policy import ResponsePolicy

log = logging.getLogger(__name__)

ROLES = ("incident_commander", "communications_lead", "scribe")
MAX_TEXT = 20_000  # summaries, reasons, briefings, task notes
PRIORITY_ORDER = ("P1", "P2", "P3", "P4")


@dataclass(frozen=True)
class Rules:
    """The firm's settings triage decides by: its response policy and its playbooks."""

    policy: ResponsePolicy
    playbooks: Mapping[str, tuple[PlaybookTask, ...]]


INSERT_RESPONSE = responses.insert().returning(*responses.c)
INSERT_TASK = tasks.insert()


@cache
def _insert_decision(dialect: str) -> Executable:
    return upsert_insert(dialect, decisions).on_conflict_do_nothing(index_elements=["incident_id"])


def higher(first: str, second: str) -> str:
    """The more urgent of two priorities (P1 is the highest)."""
    return min(first, second, key=PRIORITY_ORDER.index)


async def triage_incident(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    rules: Rules,
    reported: events_pb2.EventEnvelope,
    decided_by: str,
) -> None:
    """Decides the priority of a reported incident, opens its response with the tasks of its
    type's playbook, and records incident.triaged."""
    report = reported.incident_reported
    decision = rules.policy.classify(report.impact, report.urgency)
    priority = decision.priority
    now = datetime.now(UTC)
    inserted = await connection.execute(
        _insert_decision(connection.dialect.name),
        {
            "incident_id": reported.incident_id,
            "client_id": reported.client_id,
            "priority": priority,
            "impact": decision.impact,
            "urgency": decision.urgency,
            "rationale": decision.rationale,
            "decided_by": decided_by,
            "decided_at": now,
        },
    )
    if inserted.rowcount == 0:
        # The incident was reported again under another event id (replayed, or doubled
        # upstream): it was triaged the first time, and its response has moved on since.
        log.warning(
            "incident %s was triaged already; ignoring its report %s",
            reported.incident_id,
            reported.id,
        )
        return
    row = (
        await connection.execute(
            INSERT_RESPONSE,
            {
                "incident_id": reported.incident_id,
                "client_id": reported.client_id,
                "version": 1,
                "status": "triaged",
                "priority": priority,
                "highest_priority": priority,
                # Cut to its column: a type this triage does not know (it has no playbook)
                # must not keep the incident from being triaged.
                "type": report.type[:40],
                "impact": decision.impact,
                "urgency": decision.urgency,
                "roles": {},
                "responders": [],
                "reported_at": from_timestamp(reported.occurred_at),
                "triaged_at": now,
            },
        )
    ).one()
    added = await add_playbook_tasks(
        connection, rules=rules, response=row, incident_type=report.type, now=now
    )
    await outbox.add(
        connection,
        new_event(
            INCIDENT_TRIAGED,
            incident_id=reported.incident_id,
            client_id=reported.client_id,
            producer="triage",
            occurred_at=now,
            payload=events_pb2.IncidentTriaged(
                priority=priority,
                impact=decision.impact,
                urgency=decision.urgency,
                rationale=decision.rationale,
                state=state_message(row, rules.policy),
                tasks_added=added,
                reference=report.reference,
                title=report.title,
            ),
        ),
    )


async def add_playbook_tasks(
    connection: AsyncConnection,
    *,
    rules: Rules,
    response: Row[Any],
    incident_type: str,
    now: datetime,
) -> int:
    """Adds the tasks of the type's playbook; returns how many."""
    playbook = rules.playbooks.get(incident_type, ())
    if playbook:
        await connection.execute(
            INSERT_TASK,
            [
                {
                    "id": str(uuid.uuid4()),
                    "incident_id": response.incident_id,
                    "client_id": response.client_id,
                    "title": task.title,
                    "description": task.description,
                    "required": task.required,
                    "phase": task.phase,
                    "owner_role": task.owner_role,
                    "status": "open",
                    "note": "",
                    "source": f"playbook:{incident_type}",
                    "created_at": now,
                    "updated_at": now,
                }
                for task in playbook
            ],
        )
    return len(playbook)


def state_message(row: Row[Any], policy: ResponsePolicy) -> events_pb2.ResponseState:
    """The response row as the ResponseState every lifecycle event carries."""
    roles: dict[str, dict[str, str]] = row.roles
    state = events_pb2.ResponseState(
        version=row.version,
        status=row.status,
        priority=row.priority,
        highest_priority=row.highest_priority,
        type=row.type,
        impact=row.impact,
        urgency=row.urgency,
        responders=[events_pb2.Person(**person) for person in row.responders],
        merged_into=row.merged_into or "",
    )
    for role in ROLES:
        if role in roles:
            getattr(state, role).CopyFrom(events_pb2.Person(**roles[role]))
    for field in ("triaged_at", "acknowledged_at", "contained_at", "resolved_at", "closed_at"):
        if (moment := getattr(row, field)) is not None:
            getattr(state, field).CopyFrom(to_timestamp(moment))
    targets = policy.targets[row.priority]
    reported_at = row.reported_at.replace(tzinfo=row.reported_at.tzinfo or UTC)
    state.acknowledge_due.CopyFrom(to_timestamp(reported_at + targets.acknowledge))
    state.contain_due.CopyFrom(to_timestamp(reported_at + targets.contain))
    state.resolve_due.CopyFrom(to_timestamp(reported_at + targets.resolve))
    return state


async def get_decision(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str
) -> Row[Any]:
    query = select(decisions).where(decisions.c.incident_id == incident_id)
    if client_id is not None:
        query = query.where(decisions.c.client_id == client_id)
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound(f"no triage decision for incident {incident_id}")
    return row


async def lock_responses(connection: AsyncConnection, incident_ids: list[str]) -> None:
    """Locks the incidents' response rows until the caller's transaction ends (PostgreSQL; on
    SQLite the transaction holds the write lock already). Always in the same order, so two
    merges of A into B and B into A queue up instead of deadlocking or both going through."""
    await connection.execute(
        select(responses.c.incident_id)
        .where(responses.c.incident_id.in_(sorted(set(incident_ids))))
        .order_by(responses.c.incident_id)
        .with_for_update()
    )


def check_participant(row: Row[Any], actor: events_pb2.Actor) -> None:
    """For an actor who may act only as a participant: are they one, as of now?"""
    people = [*row.roles.values(), *row.responders]
    if not any(person["id"] == actor.id for person in people):
        raise Forbidden(
            "only the incident's commander, its role holders, its responders or a manager may "
            "run this"
        )


async def has_playbook_tasks(
    connection: AsyncConnection, *, incident_id: str, incident_type: str
) -> bool:
    query = select(tasks.c.id).where(
        tasks.c.incident_id == incident_id, tasks.c.source == f"playbook:{incident_type}"
    )
    return (await connection.execute(query.limit(1))).first() is not None


async def get_response(
    connection: AsyncConnection,
    *,
    client_id: str | None,
    incident_id: str,
    for_update: bool = False,
) -> Row[Any]:
    """The incident's response; NotFound for another client's incident or one not triaged yet.
    `for_update` locks the row (see lock_responses)."""
    query = select(responses).where(responses.c.incident_id == incident_id)
    if client_id is not None:
        query = query.where(responses.c.client_id == client_id)
    if for_update:
        query = query.with_for_update()
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound(f"incident {incident_id} has no response yet")
    return row
