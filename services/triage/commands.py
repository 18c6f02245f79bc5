"""Running one command on an incident's response: check version and state, change, record.

A command reads its response row locked (PostgreSQL: FOR UPDATE; SQLite: the write lock its
transaction takes up front), so two people acknowledging at once are serialised: the first
changes the state and emits the event, the second finds the new state and is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.api.triage.v1 import triage_pb2
from firebreak.errors import CommandRefused, InvalidArgument, NotFound, StaleVersion
from firebreak.events import (
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_CLOSED,
    INCIDENT_CONTAINED,
    INCIDENT_DECLINED,
    INCIDENT_MERGED,
    INCIDENT_RECLASSIFIED,
    INCIDENT_REOPENED,
    INCIDENT_RESOLVED,
    INCIDENT_RESPONDER_ADDED,
    INCIDENT_RESPONDER_REMOVED,
    INCIDENT_ROLE_ASSIGNED,
    new_event,
)
from firebreak.outbox import Outbox
from services.triage import lifecycle
from services.triage.models import responses, tasks
from services.triage.playbooks import INCIDENT_TYPES
from services.triage.policy import IMPACTS, URGENCIES
from services.triage.service import (
    MAX_TEXT,
    ROLES,
    Rules,
    add_playbook_tasks,
    check_participant,
    get_response,
    has_playbook_tasks,
    higher,
    lock_responses,
    state_message,
)


@dataclass
class Change:
    """What a command does: column values to set, and the event that records it."""

    event_type: str
    values: dict[str, Any]
    # Builds the payload from the ResponseState after the change.
    payload: Callable[[events_pb2.ResponseState], Message]
    tasks_of_type: str | None = None  # add this type's playbook tasks


async def run_command(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    rules: Rules,
    request: triage_pb2.CommandRequest,
    client_id: str | None,
) -> Row[Any]:
    """Runs the request's command in the caller's transaction; returns the response after it."""
    command = request.WhichOneof("command")
    if command is None:
        raise InvalidArgument("command", "is required")
    involved = [request.incident_id]
    if command == "merge" and request.merge.into.strip():
        involved.append(request.merge.into.strip())
    await lock_responses(connection, involved)
    row = await get_response(connection, client_id=client_id, incident_id=request.incident_id)
    if request.expected_version and request.expected_version != row.version:
        raise StaleVersion(expected=request.expected_version, current=row.version)
    if request.participant_only:
        check_participant(row, request.actor)
    situation = await situation_of(connection, row)
    reason = lifecycle.refusal(command, situation)
    if reason is not None:
        raise CommandRefused(
            f"cannot {command.replace('_', ' ')}: {reason}",
            status=row.status,
            allowed=lifecycle.allowed_commands(situation),
        )
    now = datetime.now(UTC)
    change = await BUILDERS[command](connection, row, request, now, rules)
    target = lifecycle.COMMANDS[command].leads_to
    if target is not None:
        change.values["status"] = target
    change.values["version"] = row.version + 1
    updated = (
        await connection.execute(
            update(responses)
            .where(responses.c.incident_id == row.incident_id)
            .values(**change.values)
            .returning(*responses.c)
        )
    ).one()
    if change.tasks_of_type is not None:
        await add_playbook_tasks(
            connection, rules=rules, response=updated, incident_type=change.tasks_of_type, now=now
        )
    state = state_message(updated, rules.policy)
    await outbox.add(
        connection,
        new_event(
            change.event_type,
            incident_id=row.incident_id,
            client_id=row.client_id,
            producer="triage",
            occurred_at=now,
            actor=request.actor,
            payload=change.payload(state),
        ),
    )
    return updated


async def situation_of(connection: AsyncConnection, row: Row[Any]) -> lifecycle.Situation:
    open_required = (
        await connection.execute(
            select(tasks.c.title)
            .where(
                tasks.c.incident_id == row.incident_id,
                tasks.c.phase == "containment",
                tasks.c.required.is_(True),
                tasks.c.status.in_(("open", "in_progress")),
            )
            .order_by(tasks.c.seq)
        )
    ).scalars()
    return lifecycle.Situation(
        status=row.status,
        priority=row.priority,
        has_commander="incident_commander" in row.roles,
        has_responders=bool(row.responders),
        open_required_containment_tasks=list(open_required),
    )


def _text(field_name: str, value: str, *, required: bool) -> str:
    text = value.strip()
    if required and not text:
        raise InvalidArgument(field_name, "is required")
    if len(text) > MAX_TEXT or "\x00" in text:
        raise InvalidArgument(field_name, f"must be at most {MAX_TEXT} characters, without NUL")
    return text


def _person(person: events_pb2.Person) -> dict[str, str]:
    return {"id": person.id, "name": person.name}


Builder = Callable[
    [AsyncConnection, Row[Any], triage_pb2.CommandRequest, datetime, Rules], Awaitable[Change]
]


async def _acknowledge(
    connection: AsyncConnection,
    row: Row[Any],
    request: triage_pb2.CommandRequest,
    now: datetime,
    rules: Rules,
) -> Change:
    values: dict[str, Any] = {"acknowledged_at": now}
    commander = request.acknowledge.commander_if_none
    if commander.id and "incident_commander" not in row.roles:
        values["roles"] = {**row.roles, "incident_commander": _person(commander)}
    return Change(
        INCIDENT_ACKNOWLEDGED,
        values,
        lambda state: events_pb2.IncidentAcknowledged(state=state),
    )


async def _contain(
    connection: AsyncConnection,
    row: Row[Any],
    request: triage_pb2.CommandRequest,
    now: datetime,
    rules: Rules,
) -> Change:
    summary = _text("summary", request.contain.summary, required=True)
    return Change(
        INCIDENT_CONTAINED,
        {"contained_at": now},
        lambda state: events_pb2.IncidentContained(summary=summary, state=state),
    )


async def _resolve(
    connection: AsyncConnection,
    row: Row[Any],
    request: triage_pb2.CommandRequest,
    now: datetime,
    rules: Rules,
) -> Change:
    summary = _text("summary", request.resolve.summary, required=True)
    return Change(
        INCIDENT_RESOLVED,
        {"resolved_at": now},
        lambda state: events_pb2.IncidentResolved(summary=summary, state=state),
    )


async def _close(
    connection: AsyncConnection,
    row: Row[Any],
    request: triage_pb2.CommandRequest,
    now: datetime,
    rules: Rules,
) -> Change:
    # The gateway asked review whether the closure gates are met before sending this.
    code = request.close.closure_code
    if code not in lifecycle.CLOSURE_CODES:
        codes = ", ".join(lifecycle.CLOSURE_CODES)
        raise InvalidArgument("closure_code", f"must be one of {codes}")
    summary = _text("summary", request.close.summary, required=True)
    return Change(
        INCIDENT_CLOSED,
        {"closed_at": now},
        lambda state: events_pb2.IncidentClosed(summary=summary, closure_code=code, state=state),
    )


async def _reopen(
    connection: AsyncConnection,
    row: Row[Any],
    request: triage_pb2.CommandRequest,
    now: datetime,
    rules: Rules,
) -> Change:
    reason = _text("reason", request.reopen.reason, required=True)
    # The milestones of the next resolution start afresh; the timeline keeps the earlier ones.
    return Change(
        INCIDENT_REOPENED,
        {"resolved_at": None, "closed_at": None},
        lambda state: events_pb2.IncidentReopened(reason=reason, state=state),
    )


async def _decline(
    connection: AsyncConnection,
    row: Row[Any],
    request: triage_pb2.CommandRequest,
    now: datetime,
    rules: Rules,
) -> Change:
    reason = _text("reason", request.decline.reason, required=True)
    return Change(
        INCIDENT_DECLINED, {}, lambda state: events_pb2.IncidentDeclined(reason=reason, state=state)
    )


async def _merge(
    connection: AsyncConnection,
    row: Row[Any],
    request: triage_pb2.CommandRequest,
    now: datetime,
    rules: Rules,
) -> Change:
    into = request.merge.into.strip()
    if not into:
        raise InvalidArgument("into", "is required")
    if into == row.incident_id:
        raise InvalidArgument("into", "an incident cannot be merged into itself")
    try:
        # Same client only: another client's incident is as absent as one that never existed.
        survivor = await get_response(connection, client_id=row.client_id, incident_id=into)
    except NotFound:
        raise InvalidArgument("into", f"no incident {into} of the same client") from None
    if survivor.status in lifecycle.ENDED:
        raise InvalidArgument("into", f"incident {into} is {survivor.status}")
    return Change(
        INCIDENT_MERGED,
        {"merged_into": into},
        lambda state: events_pb2.IncidentMerged(into=into, state=state),
    )


async def _reclassify(
    connection: AsyncConnection,
    row: Row[Any],
    request: triage_pb2.CommandRequest,
    now: datetime,
    rules: Rules,
) -> Change:
    asked = request.reclassify
    reason = _text("reason", asked.reason, required=True)
    for field_name, value, allowed in (
        ("type", asked.type, INCIDENT_TYPES),
        ("impact", asked.impact, IMPACTS),
        ("urgency", asked.urgency, URGENCIES),
    ):
        if value and value not in allowed:
            raise InvalidArgument(field_name, f"must be one of {', '.join(sorted(allowed))}")
    new_type = asked.type or row.type
    new_impact = asked.impact or row.impact
    new_urgency = asked.urgency or row.urgency
    if (new_type, new_impact, new_urgency) == (row.type, row.impact, row.urgency):
        raise InvalidArgument("type", "nothing to change: type, impact and urgency are as they are")
    new_priority = rules.policy.priority(new_impact, new_urgency)
    old = row
    # A type the incident had before already gave it its tasks (done ones must not come back).
    adds_tasks = new_type != row.type and not await has_playbook_tasks(
        connection, incident_id=row.incident_id, incident_type=new_type
    )

    def payload(state: events_pb2.ResponseState) -> Message:
        return events_pb2.IncidentReclassified(
            reason=reason,
            old_type=old.type,
            new_type=new_type,
            old_impact=old.impact,
            new_impact=new_impact,
            old_urgency=old.urgency,
            new_urgency=new_urgency,
            old_priority=old.priority,
            new_priority=new_priority,
            tasks_added=len(rules.playbooks.get(new_type, ())) if adds_tasks else 0,
            state=state,
        )

    return Change(
        INCIDENT_RECLASSIFIED,
        {
            "type": new_type,
            "impact": new_impact,
            "urgency": new_urgency,
            "priority": new_priority,
            "highest_priority": higher(row.highest_priority, new_priority),
        },
        payload,
        tasks_of_type=new_type if adds_tasks else None,
    )


async def _assign_role(
    connection: AsyncConnection,
    row: Row[Any],
    request: triage_pb2.CommandRequest,
    now: datetime,
    rules: Rules,
) -> Change:
    asked = request.assign_role
    if asked.role not in ROLES:
        raise InvalidArgument("role", f"must be one of {', '.join(ROLES)}")
    if not asked.person.id:
        raise InvalidArgument("person_id", "is required")
    briefing = _text("briefing", asked.briefing, required=False)
    previous = row.roles.get(asked.role)
    if previous is not None and previous["id"] == asked.person.id:
        raise InvalidArgument("person_id", f"{asked.person.name} already is {asked.role}")
    person = _person(asked.person)

    def payload(state: events_pb2.ResponseState) -> Message:
        event = events_pb2.IncidentRoleAssigned(
            role=asked.role, person=asked.person, briefing=briefing, state=state
        )
        if previous is not None:
            event.previous.CopyFrom(events_pb2.Person(**previous))
        return event

    return Change(INCIDENT_ROLE_ASSIGNED, {"roles": {**row.roles, asked.role: person}}, payload)


async def _add_responder(
    connection: AsyncConnection,
    row: Row[Any],
    request: triage_pb2.CommandRequest,
    now: datetime,
    rules: Rules,
) -> Change:
    person = request.add_responder.person
    if not person.id:
        raise InvalidArgument("person_id", "is required")
    if any(responder["id"] == person.id for responder in row.responders):
        raise InvalidArgument("person_id", f"{person.name} already is a responder")
    return Change(
        INCIDENT_RESPONDER_ADDED,
        {"responders": [*row.responders, _person(person)]},
        lambda state: events_pb2.IncidentResponderAdded(person=person, state=state),
    )


async def _remove_responder(
    connection: AsyncConnection,
    row: Row[Any],
    request: triage_pb2.CommandRequest,
    now: datetime,
    rules: Rules,
) -> Change:
    person_id = request.remove_responder.person_id
    leaving = [responder for responder in row.responders if responder["id"] == person_id]
    if not leaving:
        raise NotFound(f"{person_id} is not a responder of this incident")
    person = events_pb2.Person(**leaving[0])
    return Change(
        INCIDENT_RESPONDER_REMOVED,
        {"responders": [responder for responder in row.responders if responder["id"] != person_id]},
        lambda state: events_pb2.IncidentResponderRemoved(person=person, state=state),
    )


BUILDERS: dict[str, Builder] = {
    "acknowledge": _acknowledge,
    "contain": _contain,
    "resolve": _resolve,
    "close": _close,
    "reopen": _reopen,
    "decline": _decline,
    "merge": _merge,
    "reclassify": _reclassify,
    "assign_role": _assign_role,
    "add_responder": _add_responder,
    "remove_responder": _remove_responder,
}
