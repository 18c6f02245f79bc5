"""Notes on an incident's timeline, and key events. The firm's investigation record: staff
only (a client key gets 404; a client speaks through its reports and reads the firm's status
updates and client notes in its timeline)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from firebreak.api.review.v1 import review_pb2
from firebreak.events import to_timestamp
from services.gateway import schemas
from services.gateway.backends import RPC_TIMEOUT_SECONDS
from services.gateway.dependencies import Caller, EntryId, IncidentId, Services
from services.gateway.incident_access import (
    in_incident_trace,
    incident_for,
    report_of,
    staff_only,
)
from services.gateway.permissions import Action
from services.gateway.review_schemas import KeyEventMark, NewNote
from services.gateway.routers.incidents import entry_body

router = APIRouter(
    prefix="/v1/incidents/{incident_id}", tags=["investigation"], dependencies=[Depends(staff_only)]
)


@router.post("/notes", status_code=201, response_model=schemas.TimelineEntry)
async def add_note(
    body: NewNote, incident_id: IncidentId, caller: Caller, services: Services
) -> schemas.TimelineEntry:
    """Writes a note on the timeline, by its author; `occurred_at` places it when what it tells
    happened, while `recorded_at` says when it was written."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_INVESTIGATE)
    request = review_pb2.AddNoteRequest(
        incident=incident.review_ref(),
        actor=caller.as_actor(),
        body=body.body,
        audience=body.audience,
    )
    if body.occurred_at is not None:
        request.occurred_at.CopyFrom(to_timestamp(body.occurred_at))
    with in_incident_trace(await report_of(services, incident), "add_note"):
        entry = await services.review.AddNote(request, timeout=RPC_TIMEOUT_SECONDS)
    return entry_body(entry)


@router.patch("/timeline/{entry_id}", response_model=schemas.TimelineEntry)
async def mark_key_event(
    body: KeyEventMark,
    entry_id: EntryId,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
) -> schemas.TimelineEntry:
    """Marks any entry of the timeline a key event (`GET …/timeline?key_events=true` lists
    those), or no longer one."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_INVESTIGATE)
    entry = await services.review.MarkKeyEvent(
        review_pb2.MarkKeyEventRequest(
            incident=incident.review_ref(), event_id=entry_id, key_event=body.key_event
        ),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return entry_body(entry)
