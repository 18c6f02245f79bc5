"""Time spent on incidents: logged by the people who spent it, listed per incident, and totalled
per client, person and role for billing (JSON, or CSV). Staff only."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Response

from firebreak.api.events.v1 import events_pb2
from firebreak.api.review.v1 import review_pb2
from firebreak.database import reading
from firebreak.events import from_timestamp, to_timestamp
from services.gateway import clients
from services.gateway.backends import RPC_TIMEOUT_SECONDS
from services.gateway.dependencies import Caller, IdFilter, IncidentId, Services, require
from services.gateway.incident_access import incident_for, staff_only
from services.gateway.permissions import Action, Grant, Principal, scope
from services.gateway.problems import Problem
from services.gateway.review_schemas import (
    Moment,
    NewTimeEntry,
    TimeEntry,
    TimeEntryList,
    TimeReport,
)
from services.gateway.schemas import PersonSummary
from services.gateway.time_report import as_csv, time_report

router = APIRouter(tags=["time"])

TimeReader = Annotated[Principal, Depends(require(Action.TIME_REPORT))]
CSV = "text/csv"


def entry_body(entry: review_pb2.TimeEntry) -> TimeEntry:
    return TimeEntry(
        id=entry.id,
        person=PersonSummary(id=entry.person.id, name=entry.person.name),
        role=entry.role,  # type: ignore[arg-type]  # review's roles
        activity=entry.activity,
        minutes=entry.minutes,
        at=from_timestamp(entry.at),
        recorded_at=from_timestamp(entry.recorded_at),
    )


@router.post(
    "/v1/incidents/{incident_id}/time",
    status_code=201,
    response_model=TimeEntry,
    dependencies=[Depends(staff_only)],
)
async def log_time(
    body: NewTimeEntry, incident_id: IncidentId, caller: Caller, services: Services
) -> TimeEntry:
    """Logs time the caller spent on the incident."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_INVESTIGATE)
    if caller.person_id is None:
        raise Problem(403, "Time is logged by a person: a key of no person has none to log.")
    request = review_pb2.LogTimeRequest(
        incident=incident.review_ref(),
        person=events_pb2.Person(id=caller.person_id, name=caller.name),
        role=body.role,
        activity=body.activity,
        minutes=body.minutes,
    )
    if body.at is not None:
        request.at.CopyFrom(to_timestamp(body.at))
    entry = await services.review.LogTime(request, timeout=RPC_TIMEOUT_SECONDS)
    return entry_body(entry)


@router.get(
    "/v1/incidents/{incident_id}/time",
    response_model=TimeEntryList,
    dependencies=[Depends(staff_only)],
)
async def list_time(incident_id: IncidentId, caller: Caller, services: Services) -> TimeEntryList:
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_WORK_READ)
    listed = await services.review.ListTime(incident.review_ref(), timeout=RPC_TIMEOUT_SECONDS)
    return TimeEntryList(
        items=[entry_body(entry) for entry in listed.entries], total_minutes=listed.total_minutes
    )


@router.get(
    "/v1/reports/time",
    response_model=TimeReport,
    responses={200: {"content": {CSV: {}}, "description": "JSON, or CSV by Accept or format"}},
)
async def report_time(
    caller: TimeReader,
    services: Services,
    start: Annotated[Moment | None, Query(alias="from")] = None,
    to: Moment | None = None,
    client_id: IdFilter = None,
    format: Literal["json", "csv"] | None = None,
    accept: Annotated[str | None, Header()] = None,
) -> TimeReport | Response:
    """Minutes per client, person and role of work done in [from, to): managers and admins
    for the clients inside their wall, a responder their own. `format=csv` or `Accept:
    text/csv` answers CSV."""
    request = review_pb2.TimeReportRequest()
    if start is not None:
        getattr(request, "from").CopyFrom(to_timestamp(start))
    if to is not None:
        request.to.CopyFrom(to_timestamp(to))
    if scope(caller, Action.TIME_REPORT) is Grant.SELF:
        request.person_id = caller.id
    visible = caller.visible_clients()
    if client_id is not None:
        async with reading(services.engine) as connection:
            known = await clients.client_exists(connection, client_id)
        if not known or not caller.can_see_client(client_id):
            raise Problem(404, f"client {client_id} not found")
        request.client_id = client_id
    elif visible is None:
        request.all_clients = True
    else:
        request.client_ids.extend(sorted(visible))
    totals = await services.review.ReportTime(request, timeout=RPC_TIMEOUT_SECONDS)
    report = await time_report(services.engine, totals, start=start, end=to)
    wants_csv = format == "csv" or (format is None and CSV in (accept or ""))
    if wants_csv:
        return Response(
            as_csv(report),
            media_type=f"{CSV}; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="time-report.csv"'},
        )
    return report
