"""An incident's lifecycle commands, its roles and responders, and what it allows now.

Each route checks the permission table on the incident's current response (incident_access),
sends one command to triage, which owns the response, and answers the incident after it with
its new ETag. A stale If-Match is 412; a command the state does not allow is 409 naming the
state and the commands allowed in it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Response

from firebreak.api.events.v1 import events_pb2
from firebreak.api.intake.v1 import intake_pb2
from firebreak.api.triage.v1 import triage_pb2
from services.gateway import schemas
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import Caller, IncidentId, PersonId, Services
from services.gateway.incident_access import (
    IncidentInHand,
    in_incident_trace,
    incident_for,
    only_as_participant,
    report_of,
    staff_only,
    takes_part,
)
from services.gateway.incident_view import etag, incident_body, parse_if_match
from services.gateway.permissions import Action, Principal, authorize
from services.gateway.problems import Problem
from services.gateway.role_holders import role_holder

router = APIRouter(
    prefix="/v1/incidents/{incident_id}", tags=["lifecycle"], dependencies=[Depends(staff_only)]
)

IfMatch = Annotated[
    str | None,
    Header(description="The ETag of the incident as the caller last saw it; stale: 412."),
]


async def run_command(
    services: Backends,
    caller: Principal,
    incident: IncidentInHand,
    if_match: str | None,
    **command: object,
) -> tuple[intake_pb2.Incident, triage_pb2.IncidentResponse]:
    """Sends one command to triage as `caller`, in the incident's trace: the incident's report
    and its response after the command. The caller's permission is checked already."""
    request = triage_pb2.CommandRequest(
        incident_id=incident.incident_id,
        client_id=incident.client_id,
        actor=caller.as_actor(),
        expected_version=parse_if_match(if_match),
        participant_only=only_as_participant(
            caller,
            Action.INCIDENT_ACKNOWLEDGE if "acknowledge" in command else Action.INCIDENT_COMMAND,
        ),
        **command,  # type: ignore[arg-type]  # exactly one of the request's oneof commands
    )
    report = await report_of(services, incident)
    with in_incident_trace(report, f"command {request.WhichOneof('command')}"):
        changed = await services.triage.RunCommand(request, timeout=RPC_TIMEOUT_SECONDS)
    return report, changed


async def _run(
    services: Services,
    caller: Principal,
    incident: IncidentInHand,
    if_match: str | None,
    response: Response,
    **command: object,
) -> schemas.Incident:
    report, changed = await run_command(services, caller, incident, if_match, **command)
    response.headers["ETag"] = etag(changed.state.version)
    return incident_body(report, changed.state, caller)


def acknowledgement(caller: Principal) -> triage_pb2.Acknowledge:
    """Acknowledging as `caller`, who becomes commander when there is none (a key of no person
    cannot)."""
    commander = events_pb2.Person()
    if caller.person_id is not None:
        commander = events_pb2.Person(id=caller.person_id, name=caller.name)
    return triage_pb2.Acknowledge(commander_if_none=commander)


