"""An incident's tasks: its playbook's and ad-hoc ones. Internal: a client key gets 404."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from firebreak.api.events.v1 import events_pb2
from firebreak.api.triage.v1 import triage_pb2
from services.gateway import schemas
from services.gateway.backends import RPC_TIMEOUT_SECONDS
from services.gateway.dependencies import Caller, IncidentId, Services, TaskId
from services.gateway.incident_access import (
    in_incident_trace,
    incident_for,
    only_as_participant,
    report_of,
    staff_only,
)
from services.gateway.permissions import Action
from services.gateway.role_holders import role_holder

router = APIRouter(
    prefix="/v1/incidents/{incident_id}/tasks", tags=["tasks"], dependencies=[Depends(staff_only)]
)


def task_body(task: events_pb2.Task) -> schemas.Task:
    return schemas.Task(
        id=task.id,
        title=task.title,
        description=task.description,
        required=task.required,
        phase=task.phase,  # type: ignore[arg-type]  # triage validated it
        owner_role=task.owner_role,  # type: ignore[arg-type]
        status=task.status,  # type: ignore[arg-type]
        assignee=schemas.PersonSummary(id=task.assignee.id, name=task.assignee.name)
        if task.assignee.id
        else None,
        note=task.note,
        source=task.source,
    )


@router.get("", response_model=schemas.TaskList)
async def list_tasks(
    incident_id: IncidentId, caller: Caller, services: Services
) -> schemas.TaskList:
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_WORK_READ)
    listed = await services.triage.ListTasks(incident.ref(), timeout=RPC_TIMEOUT_SECONDS)
    return schemas.TaskList(items=[task_body(task) for task in listed.tasks])


@router.post("", status_code=201, response_model=schemas.Task)
async def add_task(
    body: schemas.NewTask, incident_id: IncidentId, caller: Caller, services: Services
) -> schemas.Task:
    """Adds an ad-hoc task."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_COMMAND)
    request = triage_pb2.AddTaskRequest(
        incident=incident.ref(),
        actor=caller.as_actor(),
        title=body.title,
        description=body.description,
        required=body.required,
        phase=body.phase,
        owner_role=body.owner_role,
        participant_only=only_as_participant(caller, Action.INCIDENT_COMMAND),
    )
    with in_incident_trace(await report_of(services, incident), "command add_task"):
        task = await services.triage.AddTask(request, timeout=RPC_TIMEOUT_SECONDS)
    return task_body(task)


@router.patch("/{task_id}", response_model=schemas.Task)
async def update_task(
    body: schemas.TaskChange,
    task_id: TaskId,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
) -> schemas.Task:
    """Moves a task on (skipping needs a reason), assigns it, or adds to its notes."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_COMMAND)
    request = triage_pb2.UpdateTaskRequest(
        incident=incident.ref(),
        actor=caller.as_actor(),
        task_id=task_id,
        reason=body.reason or "",
        participant_only=only_as_participant(caller, Action.INCIDENT_COMMAND),
    )
    if body.status is not None:
        request.status = body.status
    if body.note is not None:
        request.note = body.note
    if "assignee_id" in body.model_fields_set:
        assignee = events_pb2.Person()  # null: unassign
        if body.assignee_id is not None:
            assignee = await role_holder(
                services.engine, body.assignee_id, client_id=incident.client_id, field="assignee_id"
            )
        request.assignee.CopyFrom(assignee)
    with in_incident_trace(await report_of(services, incident), "command update_task"):
        task = await services.triage.UpdateTask(request, timeout=RPC_TIMEOUT_SECONDS)
    return task_body(task)
