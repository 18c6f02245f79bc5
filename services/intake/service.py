"""Intake's domain logic: validating and recording reports, and the registry's state changes.

Functions take the open connection of the caller's unit of work and never commit themselves.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Executable, Row, bindparam, case, cast, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.api.events.v1.events_pb2 import ResponseState
from firebreak.api.intake.v1.intake_pb2 import ListIncidentsRequest, ReportIncidentRequest
from firebreak.database import upsert_insert
from firebreak.errors import Conflict, InvalidArgument, NotFound
from firebreak.events import INCIDENT_REPORTED, from_timestamp, new_event
from firebreak.keyset_pages import ID, fill_page
from firebreak.outbox import Outbox
from services.intake.models import alerts, incidents, reference_counters

INCIDENT_TYPES = frozenset(
    {
        "security_breach",
        "data_loss",
        "service_outage",
        "service_degradation",
        "accident",
        "near_miss",
        "unsafe_condition",
        "compliance",
        "other",
    }
)
IMPACTS = frozenset({"extensive", "significant", "moderate", "minor"})
URGENCIES = frozenset({"critical", "high", "medium", "low"})
STATUSES = frozenset(
    {
        "reported",
        "triaged",
        "acknowledged",
        "contained",
        "resolved",
        "closed",
        "declined",
        "merged",
    }
)
PRIORITIES = frozenset({"P1", "P2", "P3", "P4"})
MAX_PAGE_SIZE = 200
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def validate_report(request: ReportIncidentRequest) -> None:
    """Raises InvalidArgument naming the first field that is wrong. The gateway checks the same
    and more for its clients; this is what any caller of intake is held to."""
    if not request.client_id:
        raise InvalidArgument("client_id", "is required")
    texts = {
        "title": request.title,
        "description": request.description,
        "reporter.name": request.reporter.name,
        "reporter.email": request.reporter.email,
        **{f"affected_assets.{i}": asset for i, asset in enumerate(request.affected_assets)},
        **{f"labels.{i}": label for i, label in enumerate(request.labels)},
    }
    for field, text in texts.items():
        if "\x00" in text:
            raise InvalidArgument(field, "must not contain NUL characters")
    if not 1 <= len(request.title.strip()) <= 200:
        raise InvalidArgument("title", "must be 1 to 200 characters")
    if len(request.description) > 20_000:
        raise InvalidArgument("description", "must be at most 20000 characters")
    if len(request.affected_assets) > 100 or any(
        not 1 <= len(asset) <= 200 for asset in request.affected_assets
    ):
        raise InvalidArgument("affected_assets", "must be at most 100 items of 1 to 200 characters")
    if len(request.labels) > 50 or any(not 1 <= len(label) <= 64 for label in request.labels):
        raise InvalidArgument("labels", "must be at most 50 items of 1 to 64 characters")
    for field, value, allowed in (
        ("type", request.type, INCIDENT_TYPES),
        ("impact", request.impact, IMPACTS),
        ("urgency", request.urgency, URGENCIES),
    ):
        if value not in allowed:
            raise InvalidArgument(field, f"must be one of {', '.join(sorted(allowed))}")
    if not 1 <= len(request.reporter.name.strip()) <= 200:
        raise InvalidArgument("reporter.name", "must be 1 to 200 characters")
    if len(request.reporter.email) > 320 or not EMAIL.match(request.reporter.email):
        raise InvalidArgument("reporter.email", "must be an email address")


def _fingerprint(request: ReportIncidentRequest) -> str:
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()


async def find_by_idempotency_key(
    connection: AsyncConnection, *, request: ReportIncidentRequest
) -> Row[Any] | None:
    """The incident an earlier request with the same key created, if any."""
    row = (
        await connection.execute(
            select(incidents).where(
                incidents.c.client_id == request.client_id,
                incidents.c.idempotency_key == request.idempotency_key,
            )
        )
    ).first()
    if row is not None and row.request_fingerprint != _fingerprint(request):
        raise Conflict("Idempotency-Key was already used for a different request")
    return row


async def report_incident(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    request: ReportIncidentRequest,
    trace_id: str,
    span_id: str,
) -> Row[Any]:
    """Records a new incident and its incident.reported event in the caller's transaction."""
    now = datetime.now(UTC)
    incident_id = str(uuid.uuid4())
    reference = await _next_reference(connection, client_id=request.client_id, year=now.year)
    detected_at = from_timestamp(request.detected_at) if request.HasField("detected_at") else None
    row = (
        await connection.execute(
            INSERT_INCIDENT,
            {
                "id": incident_id,
                "client_id": request.client_id,
                "reference": reference,
                "idempotency_key": request.idempotency_key or None,
                "request_fingerprint": _fingerprint(request),
                "status": "reported",
                "title": request.title.strip(),
                "description": request.description,
                "type": request.type,
                "impact": request.impact,
                "urgency": request.urgency,
                "reporter_name": request.reporter.name.strip(),
                "reporter_email": request.reporter.email,
                "affected_assets": list(request.affected_assets),
                "labels": list(request.labels),
                "detected_at": detected_at,
                "created_at": now,
                "trace_id": trace_id,
                "span_id": span_id or None,
            },
        )
    ).one()
    payload = events_pb2.IncidentReported(
        reference=reference,
        title=request.title.strip(),
        description=request.description,
        type=request.type,
        impact=request.impact,
        urgency=request.urgency,
        reporter=events_pb2.Reporter(name=request.reporter.name, email=request.reporter.email),
        affected_assets=request.affected_assets,
        labels=request.labels,
    )
    if detected_at is not None:
        payload.detected_at.CopyFrom(request.detected_at)
    await outbox.add(
        connection,
        new_event(
            INCIDENT_REPORTED,
            incident_id=incident_id,
            client_id=request.client_id,
            producer="intake",
            payload=payload,
            occurred_at=now,
            actor=request.actor,
        ),
    )
    return row


