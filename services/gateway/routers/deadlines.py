"""An incident's flags and deadlines (issue 9, §5). Flagging it starts the regulatory deadlines
of each flag not set before; notify keeps them, reminds before each and escalates a missed one.

Internal work: staff inside the wall read the deadlines; the incident's commander, role holders
and responders, and managers and admins, flag it and record a deadline met. A client key gets
404 before its body is even read.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends

from firebreak.api.notify.v1 import deadlines_pb2
from firebreak.events import from_timestamp, to_timestamp
from services.gateway import schemas
from services.gateway.backends import RPC_TIMEOUT_SECONDS
from services.gateway.dependencies import Caller, DeadlineId, IncidentId, Services
from services.gateway.incident_access import (
    in_incident_trace,
    incident_for,
    report_of,
    staff_only,
)
from services.gateway.permissions import Action

router = APIRouter(
    prefix="/v1/incidents/{incident_id}", tags=["deadlines"], dependencies=[Depends(staff_only)]
)


def deadline_body(deadline: deadlines_pb2.DeadlineState) -> schemas.Deadline:
    return schemas.Deadline(
        id=deadline.id,
        kind=deadline.kind,  # type: ignore[arg-type]  # notify's own kinds
        rule=deadline.rule,
        flag=deadline.flag or None,
        source=deadline.source,
        due_at=from_timestamp(deadline.due_at),
        status=deadline.status,  # type: ignore[arg-type]
        met_at=from_timestamp(deadline.met_at) if deadline.HasField("met_at") else None,
        reference=deadline.reference or None,
        late=deadline.late,
        met_by=deadline.met_by,  # type: ignore[arg-type]
        started_at=from_timestamp(deadline.started_at),
        cancelled_because=deadline.cancelled_because or None,  # type: ignore[arg-type]
        not_applicable_reason=deadline.not_applicable_reason or None,
    )


@router.post("/flags", response_model=schemas.FlagsSet)
async def flag_incident(
    body: schemas.NewFlags, incident_id: IncidentId, caller: Caller, services: Services
) -> schemas.FlagsSet:
    """Sets flags on the incident. Each flag not set before starts its regulatory deadlines,
    counted from `aware_at` and the incident's detection time (its report's `detected_at`, else
    when it was reported); a flag set already starts nothing again (`already_set`)."""
    incident = await incident_for(services, caller, incident_id, Action.DEADLINE_MANAGE)
    report = await report_of(services, incident)
    detected_at = report.detected_at if report.HasField("detected_at") else report.created_at
    request = deadlines_pb2.FlagIncidentRequest(
        incident_id=incident_id,
        client_id=incident.client_id,
        reference=report.reference,
        title=report.title,
        flags=body.flags,
        detected_at=detected_at,
        actor=caller.as_actor(),
    )
    # A moment ahead (clocks disagree a little) counts as now: no clock starts in the future.
    aware_at = min(body.aware_at or datetime.now(UTC), datetime.now(UTC))
    request.aware_at.CopyFrom(to_timestamp(aware_at))
    with in_incident_trace(report, "flag incident"):
        flagged = await services.deadlines.FlagIncident(request, timeout=RPC_TIMEOUT_SECONDS)
    return schemas.FlagsSet(
        flagged=list(flagged.flagged),
        already_set=list(flagged.already_set),
        deadlines=[deadline_body(deadline) for deadline in flagged.started],
    )


@router.get("/deadlines", response_model=schemas.DeadlineList)
async def list_deadlines(
    incident_id: IncidentId, caller: Caller, services: Services
) -> schemas.DeadlineList:
    """The incident's regulatory and contractual deadlines, by due time."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_WORK_READ)
    listed = await services.deadlines.ListDeadlines(
        deadlines_pb2.DeadlinesRequest(incident_id=incident_id, client_id=incident.client_id),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return schemas.DeadlineList(items=[deadline_body(item) for item in listed.deadlines])


@router.post("/deadlines/{deadline_id}/met", response_model=schemas.Deadline)
async def record_deadline_met(
    body: schemas.DeadlineMet,
    incident_id: IncidentId,
    deadline_id: DeadlineId,
    caller: Caller,
    services: Services,
) -> schemas.Deadline:
    """Records the deadline met now, with what it was met with (`reference`): `late` when that
    is after its due time (a missed one included); one met already is a 409."""
    incident = await incident_for(services, caller, incident_id, Action.DEADLINE_MANAGE)
    report = await report_of(services, incident)
    with in_incident_trace(report, "record deadline met"):
        met = await services.deadlines.RecordDeadlineMet(
            deadlines_pb2.RecordDeadlineMetRequest(
                incident_id=incident_id,
                client_id=incident.client_id,
                deadline_id=deadline_id,
                reference=body.reference,
                actor=caller.as_actor(),
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    return deadline_body(met)


@router.post("/deadlines/{deadline_id}/not-applicable", response_model=schemas.Deadline)
async def mark_deadline_not_applicable(
    body: schemas.DeadlineNotApplicable,
    incident_id: IncidentId,
    deadline_id: DeadlineId,
    caller: Caller,
    services: Services,
) -> schemas.Deadline:
    """Sets a pending or missed deadline aside with the reason it does not apply (e.g. no
    risk to individuals, so no GDPR notification is owed): no more reminders, and it no longer
    holds back closing the incident. One met, cancelled or set aside already is a 409."""
    incident = await incident_for(services, caller, incident_id, Action.DEADLINE_MANAGE)
    report = await report_of(services, incident)
    with in_incident_trace(report, "mark deadline not applicable"):
        marked = await services.deadlines.MarkDeadlineNotApplicable(
            deadlines_pb2.MarkNotApplicableRequest(
                incident_id=incident_id,
                client_id=incident.client_id,
                deadline_id=deadline_id,
                reason=body.reason,
                actor=caller.as_actor(),
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    return deadline_body(marked)
