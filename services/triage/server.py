"""Triage's gRPC API: read a decision."""

from __future__ import annotations

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.triage.v1 import triage_pb2, triage_pb2_grpc
from firebreak.database import reading
from firebreak.events import to_timestamp
from firebreak.tenancy import client_scope
from services.triage import service


class TriageServicer(triage_pb2_grpc.TriageServiceServicer):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

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