@cache
def _increment_counter(dialect: str) -> Executable:
    return (
        upsert_insert(dialect, reference_counters)
        .on_conflict_do_update(
            index_elements=["client_id", "year"],
            set_={"last_value": reference_counters.c.last_value + 1},
        )
        .returning(reference_counters.c.last_value)
    )


async def _next_reference(connection: AsyncConnection, *, client_id: str, year: int) -> str:
    number = (
        await connection.execute(
            _increment_counter(connection.dialect.name),
            {"client_id": client_id, "year": year, "last_value": 1},
        )
    ).scalar_one()
    return f"INC-{year}-{number:06d}"


# An incident as the registry answers it: with the alert events counted on it and the dedup key
# it was opened for (its first alert's), for an incident an alert opened.
_ALERT_COUNT = (
    # PostgreSQL sums a bigint as numeric: cast back to an integer.
    select(cast(func.coalesce(func.sum(alerts.c.count), 0), BigInteger))
    .where(alerts.c.incident_id == incidents.c.id)
    .scalar_subquery()
)
_OPENED_FOR = (
    select(alerts.c.dedup_key)
    .where(alerts.c.incident_id == incidents.c.id)
    .order_by(alerts.c.first_seen, alerts.c.id)
    .limit(1)
    .scalar_subquery()
)
REGISTRY = select(incidents, _ALERT_COUNT.label("alert_count"), _OPENED_FOR.label("opened_for"))


async def get_incident(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str
) -> Row[Any]:
    """An incident; another client's incident is as absent as one that never existed."""
    query = REGISTRY.where(incidents.c.id == incident_id)
    if client_id is not None:
        query = query.where(incidents.c.client_id == client_id)
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound(f"incident {incident_id} not found")
    return row


