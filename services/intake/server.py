"""Intake's gRPC API: the gateway reports incidents here and reads the registry."""

from __future__ import annotations

from typing import Any

import grpc
from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.intake.v1 import intake_pb2, intake_pb2_grpc
from firebreak.database import reading
from firebreak.errors import NotFound
from firebreak.events import to_timestamp
from firebreak.outbox import Outbox
from firebreak.telemetry import current_span_id, current_trace_id
from firebreak.tenancy import by_id_scope, client_scope, found_within
from firebreak.token_buckets import TokenBucket
from services.intake import service
from services.intake.alert_server import AlertMethods
from services.intake.attachment_server import AttachmentMethods


class IntakeServicer(AlertMethods, AttachmentMethods, intake_pb2_grpc.IntakeServiceServicer):
    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Outbox,
        *,
        page_max_bytes: int,
        alert_buckets: dict[str, TokenBucket],
        mail_domain: str,
        min_interval_seconds: float,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._page_max_bytes = page_max_bytes
        self._alert_buckets = alert_buckets
        self._mail_domain = mail_domain
        self._min_interval_seconds = min_interval_seconds

    async def ReportIncident(
        self, request: intake_pb2.ReportIncidentRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.Incident:
        service.validate_report(request)
        try:
            async with self._outbox.transaction() as connection:
                earlier = None
                if request.idempotency_key:
                    earlier = await service.find_by_idempotency_key(connection, request=request)
                if earlier is not None:
                    return incident_message(earlier)
                row = await service.report_incident(
                    connection,
                    outbox=self._outbox,
                    request=request,
                    trace_id=current_trace_id(),
                    span_id=current_span_id(),
                )
        except IntegrityError:
            # A concurrent request with the same Idempotency-Key won the race: answer with its
            # incident.
            if not request.idempotency_key:
                raise
            async with reading(self._engine) as connection:
                earlier = await service.find_by_idempotency_key(connection, request=request)
            if earlier is None:
                raise
            return incident_message(earlier)
        return incident_message(row)

    async def GetIncident(
        self, request: intake_pb2.GetIncidentRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.Incident:
        async with reading(self._engine) as connection:
            row = await service.get_incident(
                connection,
                client_id=by_id_scope(request),
                incident_id=request.incident_id,
            )
        if not found_within(request, row.client_id):
            raise NotFound(f"incident {request.incident_id} not found")
        return incident_message(row)

    async def ListIncidents(
        self, request: intake_pb2.ListIncidentsRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.ListIncidentsResponse:
        async with reading(self._engine) as connection:
            rows, next_token = await service.list_incidents(
                connection,
                # A list of clients (a walled staff member's) is a scope of its own.
                client_id=None if request.client_ids else client_scope(request),
                request=request,
                max_bytes=self._page_max_bytes,
                size_of=lambda row: incident_message(row).ByteSize(),
            )
        return intake_pb2.ListIncidentsResponse(
            incidents=[incident_message(row) for row in rows], next_page_token=next_token
        )


def incident_message(row: Row[Any]) -> intake_pb2.Incident:
    message = intake_pb2.Incident(
        id=row.id,
        reference=row.reference,
        client_id=row.client_id,
        status=row.status,
        priority=row.priority or "",
        title=row.title,
        description=row.description,
        type=row.type,
        impact=row.impact,
        urgency=row.urgency,
        reporter=intake_pb2.Reporter(name=row.reporter_name, email=row.reporter_email),
        affected_assets=row.affected_assets,
        labels=row.labels,
        created_at=to_timestamp(row.created_at),
        trace_id=row.trace_id,
        span_id=row.span_id or "",
        # A registry read has them (service.REGISTRY); a report just recorded has no alert yet.
        alert_count=row._mapping.get("alert_count") or 0,
        dedup_key=row._mapping.get("opened_for") or "",
    )
    if row.response is not None:
        message.response.ParseFromString(row.response)
    for field in ("detected_at", "triaged_at", "notified_at"):
        if (moment := getattr(row, field)) is not None:
            getattr(message, field).CopyFrom(to_timestamp(moment))
    return message
