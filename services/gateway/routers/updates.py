"""An incident's status updates (issue 9, §4): posted by its communications lead, its commander
or a manager or admin inside the wall; `client` ones are emailed to the client's contacts and
shown in its timeline, `internal` ones never reach a client. Staff read them all; a client key
reads its own incidents' client updates only."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from firebreak.api.notify.v1 import updates_pb2
from firebreak.events import from_timestamp
from services.gateway import schemas
from services.gateway.backends import RPC_TIMEOUT_SECONDS
from services.gateway.dependencies import Caller, IncidentId, Services
from services.gateway.incident_access import (
    in_incident_trace,
    incident_for,
    report_of,
    staff_only,
)
from services.gateway.permissions import Action, Principal
from services.gateway.routers.incidents import Reader, read_incident

router = APIRouter(prefix="/v1/incidents/{incident_id}/updates", tags=["status updates"])

# As a client sees who spoke for the firm (review shows its timeline the same way).
RESPONSE_TEAM = schemas.Actor(id="", kind="staff", name="Response team")


def update_body(update: updates_pb2.StatusUpdate, caller: Principal) -> schemas.StatusUpdate:
    author = update.author
    return schemas.StatusUpdate(
        id=update.id,
        audience=update.audience,  # type: ignore[arg-type]  # notify's two audiences
        body=update.body,
        author=schemas.Actor(id=author.id, kind=author.kind, name=author.name)
        if caller.is_staff
        else RESPONSE_TEAM,
        posted_at=from_timestamp(update.posted_at),
        recipients=update.recipients,
    )


@router.post(
    "",
    status_code=201,
    response_model=schemas.StatusUpdate,
    dependencies=[Depends(staff_only)],
)
async def post_update(
    body: schemas.NewStatusUpdate, incident_id: IncidentId, caller: Caller, services: Services
) -> schemas.StatusUpdate:
    """Posts a status update: a `client` one is emailed to each of the client's contacts, an
    `internal` one to the incident's role holders and responders."""
    incident = await incident_for(services, caller, incident_id, Action.STATUS_UPDATE_POST)
    report = await report_of(services, incident)
    request = updates_pb2.PostUpdateRequest(
        incident_id=incident_id,
        client_id=incident.client_id,
        audience=body.audience,
        body=body.body,
        author=caller.as_actor(),
        reference=report.reference,
        title=report.title,
        state=incident.state,
    )
    with in_incident_trace(report, "post status update"):
        posted = await services.updates.PostUpdate(request, timeout=RPC_TIMEOUT_SECONDS)
    return update_body(posted, caller)


@router.get("", response_model=schemas.StatusUpdateList)
async def list_updates(
    incident_id: IncidentId, caller: Reader, services: Services
) -> schemas.StatusUpdateList:
    """The incident's status updates, oldest first: every one for staff, the client updates
    of its own incidents for a client."""
    incident = await read_incident(services, caller, incident_id)
    listed = await services.updates.ListUpdates(
        updates_pb2.ListUpdatesRequest(
            incident_id=incident_id,
            client_id=incident.client_id,
            audience="" if caller.is_staff else "client",
        ),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return schemas.StatusUpdateList(items=[update_body(item, caller) for item in listed.updates])
