"""The facts of a post-incident review, gathered from what review already knows: the incident
as reported and its response (records.py), the key-event timeline, the analysis, the actions,
the evidence and its custody, the deadlines and the notifications sent. Drafting takes them as
they are at that moment; pir.py keeps them with the review's narrative."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.api.review.v1 import review_pb2
from firebreak.errors import NotFound
from firebreak.events import (
    DEADLINE_REMINDER_SENT,
    NOTIFICATION_SENT,
    PAGE_DELIVERED,
    PAGE_FAILED,
    STATUS_UPDATE_OVERDUE,
    STATUS_UPDATE_POSTED,
    to_timestamp,
)
from firebreak.keyset_pages import aware_or_none
from services.review import actions, analysis, milestones, service
from services.review.models import (
    deadline_records,
    evidence_records,
    incident_records,
    timeline_entries,
)

# The timeline entries that are messages sent about the incident.
NOTIFICATION_TYPES = (
    NOTIFICATION_SENT,
    PAGE_DELIVERED,
    PAGE_FAILED,
    STATUS_UPDATE_POSTED,
    STATUS_UPDATE_OVERDUE,
    DEADLINE_REMINDER_SENT,
)


def _stamp(moment: datetime | None) -> Any:
    return to_timestamp(moment) if moment is not None else None


async def incident_record(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str
) -> Row[Any]:
    query = select(incident_records).where(incident_records.c.incident_id == incident_id)
    if client_id is not None:
        query = query.where(incident_records.c.client_id == client_id)
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound(f"incident {incident_id} not found")
    return row


def incident_message(record: Mapping[Any, Any]) -> review_pb2.ReviewIncident:
    return review_pb2.ReviewIncident(
        reference=record["reference"],
        title=record["title"],
        description=record["description"],
        type=record["type"],
        impact=record["impact"],
        urgency=record["urgency"],
        priority=record["priority"],
        highest_priority=record["highest_priority"],
        status=record["status"],
        affected_assets=record["affected_assets"] or [],
        closure_code=record["closure_code"] or "",
        closure_summary=record["closure_summary"] or "",
    )


def milestone_messages(record: Mapping[Any, Any]) -> list[review_pb2.Milestone]:
    return [
        review_pb2.Milestone(name=item.name, at=_stamp(item.at), due=_stamp(item.due))
        for item in milestones.milestones(record)
    ]


def duration_messages(record: Mapping[Any, Any]) -> list[review_pb2.Duration]:
    return [
        review_pb2.Duration(
            name=item.name,
            seconds=item.seconds,
            from_milestone=item.from_milestone,
            to_milestone=item.to_milestone,
        )
        for item in milestones.durations(record)
    ]


def role_messages(record: Mapping[Any, Any]) -> list[review_pb2.RoleHolder]:
    holders = [
        review_pb2.RoleHolder(role=role, person=events_pb2.Person(**person))
        for role, person in (record["roles"] or {}).items()
    ]
    holders += [
        review_pb2.RoleHolder(role="responder", person=events_pb2.Person(**person))
        for person in record["responders"] or []
    ]
    return holders


def analysis_message(row: Row[Any] | None, *, incident_id: str) -> review_pb2.Analysis:
    if row is None:
        return review_pb2.Analysis(incident_id=incident_id, version=0)
    return review_pb2.Analysis(
        incident_id=incident_id,
        version=row.version,
        summary=row.summary,
        root_cause=row.root_cause,
        five_whys=row.five_whys,
        contributing_factors=[
            events_pb2.ContributingFactor(**factor) for factor in row.contributing_factors
        ],
        updated_by=events_pb2.Actor(id=row.author_id, kind=row.author_kind, name=row.author_name),
        updated_at=to_timestamp(row.created_at),
    )


def evidence_message(row: Row[Any]) -> review_pb2.EvidenceItem:
    item = review_pb2.EvidenceItem(
        evidence_id=row.evidence_id,
        filename=row.filename,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        collected_by=row.collected_by,
        collected_at=_stamp(aware_or_none(row.collected_at)),
        holder=events_pb2.Person(id=row.holder_id, name=row.holder_name),
        checked_out=checked_out(row),
        disposed=row.disposed,
    )
    if checked_out(row):
        item.pending_receiver.CopyFrom(
            events_pb2.Person(id=row.pending_receiver_id, name=row.pending_receiver_name or "")
        )
    return item


def checked_out(row: Row[Any]) -> bool:
    """Released to someone who has not confirmed receipt: nobody has confirmed custody."""
    return row.pending_transfer_id is not None and not row.disposed


def deadline_message(row: Row[Any]) -> review_pb2.DeadlineOutcome:
    return review_pb2.DeadlineOutcome(
        id=row.deadline_id,
        kind=row.kind,
        rule=row.rule,
        flag=row.flag,
        source=row.source,
        due_at=to_timestamp(row.due_at),
        status=row.status,
        settled_at=_stamp(aware_or_none(row.settled_at)),
        late=row.late,
        reference=row.reference,
        not_applicable_reason=row.not_applicable_reason or "",
    )


async def evidence_of(connection: AsyncConnection, incident_id: str) -> list[Row[Any]]:
    query = (
        select(evidence_records)
        .where(evidence_records.c.incident_id == incident_id)
        .order_by(evidence_records.c.collected_at, evidence_records.c.evidence_id)
    )
    return list((await connection.execute(query)).all())


async def deadlines_of(connection: AsyncConnection, incident_id: str) -> list[Row[Any]]:
    query = (
        select(deadline_records)
        .where(deadline_records.c.incident_id == incident_id)
        .order_by(deadline_records.c.due_at, deadline_records.c.rule)
    )
    return list((await connection.execute(query)).all())


async def gather_facts(
    connection: AsyncConnection, *, client_id: str, incident_id: str, now: datetime
) -> review_pb2.PostIncidentReview:
    """Every fact the review shows, as review knows it now (the narrative left empty)."""
    record = (
        await incident_record(connection, client_id=client_id, incident_id=incident_id)
    )._mapping
    entries = await service.get_timeline(connection, client_id=client_id, incident_id=incident_id)
    latest = await analysis.latest_analysis(
        connection, client_id=client_id, incident_id=incident_id
    )
    action_rows = await actions.list_actions(
        connection, client_id=client_id, incident_id=incident_id
    )
    return review_pb2.PostIncidentReview(
        incident_id=incident_id,
        incident=incident_message(record),
        milestones=milestone_messages(record),
        durations=duration_messages(record),
        roles=role_messages(record),
        key_events=[service.entry_message(row) for row in entries if row.key_event],
        analysis=analysis_message(latest, incident_id=incident_id),
        actions=[actions.action_message(row, now=now) for row in action_rows],
        evidence=[evidence_message(row) for row in await evidence_of(connection, incident_id)],
        deadlines=[deadline_message(row) for row in await deadlines_of(connection, incident_id)],
        notifications=[
            service.entry_message(row) for row in entries if row.type in NOTIFICATION_TYPES
        ],
    )


async def client_entries(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str
) -> list[Row[Any]]:
    """The entries a client reads on its incident's timeline, in order."""
    query = (
        select(timeline_entries)
        .where(
            timeline_entries.c.incident_id == incident_id,
            timeline_entries.c.client_summary.is_not(None),
        )
        .order_by(timeline_entries.c.occurred_at, timeline_entries.c.seq)
    )
    if client_id is not None:
        query = query.where(timeline_entries.c.client_id == client_id)
    return list((await connection.execute(query)).all())
