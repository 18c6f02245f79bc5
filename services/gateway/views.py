"""HTTP routes: each authenticates, validates, calls the owning service over gRPC, answers."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, cast

import grpc
from fastapi import APIRouter, Depends, Header, Query, Request, Response

from firebreak.api.intake.v1 import intake_pb2
from firebreak.api.review.v1 import review_pb2
from firebreak.database import reading
from firebreak.events import from_timestamp, to_timestamp
from services.gateway import schemas, tenants
from services.gateway.backends import Backends
from services.gateway.problems import Problem

RPC_TIMEOUT_SECONDS = 5.0
ID_PATTERN = re.compile(r"[A-Za-z0-9-]{1,64}")

router = APIRouter()


# Dependencies are async even where they need not be: FastAPI runs a plain `def` dependency in
# a worker thread, a thread hop per request for nothing.
async def get_backends(request: Request) -> Backends:
    backends: Backends = request.app.state.backends
    return backends


async def authenticate(
    backends: Annotated[Backends, Depends(get_backends)],
    authorization: Annotated[str | None, Header()] = None,
) -> tenants.Principal:
    unauthorized = Problem(
        401,
        "A valid API key is required: Authorization: Bearer <key>.",
        headers={"WWW-Authenticate": "Bearer"},
    )
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise unauthorized
    async with reading(backends.engine) as connection:
        principal = await tenants.authenticate(connection, key=key.strip())
    if principal is None:
        raise unauthorized
    return principal


async def require_admin(
    principal: Annotated[tenants.Principal, Depends(authenticate)],
) -> tenants.Principal:
    if not principal.is_admin:
        raise Problem(403, "This needs an admin key.")
    return principal


def _known_id(value: str) -> str:
    # Ids are UUIDs (or "operator"): anything else cannot exist, whatever the store would say.
    if not ID_PATTERN.fullmatch(value):
        raise Problem(404, "Not found.")
    return value


async def incident_id_path(incident_id: str) -> str:
    return _known_id(incident_id)


async def client_id_path(client_id: str) -> str:
    return _known_id(client_id)


IncidentId = Annotated[str, Depends(incident_id_path)]
ClientId = Annotated[str, Depends(client_id_path)]
Caller = Annotated[tenants.Principal, Depends(authenticate)]
Admin = Annotated[tenants.Principal, Depends(require_admin)]
Services = Annotated[Backends, Depends(get_backends)]


def _moment(message: intake_pb2.Incident, field: str) -> datetime | None:
    return from_timestamp(getattr(message, field)) if message.HasField(field) else None


def incident_body(message: intake_pb2.Incident) -> schemas.Incident:
    return schemas.Incident(
        id=message.id,
        reference=message.reference,
        client_id=message.client_id,
        status=message.status,
        priority=cast(schemas.Priority | None, message.priority or None),
        title=message.title,
        description=message.description,
        type=message.type,
        impact=message.impact,
        urgency=message.urgency,
        reporter=schemas.Reporter(name=message.reporter.name, email=message.reporter.email),
        affected_assets=list(message.affected_assets),
        labels=list(message.labels),
        detected_at=_moment(message, "detected_at"),
        created_at=from_timestamp(message.created_at),
        triaged_at=_moment(message, "triaged_at"),
        notified_at=_moment(message, "notified_at"),
        trace_id=message.trace_id,
    )


@router.post("/v1/incidents", status_code=201, response_model=schemas.Incident, tags=["incidents"])
async def report_incident(
    report: schemas.IncidentReport,
    caller: Caller,
    services: Services,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> schemas.Incident:
    """Reports an incident. Retrying with the same Idempotency-Key returns the same incident."""
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
    )
    if report.detected_at is not None:
        request.detected_at.CopyFrom(to_timestamp(report.detected_at))
    incident = await services.intake.ReportIncident(request, timeout=RPC_TIMEOUT_SECONDS)
    return incident_body(incident)


@router.get("/v1/incidents", response_model=schemas.IncidentPage, tags=["incidents"])
async def list_incidents(
    caller: Caller,
    services: Services,
    status: schemas.Status | None = None,
    priority: schemas.Priority | None = None,
    type: schemas.IncidentType | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.IncidentPage:
    """Incidents visible to the caller, newest first; pass next_cursor back for the next page."""
    page = await services.intake.ListIncidents(
        intake_pb2.ListIncidentsRequest(
            client_id=caller.client_id,
            all_clients=caller.is_admin,
            status=status or "",
            priority=priority or "",
            type=type or "",
            page_size=limit,
            page_token=cursor or "",
        ),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return schemas.IncidentPage(
        items=[incident_body(item) for item in page.incidents],
        next_cursor=page.next_page_token or None,
    )


@router.get("/v1/incidents/{incident_id}", response_model=schemas.Incident, tags=["incidents"])
async def get_incident(
    caller: Caller, incident_id: IncidentId, services: Services
) -> schemas.Incident:
    incident = await services.intake.GetIncident(
        intake_pb2.GetIncidentRequest(
            client_id=caller.client_id,
            all_clients=caller.is_admin,
            incident_id=incident_id,
        ),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return incident_body(incident)


@router.get(
    "/v1/incidents/{incident_id}/timeline", response_model=schemas.Timeline, tags=["incidents"]
)
async def get_timeline(
    caller: Caller, incident_id: IncidentId, services: Services
) -> schemas.Timeline:
    """Everything that happened to the incident, in order."""
    try:
        timeline = await services.review.GetTimeline(
            review_pb2.GetTimelineRequest(
                client_id=caller.client_id, all_clients=caller.is_admin, incident_id=incident_id
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        # Review has nothing yet: intake, the registry, says whether the incident exists (and
        # is the caller's) or is a 404. Only this rare path costs a second call.
        await services.intake.GetIncident(
            intake_pb2.GetIncidentRequest(
                client_id=caller.client_id, all_clients=caller.is_admin, incident_id=incident_id
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
        return schemas.Timeline(incident_id=incident_id, entries=[])
    return schemas.Timeline(
        incident_id=timeline.incident_id,
        entries=[
            schemas.TimelineEntry(
                event_id=entry.event_id,
                type=entry.type,
                occurred_at=from_timestamp(entry.occurred_at),
                producer=entry.producer,
                summary=entry.summary,
            )
            for entry in timeline.entries
        ],
    )


@router.post("/v1/clients", status_code=201, response_model=schemas.Client, tags=["admin"])
async def create_client(body: schemas.NewClient, _: Admin, services: Services) -> schemas.Client:
    async with services.engine.begin() as connection:
        return schemas.Client.model_validate(
            await tenants.create_client(connection, name=body.name)
        )


@router.post(
    "/v1/clients/{client_id}/api-keys",
    status_code=201,
    response_model=schemas.ApiKey,
    tags=["admin"],
)
async def create_api_key(
    _: Admin, client_id: ClientId, body: schemas.NewApiKey, services: Services
) -> schemas.ApiKey:
    async with services.engine.begin() as connection:
        return schemas.ApiKey.model_validate(
            await tenants.issue_key(connection, client_id=client_id, role=body.role)
        )


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"])
async def readyz(services: Services, response: Response) -> dict[str, object]:
    """Ready only when NATS and intake answer."""
    checks = {"nats": services.nats_connected(), "intake": await services.intake_serving()}
    if not all(checks.values()):
        response.status_code = 503
    return {"status": "ready" if all(checks.values()) else "not ready", "checks": checks}
