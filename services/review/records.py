"""Review's own copies of what other services decide, kept from the events it consumes: each
incident's report and newest response state (with its closure), its evidence's custody, and its
deadlines. The post-incident review, the closure gates and the metrics read these, so review
answers them without asking another service.

Events may arrive twice or out of order (a redelivery after a failed batch): the response state
is kept by version, custody by its log position, and a deadline's status only moves forward.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope, ResponseState
from firebreak.database import key_params, update_by
from firebreak.events import (
    DEADLINE_MARKED_NOT_APPLICABLE,
    DEADLINE_MET,
    DEADLINE_MISSED,
    DEADLINE_STARTED,
    EVIDENCE_COLLECTED,
    EVIDENCE_DISPOSED,
    EVIDENCE_RECEIVED,
    EVIDENCE_TRANSFERRED,
    INCIDENT_CLOSED,
    INCIDENT_DECLINED,
    INCIDENT_MERGED,
    INCIDENT_REPORTED,
    PAYLOAD_FIELDS,
    STATE_CHANGES,
    from_timestamp,
)
from services.review.models import deadline_records, evidence_records, incident_records

MILESTONES = ("triaged_at", "acknowledged_at", "contained_at", "resolved_at", "closed_at")
TARGETS = ("acknowledge_due", "contain_due", "resolve_due")
ROLES = ("incident_commander", "communications_lead", "scribe")
# A deadline's status only moves forward: a late "missed" never undoes a "met".
DEADLINE_RANK = {"pending": 0, "missed": 1, "met": 2, "not_applicable": 2, "cancelled": 2}


# Hot statements, built once (see firebreak.database.update_by).
_NEWER_STATE = update(incident_records).where(
    incident_records.c.incident_id == bindparam("key_incident_id"),
    incident_records.c.state_version < bindparam("key_state_version"),
)
_AS_REPORTED = update(incident_records).where(
    incident_records.c.incident_id == bindparam("key_incident_id"),
    incident_records.c.state_version == 0,
)


def _moment(message: Any, field: str) -> datetime | None:
    return from_timestamp(getattr(message, field)) if message.HasField(field) else None


def state_values(state: ResponseState) -> dict[str, Any]:
    """The incident_records columns a ResponseState sets."""
    values: dict[str, Any] = {
        "state_version": state.version,
        "status": state.status,
        "priority": state.priority,
        "highest_priority": state.highest_priority or state.priority,
        "type": state.type,
        "impact": state.impact,
        "urgency": state.urgency,
        "roles": {
            role: {"id": person.id, "name": person.name}
            for role in ROLES
            if (person := getattr(state, role)).id
        },
        "responders": [{"id": person.id, "name": person.name} for person in state.responders],
    }
    for field in (*MILESTONES, *TARGETS):
        values[field] = _moment(state, field)
    return values


async def _upsert(
    connection: AsyncConnection, table: Table, key: dict[str, Any], values: dict[str, Any]
) -> None:
    """Updates the row with `key`, or inserts it. A replica inserting the same row at the same
    moment makes this event fail (its batch is applied again without it); its redelivery then
    updates."""
    changed = await connection.execute(update_by(table, *key), values | key_params(key))
    if changed.rowcount == 0:
        await connection.execute(table.insert(), key | values)


async def apply_state(
    connection: AsyncConnection,
    *,
    incident_id: str,
    client_id: str,
    state: ResponseState,
    closure: dict[str, Any] | None = None,
) -> None:
    """Keeps `state` unless a newer version is kept already. `closure` (code and summary) is
    set with an incident.closed; any later state (a reopening) clears it."""
    values = state_values(state) | (closure or {"closure_code": None, "closure_summary": None})
    newer = await connection.execute(
        _NEWER_STATE, values | {"key_incident_id": incident_id, "key_state_version": state.version}
    )
    if newer.rowcount:
        return
    known = await connection.execute(
        select(incident_records.c.incident_id).where(incident_records.c.incident_id == incident_id)
    )
    if known.first() is None:
        await connection.execute(
            incident_records.insert(), values | {"incident_id": incident_id, "client_id": client_id}
        )


async def _reported(connection: AsyncConnection, event: EventEnvelope) -> None:
    report = event.incident_reported
    await _upsert(
        connection,
        incident_records,
        {"incident_id": event.incident_id},
        {
            "client_id": event.client_id,
            "reference": report.reference[:32],
            "title": report.title[:200],
            "description": report.description,
            "affected_assets": list(report.affected_assets),
            "detected_at": _moment(report, "detected_at"),
            "reported_at": from_timestamp(event.occurred_at),
        },
    )
    # The type, impact and urgency as reported, until triage's state says otherwise; cut to
    # their columns, as a producer of another version may send values triage does not know.
    await connection.execute(
        _AS_REPORTED,
        {
            "key_incident_id": event.incident_id,
            "type": report.type[:40],
            "impact": report.impact[:20],
            "urgency": report.urgency[:20],
        },
    )


async def _state_changed(connection: AsyncConnection, event: EventEnvelope) -> None:
    payload = getattr(event, PAYLOAD_FIELDS[event.type])
    closure = None
    if event.type == INCIDENT_CLOSED:
        closure = {
            "closure_code": event.incident_closed.closure_code,
            "closure_summary": event.incident_closed.summary,
        }
    await apply_state(
        connection,
        incident_id=event.incident_id,
        client_id=event.client_id,
        state=payload.state,
        closure=closure,
    )
    if event.type in (INCIDENT_DECLINED, INCIDENT_MERGED):
        # As notify does: a declined or merged incident's pending contractual deadlines no
        # longer apply (it emits no event for that).
        await connection.execute(
            update(deadline_records)
            .where(
                deadline_records.c.incident_id == event.incident_id,
                deadline_records.c.kind == "contractual",
                deadline_records.c.status == "pending",
            )
            .values(status="cancelled")
        )


async def _evidence_row(connection: AsyncConnection, event: EventEnvelope, filename: str) -> None:
    """Makes sure the item has a row, whichever of its events comes first."""
    known = await connection.execute(
        select(evidence_records.c.evidence_id).where(
            evidence_records.c.evidence_id == _evidence_id(event)
        )
    )
    if known.first() is None:
        await connection.execute(
            evidence_records.insert().values(
                evidence_id=_evidence_id(event),
                incident_id=event.incident_id,
                client_id=event.client_id,
                filename=filename[:255],
            )
        )


def _evidence_id(event: EventEnvelope) -> str:
    return str(getattr(event, PAYLOAD_FIELDS[event.type]).evidence_id)


async def _collected(connection: AsyncConnection, event: EventEnvelope) -> None:
    item = event.evidence_collected
    await _evidence_row(connection, event, item.filename)
    await connection.execute(
        update(evidence_records)
        .where(evidence_records.c.evidence_id == item.evidence_id)
        .values(
            filename=item.filename[:255],
            sha256=item.sha256,
            size_bytes=item.size_bytes,
            collected_by=item.collected_by[:200],
            collected_at=_moment(item, "collected_at") or from_timestamp(event.occurred_at),
        )
    )
    # The collector holds it first: the log's first entry (position 0).
    await _custody(
        connection,
        item.evidence_id,
        0,
        {"holder_id": event.actor.id, "holder_name": event.actor.name or item.collected_by},
    )


async def _custody(
    connection: AsyncConnection, evidence_id: str, position: int, values: dict[str, Any]
) -> None:
    await connection.execute(
        update(evidence_records)
        .where(
            evidence_records.c.evidence_id == evidence_id,
            evidence_records.c.custody_position < position,
        )
        .values(values | {"custody_position": position})
    )


async def _transferred(connection: AsyncConnection, event: EventEnvelope) -> None:
    moved = event.evidence_transferred
    await _evidence_row(connection, event, moved.filename)
    await _custody(
        connection,
        moved.evidence_id,
        moved.position,
        {
            "holder_id": moved.holder.id,
            "holder_name": moved.holder.name,
            "pending_transfer_id": moved.transfer_id,
            "pending_receiver_id": moved.receiver.id,
            "pending_receiver_name": moved.receiver.name,
        },
    )


async def _received(connection: AsyncConnection, event: EventEnvelope) -> None:
    moved = event.evidence_received
    await _evidence_row(connection, event, moved.filename)
    await _custody(
        connection,
        moved.evidence_id,
        moved.position,
        {
            "holder_id": moved.receiver.id,
            "holder_name": moved.receiver.name,
            "pending_transfer_id": None,
            "pending_receiver_id": None,
            "pending_receiver_name": None,
        },
    )


async def _disposed(connection: AsyncConnection, event: EventEnvelope) -> None:
    gone = event.evidence_disposed
    await _evidence_row(connection, event, gone.filename)
    await connection.execute(
        update(evidence_records)
        .where(evidence_records.c.evidence_id == gone.evidence_id)
        .values(disposed=True)
    )


async def _deadline(
    connection: AsyncConnection, event: EventEnvelope, status: str, **values: Any
) -> None:
    """Records the deadline (every deadline event carries it whole) at `status`, unless it
    has moved further already."""
    deadline = getattr(event, PAYLOAD_FIELDS[event.type]).deadline
    known = (
        await connection.execute(
            select(deadline_records.c.status).where(deadline_records.c.deadline_id == deadline.id)
        )
    ).first()
    if known is not None and DEADLINE_RANK[known.status] >= DEADLINE_RANK[status]:
        return
    await _upsert(
        connection,
        deadline_records,
        {"deadline_id": deadline.id},
        {
            "incident_id": event.incident_id,
            "client_id": event.client_id,
            "kind": deadline.kind,
            "rule": deadline.rule[:100],
            "flag": deadline.flag,
            "source": deadline.source[:1000],
            "due_at": from_timestamp(deadline.due_at),
            "status": status,
            **values,
        },
    )


async def _deadline_started(connection: AsyncConnection, event: EventEnvelope) -> None:
    await _deadline(connection, event, "pending")


async def _deadline_met(connection: AsyncConnection, event: EventEnvelope) -> None:
    met = event.deadline_met
    await _deadline(
        connection,
        event,
        "met",
        settled_at=from_timestamp(event.occurred_at),
        late=met.late,
        reference=met.reference[:200],
    )


async def _deadline_missed(connection: AsyncConnection, event: EventEnvelope) -> None:
    await _deadline(connection, event, "missed")


async def _deadline_not_applicable(connection: AsyncConnection, event: EventEnvelope) -> None:
    await _deadline(
        connection,
        event,
        "not_applicable",
        settled_at=from_timestamp(event.occurred_at),
        not_applicable_reason=event.deadline_marked_not_applicable.reason,
    )


PROJECTIONS: dict[str, Callable[[AsyncConnection, EventEnvelope], Awaitable[None]]] = {
    INCIDENT_REPORTED: _reported,
    **dict.fromkeys(STATE_CHANGES, _state_changed),
    EVIDENCE_COLLECTED: _collected,
    EVIDENCE_TRANSFERRED: _transferred,
    EVIDENCE_RECEIVED: _received,
    EVIDENCE_DISPOSED: _disposed,
    DEADLINE_STARTED: _deadline_started,
    DEADLINE_MET: _deadline_met,
    DEADLINE_MISSED: _deadline_missed,
    DEADLINE_MARKED_NOT_APPLICABLE: _deadline_not_applicable,
}


async def project(connection: AsyncConnection, event: EventEnvelope) -> None:
    """Keeps review's copy of what `event` changes, if it changes any."""
    projection = PROJECTIONS.get(event.type)
    if projection is not None:
        await projection(connection, event)
