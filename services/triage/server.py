"""Triage's gRPC API: decisions, the response, its commands, transitions and tasks."""

from __future__ import annotations

from typing import Any

import grpc
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.events.v1 import events_pb2
from firebreak.api.triage.v1 import triage_pb2, triage_pb2_grpc
from firebreak.database import reading
from firebreak.errors import NotFound
from firebreak.events import to_timestamp
from firebreak.outbox import Outbox
from firebreak.tenancy import by_id_scope, client_scope, found_within
from services.triage import lifecycle, service, tasks
from services.triage.commands import run_command, situation_of
from services.triage.service import Rules


class TriageServicer(triage_pb2_grpc.TriageServiceServicer):
    def __init__(self, engine: AsyncEngine, outbox: Outbox, rules: Rules) -> None:
        self._engine = engine
        self._outbox = outbox
        self._rules = rules

    async def GetDecision(
        self, request: triage_pb2.GetDecisionRequest, context: grpc.aio.ServicerContext
    ) -> triage_pb2.TriageDecision:
        async with reading(self._engine) as connection:
            row = await service.get_decision(
                connection,
                client_id=client_scope(request),
                incident_id=request.incident_id,
            )
        return triage_pb2.TriageDecision(
            incident_id=row.incident_id,
            priority=row.priority,
            impact=row.impact,
            urgency=row.urgency,
            rationale=row.rationale,
            decided_by=row.decided_by,
            decided_at=to_timestamp(row.decided_at),
        )

    async def GetResponse(
        self, request: triage_pb2.IncidentRef, context: grpc.aio.ServicerContext
    ) -> triage_pb2.IncidentResponse:
        async with reading(self._engine) as connection:
            row = await service.get_response(
                connection, client_id=by_id_scope(request), incident_id=request.incident_id
            )
        if not found_within(request, row.client_id):
            raise NotFound(f"incident {request.incident_id} has no response yet")
        return self._response(row)

    async def RunCommand(
        self, request: triage_pb2.CommandRequest, context: grpc.aio.ServicerContext
    ) -> triage_pb2.IncidentResponse:
        scope = client_scope(request)
        async with self._outbox.transaction() as connection:
            row = await run_command(
                connection, outbox=self._outbox, rules=self._rules, request=request, client_id=scope
            )
        return self._response(row)

    async def ListTransitions(
        self, request: triage_pb2.IncidentRef, context: grpc.aio.ServicerContext
    ) -> triage_pb2.Transitions:
        async with reading(self._engine) as connection:
            row = await service.get_response(
                connection, client_id=client_scope(request), incident_id=request.incident_id
            )
            situation = await situation_of(connection, row)
        listed = []
        for command in lifecycle.PUBLIC_COMMANDS:
            reason = lifecycle.refusal(command, situation)
            listed.append(
                triage_pb2.Transition(command=command, allowed=reason is None, reason=reason or "")
            )
        return triage_pb2.Transitions(
            incident_id=row.incident_id, status=row.status, version=row.version, transitions=listed
        )

    async def ListTasks(
        self, request: triage_pb2.IncidentRef, context: grpc.aio.ServicerContext
    ) -> triage_pb2.TaskList:
        async with reading(self._engine) as connection:
            rows = await tasks.list_tasks(
                connection, client_id=client_scope(request), incident_id=request.incident_id
            )
        return triage_pb2.TaskList(tasks=[tasks.task_message(row) for row in rows])

    async def AddTask(
        self, request: triage_pb2.AddTaskRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.Task:
        scope = client_scope(request.incident)
        async with self._outbox.transaction() as connection:
            row = await tasks.add_task(
                connection, outbox=self._outbox, client_id=scope, request=request
            )
        return tasks.task_message(row)

    async def UpdateTask(
        self, request: triage_pb2.UpdateTaskRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.Task:
        scope = client_scope(request.incident)
        async with self._outbox.transaction() as connection:
            row = await tasks.update_task(
                connection, outbox=self._outbox, client_id=scope, request=request
            )
        return tasks.task_message(row)

    def _response(self, row: Row[Any]) -> triage_pb2.IncidentResponse:
        return triage_pb2.IncidentResponse(
            incident_id=row.incident_id,
            client_id=row.client_id,
            state=service.state_message(row, self._rules.policy),
        )