async def list_incidents(
    connection: AsyncConnection,
    *,
    client_id: str | None,
    request: ListIncidentsRequest,
    max_bytes: int,
    size_of: Callable[[Row[Any]], int],
) -> tuple[list[Row[Any]], str]:
    """Newest first, filtered, one page at a time (capped at `max_bytes` as `size_of` measures
    a row); returns the rows and the next page token."""
    page_size = min(request.page_size or 50, MAX_PAGE_SIZE)
    query = REGISTRY.order_by(incidents.c.seq.desc()).limit(page_size + 1)
    scope = []  # the clients whose incidents the caller may see; none: every client
    if client_id is not None:
        scope.append(incidents.c.client_id == client_id)
    elif request.client_ids and not request.all_clients:
        scope.append(incidents.c.client_id.in_(list(request.client_ids)))
    query = query.where(*scope)
    for field, value, allowed in (
        ("status", request.status, STATUSES),
        ("priority", request.priority, PRIORITIES),
        ("type", request.type, INCIDENT_TYPES),
    ):
        if value:
            if value not in allowed:
                raise InvalidArgument(field, f"must be one of {', '.join(sorted(allowed))}")
            query = query.where(incidents.c[field] == value)
    if request.page_token:
        # The cursor names the last incident shown, which the caller could see: the registry's
        # own sequence would tell a client how many incidents other clients reported.
        last = select(incidents.c.seq).where(
            incidents.c.id == _decode_page_token(request.page_token), *scope
        )
        last_seq = (await connection.execute(last)).scalar_one_or_none()
        if last_seq is None:
            raise InvalidArgument("cursor", "is not a cursor this API returned")
        query = query.where(incidents.c.seq < last_seq)
    rows = (await connection.execute(query)).all()
    page = fill_page(rows, limit=page_size, max_bytes=max_bytes, size_of=size_of)
    if len(page) == len(rows):
        return page, ""
    return page, _encode_page_token(page[-1].id)


# The hot path's statements, built once (docs/architecture.md, where the CPU goes).
INSERT_INCIDENT = incidents.insert().returning(*incidents.c)
_RESPONSE_VALUES: dict[str, Any] = {
    "version": bindparam("new_version"),
    "status": bindparam("new_status"),
    "priority": bindparam("new_priority"),
    # Reclassification changes these: the list filters by them. (An incident from before the
    # response existed has an empty type in triage: intake's own stays.)
    "type": func.coalesce(func.nullif(bindparam("new_type"), ""), incidents.c.type),
    "impact": bindparam("new_impact"),
    "urgency": bindparam("new_urgency"),
    "triaged_at": func.coalesce(incidents.c.triaged_at, bindparam("new_triaged_at")),
    "response": bindparam("new_response"),
}
# Events may arrive out of order or twice: only a newer version moves the registry on.
_NEWER = incidents.c.version < bindparam("new_version")
RECORD_RESPONSE = (
    update(incidents)
    .where(incidents.c.id == bindparam("incident_id"), _NEWER)
    .values(_RESPONSE_VALUES)
)
# notification.sent carries the state incident.triaged left (an earlier release's carries none:
# version 0, never newer). The notification is recorded whatever the version, the state if newer.
RECORD_NOTIFICATION = (
    update(incidents)
    .where(incidents.c.id == bindparam("incident_id"))
    .values(
        {
            name: case((_NEWER, value), else_=incidents.c[name])
            for name, value in _RESPONSE_VALUES.items()
        }
        | {"notified_at": func.coalesce(incidents.c.notified_at, bindparam("new_notified_at"))}
    )
)


def _encode_page_token(incident_id: str) -> str:
    return base64.urlsafe_b64encode(f"after:{incident_id}".encode()).decode().rstrip("=")


def _decode_page_token(token: str) -> str:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, incident_id = text.partition(":")
        if prefix != "after" or not ID.fullmatch(incident_id):
            raise ValueError(text)
        return incident_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidArgument("cursor", "is not a cursor this API returned") from error


def _response_parameters(incident_id: str, state: ResponseState) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "new_version": state.version,
        "new_status": state.status,
        "new_priority": state.priority,
        "new_type": state.type,
        "new_impact": state.impact,
        "new_urgency": state.urgency,
        "new_triaged_at": from_timestamp(state.triaged_at),
        "new_response": state.SerializeToString(),
    }


async def record_response(
    connection: AsyncConnection, *, incident_id: str, state: ResponseState
) -> bool:
    """Whether the state was newer than the registry's, and so recorded."""
    result = await connection.execute(RECORD_RESPONSE, _response_parameters(incident_id, state))
    return result.rowcount == 1


async def record_notification(
    connection: AsyncConnection, *, incident_id: str, notified_at: datetime, state: ResponseState
) -> None:
    """The first notification's time, and the state it carries if newer than the registry's."""
    await connection.execute(
        RECORD_NOTIFICATION,
        _response_parameters(incident_id, state) | {"new_notified_at": notified_at},
    )
