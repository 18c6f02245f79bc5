"""Incidents: each route authenticates, validates, calls the owning service over gRPC, answers.

Who may see which incident is decided by permissions.authorize on the incident's client; a
read is asked of the service with the widest scope the caller could need (their own client, or
every client for staff) and the wall is applied to what comes back.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import grpc
from fastapi import APIRouter, Depends, Header, Query, Response

from firebreak.api.events.v1.events_pb2 import ResponseState
from firebreak.api.intake.v1 import intake_pb2
from firebreak.api.review.v1 import review_pb2
from firebreak.api.triage.v1 import triage_pb2
from firebreak.events import from_timestamp, to_timestamp
from services.gateway import schemas
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import Caller, IncidentId, Services, require
from services.gateway.incident_access import read_scope
from services.gateway.incident_view import etag, incident_body
from services.gateway.permissions import Action, Principal, authorize

OPTIONAL_READ_FAILURES = frozenset(
    {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
)

router = APIRouter(tags=["incidents"])

Reader = Annotated[Principal, Depends(require(Action.INCIDENT_READ))]


async def read_incident(
    services: Backends, caller: Principal, incident_id: str
) -> intake_pb2.Incident:
    """The incident if the caller may read it; otherwise the same 404 as a missing one."""
    incident = await services.intake.GetIncident(
        intake_pb2.GetIncidentRequest(incident_id=incident_id, **read_scope(caller)),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    authorize(caller, Action.INCIDENT_READ, client_id=incident.client_id, incident_id=incident_id)
    return incident


@router.post("/v1/incidents", status_code=201, response_model=schemas.Incident)
async def report_incident(
    report: schemas.IncidentReport,
    caller: Caller,
    services: Services,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> schemas.Incident:
    """Reports an incident. Retrying with the same Idempotency-Key returns the same incident."""
    # A caller reports into its own client: staff into "operator".
    authorize(caller, Action.INCIDENT_REPORT, client_id=caller.client_id)
    request = intake_pb2.ReportIncidentRequest(
        client_id=caller.client_id,
        idempotency_key=idempotency_key or "",
        title=report.title,
        description=report.description,
        type=report.type,
        impact=report.impact,
        urgency=report.urgency,
        reporter=intake_pb2.Reporter(name=report.reporter.name, email=report.reporter.email),
        affected_assets=report.affected_assets,
        labels=report.labels,
        actor=caller.as_actor(),
    )
    if report.detected_at is not None:
        request.detected_at.CopyFrom(to_timestamp(report.detected_at))
    incident = await services.intake.ReportIncident(request, timeout=RPC_TIMEOUT_SECONDS)
    return incident_body(incident, None, caller)


@router.get("/v1/incidents", response_model=schemas.IncidentPage)
async def list_incidents(
    caller: Reader,
    services: Services,
    status: schemas.Status | None = None,
    priority: schemas.Priority | None = None,
    type: schemas.IncidentType | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.IncidentPage:
    """Incidents visible to the caller, newest first; pass next_cursor back for the next page."""
    request = intake_pb2.ListIncidentsRequest(
        status=status or "",
        priority=priority or "",
        type=type or "",
        page_size=limit,
        page_token=cursor or "",
    )
    visible = caller.visible_clients()
    if not caller.is_staff:
        request.client_id = caller.client_id
    elif visible is None:
        request.all_clients = True
    else:
        request.client_ids.extend(sorted(visible))
    page = await services.intake.ListIncidents(request, timeout=RPC_TIMEOUT_SECONDS)
    return schemas.IncidentPage(
        items=[incident_body(item, None, caller) for item in page.incidents],
        next_cursor=page.next_page_token or None,
    )


@router.get("/v1/incidents/{incident_id}", response_model=schemas.Incident)
async def get_incident(
    caller: Reader, incident_id: IncidentId, services: Services, response: Response
) -> schemas.Incident:
    """The incident; its ETag is the version a command's If-Match names."""
    report, state = await asyncio.gather(
        read_incident(services, caller, incident_id),
        _current_state(services, caller, incident_id),
    )
    body = incident_body(report, state, caller)
    response.headers["ETag"] = etag(body.version)
    return body


async def _current_state(
    services: Backends, caller: Principal, incident_id: str
) -> ResponseState | None:
    """Triage's response, fresher than intake's copy right after a command; None before triage
    has seen the incident, or while triage is down (intake's copy then serves the read). Read
    alongside intake's, and used only once intake allowed the read."""
    try:
        response = await services.triage.GetResponse(
            triage_pb2.IncidentRef(incident_id=incident_id, **read_scope(caller)),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    except grpc.aio.AioRpcError as error:
        if error.code() not in OPTIONAL_READ_FAILURES:
            raise
        return None
    return response.state


def entry_body(entry: review_pb2.TimelineEntry) -> schemas.TimelineEntry:
    return schemas.TimelineEntry(
        event_id=entry.event_id,
        type=entry.type,
        occurred_at=from_timestamp(entry.occurred_at),
        recorded_at=from_timestamp(entry.recorded_at),
        producer=entry.producer,
        summary=entry.summary,
        fields=[schemas.TimelineField(name=f.name, value=f.value) for f in entry.fields],
        actor=schemas.Actor(id=entry.actor.id, kind=entry.actor.kind, name=entry.actor.name),
        audience=entry.audience,  # type: ignore[arg-type]  # review's two values
        key_event=entry.key_event,
    )


@router.get("/v1/incidents/{incident_id}/timeline", response_model=schemas.Timeline)
async def get_timeline(
    caller: Reader, incident_id: IncidentId, services: Services, key_events: bool = False
) -> schemas.Timeline:
    """Everything that happened to the incident, in order of when it happened;
    `key_events=true`: only the entries marked key events."""
    walled = caller.is_staff and caller.clients is not None
    scope = read_scope(caller)
    if walled:
        # The wall is about the incident's client, which only intake knows: one more call, for
        # walled staff only, and then the timeline of that client's incident.
        scope = {"client_id": (await read_incident(services, caller, incident_id)).client_id}
    try:
        timeline = await services.review.GetTimeline(
            review_pb2.GetTimelineRequest(
                incident_id=incident_id,
                # A client reads the entries meant for it, in words meant for it.
                audience="" if caller.is_staff else "client",
                key_events_only=key_events,
                **scope,
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        # Review has nothing yet: intake, the registry, says whether the incident exists (and
        # is the caller's) or is a 404. Only this rare path costs a second call.
        if not walled:
            await read_incident(services, caller, incident_id)
        return schemas.Timeline(incident_id=incident_id, entries=[])
    return schemas.Timeline(
        incident_id=timeline.incident_id,
        entries=[entry_body(entry) for entry in timeline.entries],
    )
