"""An incident's remediation, recovery, corrective and preventive actions. Staff only.

Adding one, or moving it on, is for the incident's participants and managers (permission
`incident_investigate`), and for the action's owner; wont_do needs a manager's approval
(`action_approve`). Review holds the states and their guards (services/review/action_states.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from firebreak.api.events.v1 import events_pb2
from firebreak.api.review.v1 import review_pb2
from firebreak.events import from_timestamp, to_timestamp
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import ActionId, Caller, IncidentId, Services
from services.gateway.incident_access import (
    IncidentInHand,
    in_incident_trace,
    incident_for,
    report_of,
    staff_only,
    takes_part,
)
from services.gateway.permissions import Action, Principal, authorize
from services.gateway.problems import Problem
from services.gateway.review_schemas import (
    ActionChange,
    ActionItem,
    ActionList,
    EffectivenessCheck,
    EffectivenessConfirmation,
    NewAction,
)
from services.gateway.role_holders import role_holder
from services.gateway.schemas import PersonSummary

router = APIRouter(
    prefix="/v1/incidents/{incident_id}/actions",
    tags=["actions"],
    dependencies=[Depends(staff_only)],
)


def _person(person: events_pb2.Person) -> PersonSummary | None:
    return PersonSummary(id=person.id, name=person.name) if person.id else None


def action_body(item: events_pb2.ActionItem) -> ActionItem:
    check = item.effectiveness if item.HasField("effectiveness") else None
    return ActionItem(
        id=item.id,
        kind=item.kind,  # type: ignore[arg-type]  # review checked it
        title=item.title,
        description=item.description,
        owner=PersonSummary(id=item.owner.id, name=item.owner.name),
        due_at=from_timestamp(item.due_at),
        overdue=item.overdue,
        verification_required=item.verification_required,
        status=item.status,  # type: ignore[arg-type]
        wont_do_reason=item.wont_do_reason or None,
        approved_by=_person(item.approved_by),
        done_at=from_timestamp(item.done_at) if item.HasField("done_at") else None,
        verified_by=_person(item.verified_by),
        verified_at=from_timestamp(item.verified_at) if item.HasField("verified_at") else None,
        effectiveness=EffectivenessCheck(
            status=check.status,  # type: ignore[arg-type]
            due_at=from_timestamp(check.due_at),
            checked_by=_person(check.checked_by),
            checked_at=from_timestamp(check.checked_at) if check.HasField("checked_at") else None,
            note=check.note,
        )
        if check is not None
        else None,
        created_by=PersonSummary(id=item.created_by.id, name=item.created_by.name),
        created_at=from_timestamp(item.created_at),
    )


def _may(caller: Principal, action: Action, incident: IncidentInHand) -> bool:
    try:
        authorize(caller, action, client_id=incident.client_id, incident_id=incident.incident_id)
    except Problem:
        return False
    return True


async def _action_in_hand(
    services: Backends, caller: Principal, incident_id: str, action_id: str
) -> tuple[IncidentInHand, review_pb2.ActionRef]:
    """The action, if the caller may work on it: as a participant or manager, or as its
    owner."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_WORK_READ)
    ref = review_pb2.ActionRef(incident=incident.review_ref(), action_id=action_id)
    item = await services.review.GetAction(ref, timeout=RPC_TIMEOUT_SECONDS)
    authorize(
        caller,
        Action.INCIDENT_INVESTIGATE,
        client_id=incident.client_id,
        participant=takes_part(caller, incident.state) or caller.person_id == item.owner.id,
        incident_id=incident_id,
    )
    return incident, ref


@router.post("", status_code=201, response_model=ActionItem)
async def add_action(
    body: NewAction, incident_id: IncidentId, caller: Caller, services: Services
) -> ActionItem:
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_INVESTIGATE)
    owner = await role_holder(
        services.engine, body.owner_id, client_id=incident.client_id, field="owner_id"
    )
    report = await report_of(services, incident)
    request = review_pb2.AddActionRequest(
        incident=incident.review_ref(),
        actor=caller.as_actor(),
        kind=body.kind,
        title=body.title,
        description=body.description,
        owner=owner,
        due_at=to_timestamp(body.due_at),
        verification_required=body.verification_required,
        incident_reference=report.reference,
        incident_title=report.title,
    )
    with in_incident_trace(report, "add_action"):
        item = await services.review.AddAction(request, timeout=RPC_TIMEOUT_SECONDS)
    return action_body(item)


@router.get("", response_model=ActionList)
async def list_actions(incident_id: IncidentId, caller: Caller, services: Services) -> ActionList:
    """Every action of the incident, oldest first, each with whether it is overdue."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_WORK_READ)
    listed = await services.review.ListActions(incident.review_ref(), timeout=RPC_TIMEOUT_SECONDS)
    return ActionList(items=[action_body(item) for item in listed.actions])


@router.patch("/{action_id}", response_model=ActionItem)
async def change_action(
    body: ActionChange,
    action_id: ActionId,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
) -> ActionItem:
    """Moves the action on (open → in_progress → done → verified; wont_do_requested, wont_do),
    gives it another owner or due time. A move the action's state does not allow is 409."""
    incident, ref = await _action_in_hand(services, caller, incident_id, action_id)
    request = review_pb2.ChangeActionRequest(
        action=ref,
        actor=caller.as_actor(),
        status=body.status or "",
        reason=body.reason,
        approver=_may(caller, Action.ACTION_APPROVE, incident),
    )
    if body.owner_id is not None:
        request.owner.CopyFrom(
            await role_holder(
                services.engine, body.owner_id, client_id=incident.client_id, field="owner_id"
            )
        )
    if body.due_at is not None:
        request.due_at.CopyFrom(to_timestamp(body.due_at))
    with in_incident_trace(await report_of(services, incident), "change_action"):
        item = await services.review.ChangeAction(request, timeout=RPC_TIMEOUT_SECONDS)
    return action_body(item)


@router.post("/{action_id}/effectiveness", response_model=ActionItem)
async def confirm_effectiveness(
    body: EffectivenessConfirmation,
    action_id: ActionId,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
) -> ActionItem:
    """Records a done corrective action's effectiveness check: effective (once the check is
    due), or not effective (at any time; the action reopens)."""
    incident, ref = await _action_in_hand(services, caller, incident_id, action_id)
    request = review_pb2.CheckEffectivenessRequest(
        action=ref, actor=caller.as_actor(), effective=body.effective, note=body.note
    )
    with in_incident_trace(await report_of(services, incident), "check_effectiveness"):
        item = await services.review.CheckEffectiveness(request, timeout=RPC_TIMEOUT_SECONDS)
    return action_body(item)