@router.post("/acknowledge", response_model=schemas.Incident)
async def acknowledge(
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> schemas.Incident:
    """Takes the incident on; whoever acknowledges becomes commander when there is none."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_ACKNOWLEDGE)
    return await _run(
        services, caller, incident, if_match, response, acknowledge=acknowledgement(caller)
    )


@router.post("/contain", response_model=schemas.Incident)
async def contain(
    body: schemas.Summary,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> schemas.Incident:
    """Records that the incident is contained; refused while required containment tasks are
    open, and for a P1 or P2 without a commander."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_COMMAND)
    return await _run(
        services,
        caller,
        incident,
        if_match,
        response,
        contain=triage_pb2.Contain(summary=body.summary),
    )


@router.post("/resolve", response_model=schemas.Incident)
async def resolve(
    body: schemas.Summary,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> schemas.Incident:
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_COMMAND)
    return await _run(
        services,
        caller,
        incident,
        if_match,
        response,
        resolve=triage_pb2.Resolve(summary=body.summary),
    )


@router.post("/reopen", response_model=schemas.Incident)
async def reopen(
    body: schemas.Reason,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> schemas.Incident:
    """Takes a resolved or closed incident back to acknowledged."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_COMMAND)
    return await _run(
        services, caller, incident, if_match, response, reopen=triage_pb2.Reopen(reason=body.reason)
    )


@router.post("/decline", response_model=schemas.Incident)
async def decline(
    body: schemas.Reason,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> schemas.Incident:
    """Ends an incident that is not one, with the reason."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_COMMAND)
    return await _run(
        services,
        caller,
        incident,
        if_match,
        response,
        decline=triage_pb2.Decline(reason=body.reason),
    )


@router.post("/merge", response_model=schemas.Incident)
async def merge(
    body: schemas.MergeInto,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> schemas.Incident:
    """Ends a duplicate by merging it into another incident of the same client."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_COMMAND)
    return await _run(
        services, caller, incident, if_match, response, merge=triage_pb2.Merge(into=body.into)
    )


@router.post("/reclassify", response_model=schemas.Incident)
async def reclassify(
    body: schemas.Reclassification,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> schemas.Incident:
    """Changes type, impact or urgency; the priority is derived again from the matrix."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_COMMAND)
    return await _run(
        services,
        caller,
        incident,
        if_match,
        response,
        reclassify=triage_pb2.Reclassify(
            type=body.type or "",
            impact=body.impact or "",
            urgency=body.urgency or "",
            reason=body.reason,
        ),
    )


@router.put("/roles/{role}", response_model=schemas.Incident)
async def assign_role(
    body: schemas.RoleAssignment,
    role: Annotated[schemas.IncidentRole, Path()],
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> schemas.Incident:
    """Gives a role to an active staff member inside the client's wall; a new commander
    replaces the old one, and the handover names both."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_COMMAND)
    person = await role_holder(services.engine, body.person_id, client_id=incident.client_id)
    return await _run(
        services,
        caller,
        incident,
        if_match,
        response,
        assign_role=triage_pb2.AssignRole(role=role, person=person, briefing=body.briefing),
    )


@router.post("/responders", response_model=schemas.Incident)
async def add_responder(
    body: schemas.PersonRef,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> schemas.Incident:
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_COMMAND)
    person = await role_holder(services.engine, body.person_id, client_id=incident.client_id)
    return await _run(
        services,
        caller,
        incident,
        if_match,
        response,
        add_responder=triage_pb2.AddResponder(person=person),
    )


@router.delete("/responders/{person_id}", response_model=schemas.Incident)
async def remove_responder(
    person_id: PersonId,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> schemas.Incident:
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_COMMAND)
    return await _run(
        services,
        caller,
        incident,
        if_match,
        response,
        remove_responder=triage_pb2.RemoveResponder(person_id=person_id),
    )


@router.get("/transitions", response_model=schemas.Transitions)
async def transitions(
    incident_id: IncidentId, caller: Caller, services: Services
) -> schemas.Transitions:
    """The commands allowed now and, for each refused one, the unmet condition."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_WORK_READ)
    listed = await services.triage.ListTransitions(incident.ref(), timeout=RPC_TIMEOUT_SECONDS)
    refusals = {
        item.command: _caller_refusal(caller, incident, item.command) or item.reason
        for item in listed.transitions
    }
    return schemas.Transitions(
        incident_id=listed.incident_id,
        status=listed.status,
        version=listed.version,
        allowed=[command for command, reason in refusals.items() if not reason],
        refused=[
            schemas.RefusedCommand(command=command, reason=reason)
            for command, reason in refusals.items()
            if reason
        ],
    )


def _caller_refusal(caller: Principal, incident: IncidentInHand, command: str) -> str:
    """Why the caller may not run `command` on this incident whatever its state, if so."""
    action = {
        "acknowledge": Action.INCIDENT_ACKNOWLEDGE,
        "close": Action.INCIDENT_CLOSE,  # routers/closure.py: its gates are checked on close
    }.get(command, Action.INCIDENT_COMMAND)
    try:
        authorize(
            caller,
            action,
            client_id=incident.client_id,
            participant=takes_part(caller, incident.state),
            incident_id=incident.incident_id,
        )
    except Problem as refused:
        return refused.detail
    return ""
