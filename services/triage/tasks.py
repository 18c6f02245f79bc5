"""An incident's tasks: those its playbook gave it and ad-hoc ones, worked through to done."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.api.triage.v1 import triage_pb2
from firebreak.errors import CommandRefused, InvalidArgument, NotFound
from firebreak.events import TASK_ADDED, TASK_UPDATED, new_event
from firebreak.outbox import Outbox
from services.triage import lifecycle
from services.triage.models import tasks
from services.triage.playbooks import OWNER_ROLES, PHASES
from services.triage.service import MAX_TEXT, check_participant, get_response

STATUSES = ("open", "in_progress", "done", "skipped")


def task_message(row: Row[Any]) -> events_pb2.Task:
    task = events_pb2.Task(
        id=row.id,
        title=row.title,
        description=row.description,
        required=row.required,
        phase=row.phase,
        owner_role=row.owner_role,
        status=row.status,
        note=row.note,
        source=row.source,
    )
    if row.assignee_id:
        task.assignee.CopyFrom(events_pb2.Person(id=row.assignee_id, name=row.assignee_name))
    return task


async def list_tasks(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str
) -> list[Row[Any]]:
    await get_response(connection, client_id=client_id, incident_id=incident_id)
    query = select(tasks).where(tasks.c.incident_id == incident_id).order_by(tasks.c.seq)
    return list((await connection.execute(query)).all())


async def _workable_response(
    connection: AsyncConnection,
    *,
    client_id: str | None,
    incident_id: str,
    actor: events_pb2.Actor,
    participant_only: bool,
) -> Row[Any]:
    """The response, locked: task changes queue behind commands (and /contain's check of the
    open containment tasks) instead of slipping between them."""
    response = await get_response(
        connection, client_id=client_id, incident_id=incident_id, for_update=True
    )
    if participant_only:
        check_participant(response, actor)
    if response.status in lifecycle.ENDED:
        raise CommandRefused(
            f"cannot change tasks: the incident is {response.status}",
            status=response.status,
            allowed=[],
        )
    return response


def _choice(field: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidArgument(field, f"must be one of {', '.join(allowed)}")
    return value


async def add_task(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    client_id: str | None,
    request: triage_pb2.AddTaskRequest,
) -> Row[Any]:
    response = await _workable_response(
        connection,
        client_id=client_id,
        incident_id=request.incident.incident_id,
        actor=request.actor,
        participant_only=request.participant_only,
    )
    title = request.title.strip()
    if not 1 <= len(title) <= 200 or "\x00" in title:
        raise InvalidArgument("title", "must be 1 to 200 characters")
    if len(request.description) > MAX_TEXT or "\x00" in request.description:
        raise InvalidArgument("description", f"must be at most {MAX_TEXT} characters")
    now = datetime.now(UTC)
    values = {
        "id": str(uuid.uuid4()),
        "incident_id": response.incident_id,
        "client_id": response.client_id,
        "title": title,
        "description": request.description,
        "required": request.required,
        "phase": _choice("phase", request.phase or "containment", PHASES),
        "owner_role": _choice("owner_role", request.owner_role or "responder", OWNER_ROLES),
        "status": "open",
        "note": "",
        "source": "ad hoc",
        "created_at": now,
        "updated_at": now,
    }
    row = (await connection.execute(tasks.insert().values(values).returning(*tasks.c))).one()
    await _record(connection, outbox, row, request.actor, TASK_ADDED, now=now)
    return row


async def update_task(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    client_id: str | None,
    request: triage_pb2.UpdateTaskRequest,
) -> Row[Any]:
    response = await _workable_response(
        connection,
        client_id=client_id,
        incident_id=request.incident.incident_id,
        actor=request.actor,
        participant_only=request.participant_only,
    )
    current = (
        await connection.execute(
            select(tasks).where(
                tasks.c.id == request.task_id, tasks.c.incident_id == response.incident_id
            )
        )
    ).first()
    if request.reason.strip() and not request.HasField("status"):
        raise InvalidArgument("reason", "goes with a new status (it says why)")
    if current is None:
        raise NotFound(f"task {request.task_id} not found")
    values: dict[str, Any] = {}
    if request.HasField("status"):
        values["status"] = _choice("status", request.status, STATUSES)
        reason = request.reason.strip()
        if request.status == "skipped" and not reason:
            raise InvalidArgument("reason", "is required to skip a task")
        if reason:
            values["note"] = _join_note(current.note, f"{request.status}: {reason}")
    if request.HasField("assignee"):
        values["assignee_id"] = request.assignee.id or None
        values["assignee_name"] = request.assignee.name or None
    if request.HasField("note"):
        if len(request.note) > MAX_TEXT or "\x00" in request.note:
            raise InvalidArgument("note", f"must be at most {MAX_TEXT} characters")
        values["note"] = _join_note(values.get("note", current.note), request.note.strip())
    # Only what differs is a change: a PATCH that changes nothing records nothing.
    values = {name: value for name, value in values.items() if getattr(current, name) != value}
    if not values:
        raise InvalidArgument("status", "nothing to change: give a new status, assignee or note")
    now = datetime.now(UTC)
    values["updated_at"] = now
    row = (
        await connection.execute(
            update(tasks).where(tasks.c.id == current.id).values(values).returning(*tasks.c)
        )
    ).one()
    await _record(connection, outbox, row, request.actor, TASK_UPDATED, now=now, old=current)
    return row


def _join_note(earlier: str, addition: str) -> str:
    joined = f"{earlier}\n{addition}".strip() if addition else earlier
    if len(joined) > MAX_TEXT:
        raise InvalidArgument("note", f"the task's notes would exceed {MAX_TEXT} characters")
    return joined


async def _record(
    connection: AsyncConnection,
    outbox: Outbox,
    row: Row[Any],
    actor: events_pb2.Actor,
    event_type: str,
    *,
    now: datetime,
    old: Row[Any] | None = None,
) -> None:
    payload: events_pb2.TaskAdded | events_pb2.TaskUpdated
    if old is None:
        payload = events_pb2.TaskAdded(task=task_message(row))
    else:
        payload = events_pb2.TaskUpdated(task=task_message(row), old_status=old.status)
    await outbox.add(
        connection,
        new_event(
            event_type,
            incident_id=row.incident_id,
            client_id=row.client_id,
            producer="triage",
            occurred_at=now,
            actor=actor,
            payload=payload,
        ),
    )
