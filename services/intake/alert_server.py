"""Intake's gRPC methods for integrations and their alerts (issue 14), part of IntakeService.

An integration is found by its own id: a read's answer names its client, which the scope check
holds to the caller's token (firebreak/grpc_scope.py); a write checks it here before changing
anything. SubmitAlerts names no client: its caller (the gateway, for a sender that presented a
key) learns nothing of one, and the key's hash decides whose alerts they are.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import grpc
from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.api.intake.v1 import intake_pb2
from firebreak.database import reading
from firebreak.errors import NotFound
from firebreak.events import to_timestamp
from firebreak.grpc_scope import serving_scope
from firebreak.outbox import Outbox
from firebreak.telemetry import current_span_id, current_trace_id
from firebreak.token_buckets import TokenBucket
from services.intake import alerts, integrations

# A request that lost the race for a new dedup key runs again; it then finds the winner's alert.
SUBMIT_ATTEMPTS = 5


class AlertMethods:
    """The integration and alert RPCs; IntakeServicer provides the engine, outbox and limits."""

    _engine: AsyncEngine
    _outbox: Outbox
    _page_max_bytes: int
    # Per integration, in this replica's memory: with N replicas an integration may get up to
    # N times its rate, as the gateway's per-key limits do.
    _alert_buckets: dict[str, TokenBucket]

    async def CreateIntegration(
        self, request: intake_pb2.CreateIntegrationRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.IssuedIntegration:
        async with self._engine.begin() as connection:
            row, key = await integrations.create_integration(connection, request)
        return intake_pb2.IssuedIntegration(
            integration=integrations.integration_message(row), key=key
        )

    async def ListIntegrations(
        self, request: intake_pb2.ListIntegrationsRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.ListIntegrationsResponse:
        async with reading(self._engine) as connection:
            rows, token = await integrations.list_integrations(
                connection, request, max_bytes=self._page_max_bytes
            )
        return intake_pb2.ListIntegrationsResponse(
            integrations=[integrations.integration_message(row) for row in rows],
            next_page_token=token,
        )

    async def GetIntegration(
        self, request: intake_pb2.IntegrationRef, context: grpc.aio.ServicerContext
    ) -> intake_pb2.Integration:
        async with reading(self._engine) as connection:
            row = await integrations.get_integration(connection, request.id)
        return integrations.integration_message(row)

    async def RotateIntegrationKey(
        self, request: intake_pb2.IntegrationRef, context: grpc.aio.ServicerContext
    ) -> intake_pb2.IssuedIntegration:
        async with self._engine.begin() as connection:
            await _within_scope(connection, request.id)
            row, key = await integrations.rotate_key(connection, request.id)
        return intake_pb2.IssuedIntegration(
            integration=integrations.integration_message(row), key=key
        )

    async def DisableIntegration(
        self, request: intake_pb2.IntegrationRef, context: grpc.aio.ServicerContext
    ) -> intake_pb2.Integration:
        async with self._engine.begin() as connection:
            await _within_scope(connection, request.id)
            row = await integrations.disable(connection, request.id)
        return integrations.integration_message(row)

    async def SubmitAlerts(
        self, request: intake_pb2.SubmitAlertsRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.SubmitAlertsResponse:
        events = list(request.events)
        alerts.validate(events)
        async with reading(self._engine) as connection:
            found = await connection.execute(
                integrations.FIND_BY_KEY, {"key_hash": request.key_hash, "kind": request.kind}
            )
            row = found.first()
        if row is None:
            return intake_pb2.SubmitAlertsResponse(refused="unknown_key")
        wait = self._bucket(row).refusal(time.monotonic(), len(events))
        if wait:
            # Refused before anything is written: nothing of the request was taken.
            return intake_pb2.SubmitAlertsResponse(refused="rate_limited", retry_after_seconds=wait)
        sender = alerts.Sender(row)
        for attempt in range(1, SUBMIT_ATTEMPTS + 1):
            try:
                async with self._outbox.transaction() as connection:
                    now = datetime.now(UTC)
                    outcomes = [
                        await alerts.apply(
                            connection,
                            outbox=self._outbox,
                            sender=sender,
                            event=event,
                            now=now,
                            trace_id=current_trace_id(),
                            span_id=current_span_id(),
                        )
                        for event in events
                    ]
                return intake_pb2.SubmitAlertsResponse(outcomes=outcomes)
            except (IntegrityError, alerts.ConcurrentTrigger):
                if attempt == SUBMIT_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def ListAlerts(
        self, request: intake_pb2.ListAlertsRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.ListAlertsResponse:
        async with reading(self._engine) as connection:
            rows = await connection.execute(
                alerts.LIST_FOR_INCIDENT,
                {"incident_id": request.incident_id, "client_id": request.client_id},
            )
            return intake_pb2.ListAlertsResponse(alerts=[alert_message(row) for row in rows])

    def _bucket(self, integration: Row[Any]) -> TokenBucket:
        bucket = self._alert_buckets.get(integration.id)
        if bucket is None:
            bucket = self._alert_buckets[integration.id] = TokenBucket(
                integration.rate_per_second, integration.burst
            )
        return bucket


async def _within_scope(connection: AsyncConnection, integration_id: str) -> None:
    """NotFound, as for no integration, for one of a client beyond the call's scope token."""
    row = await integrations.get_integration(connection, integration_id)
    if not serving_scope.get().covers(row.client_id):
        raise NotFound(f"integration {integration_id} not found")


def alert_message(row: Row[Any]) -> intake_pb2.Alert:
    message = intake_pb2.Alert(
        id=row.id,
        integration_id=row.integration_id,
        integration_name=row.integration_name,
        dedup_key=row.dedup_key,
        incident_id=row.incident_id,
        status=row.status,
        count=row._mapping["count"],  # Row.count is a tuple method
        first_seen=to_timestamp(row.first_seen),
        last_seen=to_timestamp(row.last_seen),
        summary=row.summary,
        severity=row.severity,
        source=row.source,
        details_json=row.details,
    )
    for field in ("acknowledged_at", "resolved_at"):
        if (moment := getattr(row, field)) is not None:
            getattr(message, field).CopyFrom(to_timestamp(moment))
    return message
