"""Intake's gRPC methods for integrations and their alerts (issue 14), part of IntakeService.

An integration is found by its own id: a read's answer names its client, which the scope check
holds to the caller's token (firebreak/grpc_scope.py); a write checks it here before changing
anything. SubmitAlerts and RecordHeartbeat name no client: their caller (the gateway, for a
sender that presented a key) learns nothing of one, and the key's hash decides whose alerts
they are.
"""

from __future__ import annotations

import time
from typing import Any

import grpc
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.api.intake.v1 import intake_pb2
from firebreak.database import reading
from firebreak.errors import NotFound
from firebreak.events import to_timestamp
from firebreak.grpc_scope import serving_scope
from firebreak.outbox import Outbox
from firebreak.token_buckets import TokenBucket
from services.intake import alerts, heartbeats, integrations


class AlertMethods:
    """The integration and alert RPCs; IntakeServicer provides the engine, outbox and limits."""

    _engine: AsyncEngine
    _outbox: Outbox
    _page_max_bytes: int
    # Per integration, in this replica's memory (shared with the SMTP listener): with N
    # replicas an integration may get up to N times its rate, as the gateway's per-key limits do.
    _alert_buckets: dict[str, TokenBucket]
    _mail_domain: str
    _min_interval_seconds: float

    async def CreateIntegration(
        self, request: intake_pb2.CreateIntegrationRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.IssuedIntegration:
        async with self._engine.begin() as connection:
            row, key = await integrations.create_integration(
                connection, request, min_interval_seconds=self._min_interval_seconds
            )
        return self._issued(row, key)

    def _issued(self, row: Row[Any], key: str) -> intake_pb2.IssuedIntegration:
        issued = intake_pb2.IssuedIntegration(
            integration=integrations.integration_message(row), key=key
        )
        if row.kind == "email":
            issued.email_address = integrations.email_address(key, self._mail_domain)
        return issued

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
        return self._issued(row, key)

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
        # A later part of a group takes no tokens: its first part took the whole group's.
        tokens = request.rate_tokens if request.HasField("rate_tokens") else len(events)
        wait = (
            bucket_for(self._alert_buckets, row).refusal(time.monotonic(), tokens) if tokens else 0
        )
        if wait:
            # Refused before anything is written: nothing of the request was taken.
            return intake_pb2.SubmitAlertsResponse(refused="rate_limited", retry_after_seconds=wait)
        try:
            outcomes = await alerts.apply_all(
                self._outbox, alerts.Sender(row), events, time_remaining=context.time_remaining
            )
        except alerts.DeadlinePassed:
            # Rolled back: the caller has given up and will send the events again.
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the call's deadline passed")
        return intake_pb2.SubmitAlertsResponse(outcomes=outcomes)

    async def RecordHeartbeat(
        self, request: intake_pb2.HeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.HeartbeatResponse:
        async with reading(self._engine) as connection:
            found = await connection.execute(
                integrations.FIND_BY_KEY, {"key_hash": request.key_hash, "kind": "heartbeat"}
            )
            row = found.first()
        if row is None:
            return intake_pb2.HeartbeatResponse(refused="unknown_key")
        wait = bucket_for(self._alert_buckets, row).refusal(time.monotonic())
        if wait:
            return intake_pb2.HeartbeatResponse(refused="rate_limited", retry_after_seconds=wait)
        ping = await heartbeats.record_ping(self._outbox, alerts.Sender(row))
        return intake_pb2.HeartbeatResponse(
            overdue_at=to_timestamp(ping.overdue_at), resolved=ping.resolved
        )

    async def ListAlerts(
        self, request: intake_pb2.ListAlertsRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.ListAlertsResponse:
        async with reading(self._engine) as connection:
            rows = await connection.execute(
                alerts.LIST_FOR_INCIDENT,
                {"incident_id": request.incident_id, "client_id": request.client_id},
            )
            return intake_pb2.ListAlertsResponse(alerts=[alert_message(row) for row in rows])


def bucket_for(buckets: dict[str, TokenBucket], integration: Row[Any]) -> TokenBucket:
    """The integration's token bucket in `buckets`, made on its first request."""
    bucket = buckets.get(integration.id)
    if bucket is None:
        bucket = buckets[integration.id] = TokenBucket(
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
