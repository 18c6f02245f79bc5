"""Closing an incident: `POST /v1/incidents/{id}/close`, by a manager or admin (or its
commander, where the firm allows it: FIREBREAK_COMMANDER_MAY_CLOSE).

Review judges the firm's closure gates from its own copies of the PIR, the actions, the
evidence's custody and the deadlines (services/review/closure_gates.py), with triage's current
state for whether the incident is resolved; every unmet gate is named in one 409, machine-
readable in `unmet_gates`. When all are met, triage runs its close command at the version the
gates were checked against, and emits incident.closed with the closure code and summary.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from firebreak.api.review.v1 import review_pb2
from firebreak.api.triage.v1 import triage_pb2
from services.gateway import schemas
from services.gateway.backends import RPC_TIMEOUT_SECONDS
from services.gateway.dependencies import Caller, IncidentId, Services
from services.gateway.incident_access import incident_for, staff_only
from services.gateway.incident_view import etag, incident_body
from services.gateway.permissions import Action, Principal, authorize
from services.gateway.pir_schemas import Closure, ClosureGates, UnmetGate
from services.gateway.problems import Problem
from services.gateway.routers.lifecycle import run_command

router = APIRouter(
    prefix="/v1/incidents/{incident_id}", tags=["lifecycle"], dependencies=[Depends(staff_only)]
)

IfMatch = Annotated[
    str | None,
    Header(description="The ETag of the incident as the caller last saw it; stale: 412."),
]


def commands_it(caller: Principal, request: Request, commander_id: str) -> bool:
    """Whether the caller commands the incident and the firm lets commanders close."""
    allowed: bool = request.app.state.commander_may_close
    return allowed and caller.person_id is not None and caller.person_id == commander_id


@router.get("/closure-gates", response_model=ClosureGates)
async def closure_gates(
    incident_id: IncidentId, caller: Caller, services: Services
) -> ClosureGates:
    """The firm's closure gates and which of them the incident does not meet yet, as closing
    would judge them now: what a closing form shows before anyone tries."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_WORK_READ)
    checked = await services.review.CheckClosure(
        review_pb2.CheckClosureRequest(incident=incident.review_ref(), state=incident.state),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return ClosureGates(
        gates=list(checked.gates),
        unmet=[
            UnmetGate(gate=gate.gate, reason=gate.reason, items=list(gate.items))
            for gate in checked.unmet
        ],
    )


@router.post("/close", response_model=schemas.Incident)
async def close(
    body: Closure,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> schemas.Incident:
    """Closes a resolved incident with a closure code and summary, once every closure gate the
    firm applies is met; a `409` names each unmet gate and why (`unmet_gates`)."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_WORK_READ)
    authorize(
        caller,
        Action.INCIDENT_CLOSE,
        client_id=incident.client_id,
        commander=commands_it(caller, request, incident.state.incident_commander.id),
        incident_id=incident_id,
    )
    checked = await services.review.CheckClosure(
        review_pb2.CheckClosureRequest(incident=incident.review_ref(), state=incident.state),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    if checked.unmet:
        unmet = [
            {"gate": gate.gate, "reason": gate.reason, "items": list(gate.items)}
            for gate in checked.unmet
        ]
        allowed = await services.triage.ListTransitions(
            triage_pb2.IncidentRef(incident_id=incident_id, client_id=incident.client_id),
            timeout=RPC_TIMEOUT_SECONDS,
        )
        raise Problem(
            409,
            "The incident cannot be closed yet: "
            + "; ".join(f"{gate['gate']}: {gate['reason']}" for gate in unmet)
            + f". The incident is {incident.state.status}.",
            extensions={
                "unmet_gates": unmet,
                "gates": list(checked.gates),
                "incident_status": incident.state.status,
                "allowed": [
                    item.command
                    for item in allowed.transitions
                    if item.allowed and item.command != "close"
                ],
            },
        )
    # At the version the gates saw: a lifecycle change in between is a 412, not a closure.
    report, changed = await run_command(
        services,
        caller,
        incident,
        if_match or etag(incident.state.version),
        close=triage_pb2.Close(closure_code=body.closure_code, summary=body.summary),
    )
    response.headers["ETag"] = etag(changed.state.version)
    return incident_body(report, changed.state, caller)
