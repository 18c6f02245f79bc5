"""Who may act on one incident: loads the incident's response from triage (the authoritative
copy, so a commander named a moment ago is already one) and checks the permission table."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.trace import Span

from firebreak.api.events.v1 import events_pb2
from firebreak.api.intake.v1 import intake_pb2
from firebreak.api.review.v1 import review_pb2
from firebreak.api.triage.v1 import triage_pb2
from firebreak.telemetry import span_in_trace
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import Caller, IncidentId
from services.gateway.permissions import (
    PERMISSIONS,
    Action,
    Grant,
    Principal,
    authorize,
    incident_not_found,
)
from services.gateway.problems import Problem


@dataclass(frozen=True)
class IncidentInHand:
    """An incident the caller may act on, and its response as it was when checked."""

    incident_id: str
    client_id: str
    state: events_pb2.ResponseState

    def ref(self) -> triage_pb2.IncidentRef:
        # The check is done: the caller's scope is this incident's client.
        return triage_pb2.IncidentRef(incident_id=self.incident_id, client_id=self.client_id)

    def review_ref(self) -> review_pb2.IncidentRef:
        return review_pb2.IncidentRef(incident_id=self.incident_id, client_id=self.client_id)


def read_scope(caller: Principal) -> dict[str, Any]:
    """The scope fields of a read by id, exactly what the caller's scope token covers
    (dependencies.act_for): a client kind reads its own client; walled staff the clients they
    may see (`client_ids`: what is beyond them is as absent as a missing item), unwalled staff
    every client. `authorize` then checks the item that comes back."""
    if not caller.is_staff:
        return {"client_id": caller.client_id}
    visible = caller.visible_clients()
    if visible is None:
        return {"all_clients": True}
    return {"client_ids": sorted(visible)}


async def staff_only(caller: Caller, incident_id: IncidentId) -> None:
    """A router dependency for the incident's internal work (commands, tasks, transitions): a
    client key gets the 404 of a missing incident before its body is even validated, so it
    cannot learn from a 422 which commands exist."""
    if not caller.is_staff:
        raise incident_not_found(incident_id)


async def report_of(backends: Backends, incident: IncidentInHand) -> intake_pb2.Incident:
    """The incident's report from intake, for the body of a command's answer and its trace."""
    return await backends.intake.GetIncident(
        intake_pb2.GetIncidentRequest(
            incident_id=incident.incident_id, client_id=incident.client_id
        ),
        timeout=RPC_TIMEOUT_SECONDS,
    )


def in_incident_trace(report: intake_pb2.Incident, name: str) -> AbstractContextManager[Span]:
    """Runs a command's calls in the incident's own trace (linked to the request's), so an SRE
    finds the whole handling of an incident, commands included, in one trace."""
    return span_in_trace(name, trace_id=report.trace_id, parent_span_id=report.span_id)


def only_as_participant(principal: Principal, action: Action) -> bool:
    """Whether the principal may do `action` only while taking part in the incident: triage
    checks that again under its row lock."""
    return PERMISSIONS[action].get(principal.kind) is Grant.PARTICIPANT


def takes_part(principal: Principal, state: events_pb2.ResponseState) -> bool:
    """Whether the principal holds a role in the incident or responds to it."""
    people = [state.incident_commander, state.communications_lead, state.scribe, *state.responders]
    return principal.person_id is not None and any(
        person.id == principal.person_id for person in people
    )


def speaks_for(principal: Principal, state: events_pb2.ResponseState) -> bool:
    """Whether the principal is the incident's communications lead or its commander."""
    return principal.person_id is not None and principal.person_id in (
        state.communications_lead.id,
        state.incident_commander.id,
    )


async def incident_for(
    backends: Backends, principal: Principal, incident_id: str, action: Action
) -> IncidentInHand:
    """The incident if `principal` may do `action` on it; a Problem (404, 403, 409) otherwise."""
    try:
        response = await backends.triage.GetResponse(
            triage_pb2.IncidentRef(incident_id=incident_id, **read_scope(principal)),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        await _refuse_untriaged(backends, principal, incident_id, action)
        raise  # not reached: _refuse_untriaged always raises
    authorize(
        principal,
        action,
        client_id=response.client_id,
        participant=takes_part(principal, response.state),
        communicator=speaks_for(principal, response.state),
        incident_id=incident_id,
    )
    return IncidentInHand(incident_id, response.client_id, response.state)


async def _refuse_untriaged(
    backends: Backends, principal: Principal, incident_id: str, action: Action
) -> None:
    """Triage has not seen the incident: it does not exist, or it was reported a moment ago."""
    try:
        incident = await backends.intake.GetIncident(
            intake_pb2.GetIncidentRequest(incident_id=incident_id, **read_scope(principal)),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            raise incident_not_found(incident_id) from None
        raise
    authorize(principal, action, client_id=incident.client_id, incident_id=incident_id)
    raise Problem(
        409,
        "The incident is reported and still being triaged; retry in a moment.",
        headers={"Retry-After": "1"},
        extensions={"incident_status": "reported", "allowed": []},
    )
