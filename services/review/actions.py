"""Remediation, recovery, corrective and preventive actions: added, moved through their states
(action_states.py), checked for effectiveness once done (corrective ones), each change an event
on the timeline. Their alarms (overdue, a check falling due) are raised by action_alarms.py."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.errors import InvalidArgument, NotFound
from firebreak.events import (
    ACTION_ADDED,
    ACTION_EFFECTIVENESS_CHECKED,
    ACTION_UPDATED,
    to_timestamp,
)
from firebreak.keyset_pages import aware, aware_or_none
from firebreak.outbox import Outbox
from firebreak.telemetry import current_trace_context
from services.review import action_states
from services.review.action_states import (
    CHECKED_KINDS,
    DONE,
    KINDS,
    OPEN,
    PENDING,
    VERIFIED,
    WONT_DO,
    WONT_DO_REQUESTED,
    MoveRefused,
)
from services.review.models import action_items
from services.review.notes import checked_text
from services.review.service import emit_about

SCHEDULED, DUE, EFFECTIVE, NOT_EFFECTIVE = "scheduled", "due", "effective", "not_effective"
MAX_TITLE = 200
MAX_TEXT = 20_000
# Fields a move back to open clears: the action is to be done again, and checked again; past
# its due time, its owner is told again that it is overdue.
UNDONE = dict.fromkeys(
    (
        "overdue_reminded_at",
        "done_at",
        "verified_by_id",
        "verified_by_name",
        "verified_at",
        "check_status",
        "check_due_at",
        "checked_by_id",
        "checked_by_name",
        "checked_at",
        "check_note",
    )
)


def _person(person_id: str | None, name: str | None) -> events_pb2.Person | None:
    return events_pb2.Person(id=person_id, name=name or "") if person_id else None


def action_message(row: Row[Any] | Mapping[str, Any], *, now: datetime) -> events_pb2.ActionItem:
    values = row._mapping if isinstance(row, Row) else row
    item = events_pb2.ActionItem(
        id=values["id"],
        kind=values["kind"],
        title=values["title"],
        description=values["description"],
        owner=events_pb2.Person(id=values["owner_id"], name=values["owner_name"]),
        due_at=to_timestamp(values["due_at"]),
        verification_required=values["verification_required"],
        status=values["status"],
        wont_do_reason=values["wont_do_reason"] or "",
        overdue=values["status"] in PENDING and aware(values["due_at"]) <= now,
        incident_reference=values["incident_reference"],
        incident_title=values["incident_title"],
        created_by=events_pb2.Person(id=values["created_by_id"], name=values["created_by_name"]),
        created_at=to_timestamp(values["created_at"]),
    )
    for field, person in (
        ("approved_by", _person(values["approved_by_id"], values["approved_by_name"])),
        ("verified_by", _person(values["verified_by_id"], values["verified_by_name"])),
    ):
        if person is not None:
            getattr(item, field).CopyFrom(person)
    for field in ("done_at", "verified_at"):
        if values[field] is not None:
            getattr(item, field).CopyFrom(to_timestamp(values[field]))
    if values["check_status"] is not None:
        check = item.effectiveness
        check.status = values["check_status"]
        check.due_at.CopyFrom(to_timestamp(values["check_due_at"]))
        checker = _person(values["checked_by_id"], values["checked_by_name"])
        if checker is not None:
            check.checked_by.CopyFrom(checker)
        if values["checked_at"] is not None:
            check.checked_at.CopyFrom(to_timestamp(values["checked_at"]))
        check.note = values["check_note"] or ""
    return item


def next_alarm(values: Mapping[str, Any]) -> datetime | None:
    """When the alarm worker must look at the action next: its due time while it is pending
    and its owner was not yet told it is overdue, else its scheduled effectiveness check."""
    if values["status"] in PENDING and values["overdue_reminded_at"] is None:
        return aware(values["due_at"])
    if values["check_status"] == SCHEDULED:
        return aware_or_none(values["check_due_at"])
    return None


def _future(field: str, moment: datetime, *, now: datetime) -> datetime:
    if moment <= now:
        raise InvalidArgument(field, "must be in the future")
    return moment


async def add_action(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    incident_id: str,
    client_id: str,
    actor: events_pb2.Actor,
    kind: str,
    title: str,
    description: str,
    owner: events_pb2.Person,
    due_at: datetime,
    verification_required: bool,
    incident_reference: str,
    incident_title: str,
    now: datetime,
) -> Row[Any]:
    if kind not in KINDS:
        raise InvalidArgument("kind", f"must be one of {', '.join(KINDS)}")
    if not owner.id:
        raise InvalidArgument("owner_id", "is required")
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "incident_id": incident_id,
        "client_id": client_id,
        "incident_reference": incident_reference[:32],
        "incident_title": incident_title[:MAX_TITLE],
        "kind": kind,
        "title": checked_text("title", title, limit=MAX_TITLE),
        "description": checked_text("description", description, limit=MAX_TEXT, required=False),
        "owner_id": owner.id,
        "owner_name": owner.name,
        "due_at": _future("due_at", due_at, now=now),
        "verification_required": verification_required,
        "status": OPEN,
        "created_by_id": actor.id,
        "created_by_name": actor.name,
        "created_at": now,
        "updated_at": now,
        "trace_context": current_trace_context(),
        "overdue_reminded_at": None,
        "check_status": None,
    }
    values["alarm_at"] = next_alarm(values)
    row = (
        await connection.execute(action_items.insert().values(values).returning(*action_items.c))
    ).one()
    await emit_about(
        connection,
        outbox,
        row,
        actor,
        ACTION_ADDED,
        events_pb2.ActionAdded(action=action_message(row, now=now)),
        now=now,
    )
    return row


async def get_action(
    connection: AsyncConnection,
    *,
    client_id: str | None,
    incident_id: str,
    action_id: str,
    for_update: bool = False,
) -> Row[Any]:
    query = select(action_items).where(
        action_items.c.id == action_id, action_items.c.incident_id == incident_id
    )
    if client_id is not None:
        query = query.where(action_items.c.client_id == client_id)
    if for_update:
        query = query.with_for_update()
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound(f"action {action_id} not found")
    return row


async def list_actions(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str
) -> list[Row[Any]]:
    query = (
        select(action_items)
        .where(action_items.c.incident_id == incident_id)
        .order_by(action_items.c.created_at, action_items.c.id)
    )
    if client_id is not None:
        query = query.where(action_items.c.client_id == client_id)
    return list((await connection.execute(query)).all())


def _moved(
    row: Row[Any],
    target: str,
    *,
    reason: str,
    actor: events_pb2.Actor,
    check_delay: timedelta,
    now: datetime,
) -> dict[str, Any]:
    """What a move to `target` changes besides the status."""
    changes: dict[str, Any] = {"status": target}
    if target == DONE:
        changes["done_at"] = now
        if row.kind in CHECKED_KINDS:
            # A fresh check, whatever an earlier one found.
            changes |= {
                "check_status": SCHEDULED,
                "check_due_at": now + check_delay,
                "checked_by_id": None,
                "checked_by_name": None,
                "checked_at": None,
                "check_note": None,
            }
    elif target == VERIFIED:
        changes |= {"verified_by_id": actor.id, "verified_by_name": actor.name, "verified_at": now}
    elif target == WONT_DO_REQUESTED:
        changes["wont_do_reason"] = reason.strip()
    elif target == WONT_DO:
        changes |= {
            "wont_do_reason": reason.strip() or row.wont_do_reason,
            "approved_by_id": actor.id,
            "approved_by_name": actor.name,
        }
    elif target == OPEN and row.status == WONT_DO_REQUESTED:
        changes["wont_do_reason"] = None
    elif target == OPEN and row.status in (DONE, VERIFIED):
        changes |= UNDONE
    return changes


async def change_action(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    client_id: str,
    incident_id: str,
    action_id: str,
    actor: events_pb2.Actor,
    status: str,
    reason: str,
    approver: bool,
    owner: events_pb2.Person | None,
    due_at: datetime | None,
    check_delay: timedelta,
    now: datetime,
) -> Row[Any]:
    """Moves the action (if `status`), gives it to another owner, or sets another due time."""
    if not status and owner is None and due_at is None:
        raise InvalidArgument("status", "give a status, an owner_id or a due_at to change")
    row = await get_action(
        connection,
        client_id=client_id,
        incident_id=incident_id,
        action_id=action_id,
        for_update=True,
    )
    if len(reason) > MAX_TEXT or "\x00" in reason:
        raise InvalidArgument("reason", f"must be at most {MAX_TEXT} characters, without NUL")
    changes: dict[str, Any] = {}
    if status:
        action_states.check_move(
            status=row.status,
            target=status,
            reason=reason,
            approver=approver,
            by_owner=actor.id == row.owner_id,
            verification_required=row.verification_required,
        )
        changes |= _moved(row, status, reason=reason, actor=actor, check_delay=check_delay, now=now)
    if owner is not None:
        changes |= {"owner_id": owner.id, "owner_name": owner.name}
    if due_at is not None:
        if row.status == WONT_DO:
            raise MoveRefused("the action will not be done: it has no due time to move")
        # A new due time: its owner is told again should it pass.
        changes |= {"due_at": _future("due_at", due_at, now=now), "overdue_reminded_at": None}
    after = dict(row._mapping) | changes
    changes |= {"alarm_at": next_alarm(after), "updated_at": now}
    updated = (
        await connection.execute(
            update(action_items)
            .where(action_items.c.id == row.id)
            .values(changes)
            .returning(*action_items.c)
        )
    ).one()
    await emit_about(
        connection,
        outbox,
        updated,
        actor,
        ACTION_UPDATED,
        events_pb2.ActionUpdated(
            action=action_message(updated, now=now), old_status=row.status, reason=reason.strip()
        ),
        now=now,
    )
    return updated


async def check_effectiveness(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    client_id: str,
    incident_id: str,
    action_id: str,
    actor: events_pb2.Actor,
    effective: bool,
    note: str,
    now: datetime,
) -> Row[Any]:
    """Records whether a done corrective action worked. Effective is confirmed once the check
    is due (the problem stayed away that long); not effective may be said at any time after it
    was done (the problem came back), and reopens the action."""
    row = await get_action(
        connection,
        client_id=client_id,
        incident_id=incident_id,
        action_id=action_id,
        for_update=True,
    )
    note = checked_text("note", note, limit=MAX_TEXT)
    if row.check_status not in (SCHEDULED, DUE):
        if row.kind not in CHECKED_KINDS:
            raise MoveRefused(f"a {row.kind} action has no effectiveness check")
        state = row.check_status or f"not scheduled until the action is {DONE}"
        raise MoveRefused(f"the action's effectiveness check is {state.replace('_', ' ')}")
    if effective and aware(row.check_due_at) > now:
        raise MoveRefused(
            f"the effectiveness check is due at {aware(row.check_due_at).isoformat()}: confirm "
            "it then (say not effective at any time if the problem comes back)"
        )
    changes: dict[str, Any] = {
        "check_status": EFFECTIVE if effective else NOT_EFFECTIVE,
        "checked_by_id": actor.id,
        "checked_by_name": actor.name,
        "checked_at": now,
        "check_note": note,
        "updated_at": now,
    }
    if not effective:
        # Reopened: to be done again; its past check stays on the record until then.
        changes |= {
            "status": OPEN,
            "overdue_reminded_at": None,
            "done_at": None,
            "verified_by_id": None,
            "verified_by_name": None,
            "verified_at": None,
        }
    changes["alarm_at"] = next_alarm(dict(row._mapping) | changes)
    updated = (
        await connection.execute(
            update(action_items)
            .where(action_items.c.id == row.id)
            .values(changes)
            .returning(*action_items.c)
        )
    ).one()
    await emit_about(
        connection,
        outbox,
        updated,
        actor,
        ACTION_EFFECTIVENESS_CHECKED,
        events_pb2.ActionEffectivenessChecked(
            action=action_message(updated, now=now),
            effective=effective,
            note=note,
            old_status=row.status,
        ),
        now=now,
    )
    return updated
