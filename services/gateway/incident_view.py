"""An incident as the HTTP API shows it: the report from intake, the response from triage, and
what of it the caller may see. Also its ETag (the response's version)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import cast

from google.protobuf.message import Message

from firebreak.api.events.v1 import events_pb2
from firebreak.api.intake.v1 import intake_pb2
from firebreak.events import from_timestamp
from services.gateway import schemas
from services.gateway.permissions import Principal
from services.gateway.problems import Problem

ETAG = re.compile(r'^\s*"(\d{1,18})"\s*$')  # If-Match compares strongly (RFC 9110): no W/


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(header: str | None) -> int:
    """The version an If-Match names; 0 for none or `*` (any version)."""
    if header is None or header.strip() == "*":
        return 0
    found = ETAG.match(header)
    if found is None:
        raise Problem(400, 'If-Match must be an ETag this API returned, such as "3".')
    return int(found.group(1))


def _moment(message: Message, field: str) -> datetime | None:
    return from_timestamp(getattr(message, field)) if message.HasField(field) else None


def _person(person: events_pb2.Person) -> schemas.PersonSummary | None:
    return schemas.PersonSummary(id=person.id, name=person.name) if person.id else None


def incident_body(
    report: intake_pb2.Incident,
    state: events_pb2.ResponseState | None,
    caller: Principal,
) -> schemas.Incident:
    """`state`: triage's response when the caller has it fresher than intake's copy."""
    if state is None or state.version < report.response.version:
        state = report.response
    staff = caller.is_staff
    responded = state.version > 0  # intake's copy before triage's first event is empty
    return schemas.Incident(
        id=report.id,
        reference=report.reference,
        client_id=report.client_id,
        status=state.status if responded else report.status,
        priority=cast(schemas.Priority | None, (state.priority or report.priority) or None),
        highest_priority=cast(schemas.Priority | None, state.highest_priority or None),
        version=state.version,
        title=report.title,
        description=report.description,
        type=state.type or report.type,
        impact=state.impact or report.impact,
        urgency=state.urgency or report.urgency,
        reporter=schemas.Reporter(name=report.reporter.name, email=report.reporter.email),
        affected_assets=list(report.affected_assets),
        labels=list(report.labels),
        detected_at=_moment(report, "detected_at"),
        created_at=from_timestamp(report.created_at),
        triaged_at=_moment(state, "triaged_at") or _moment(report, "triaged_at"),
        notified_at=_moment(report, "notified_at"),
        milestones=schemas.Milestones(
            detected_at=_moment(report, "detected_at"),
            reported_at=from_timestamp(report.created_at),
            triaged_at=_moment(state, "triaged_at") or _moment(report, "triaged_at"),
            acknowledged_at=_moment(state, "acknowledged_at"),
            contained_at=_moment(state, "contained_at"),
            resolved_at=_moment(state, "resolved_at"),
            closed_at=_moment(state, "closed_at"),
        ),
        # The firm's internal targets; a client's contract terms come with the deadlines issue.
        targets=schemas.Targets(
            acknowledge_by=_moment(state, "acknowledge_due"),
            contain_by=_moment(state, "contain_due"),
            resolve_by=_moment(state, "resolve_due"),
        )
        if responded and staff
        else None,
        merged_into=state.merged_into or None,
        # Role holders are the firm's people: a client key is told nothing about them.
        roles=schemas.Roles(
            incident_commander=_person(state.incident_commander),
            communications_lead=_person(state.communications_lead),
            scribe=_person(state.scribe),
        )
        if staff
        else None,
        responders=[schemas.PersonSummary(id=p.id, name=p.name) for p in state.responders]
        if staff
        else None,
        trace_id=report.trace_id,
        alert_count=report.alert_count,
        dedup_key=report.dedup_key or None,
    )
