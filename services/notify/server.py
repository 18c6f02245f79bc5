"""Notify's gRPC API: what was sent about an incident."""

from __future__ import annotations

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.notify.v1 import notify_pb2, notify_pb2_grpc
from firebreak.database import reading
from firebreak.events import to_timestamp
from firebreak.tenancy import client_scope
from services.notify import service


class NotifyServicer(notify_pb2_grpc.NotifyServiceServicer):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def ListNotifications(
        self, request: notify_pb2.ListNotificationsRequest, context: grpc.aio.ServicerContext
    ) -> notify_pb2.ListNotificationsResponse:
        async with reading(self._engine) as connection:
            rows = await service.list_notifications(
                connection,
                client_id=client_scope(request),
                incident_id=request.incident_id,
            )
        return notify_pb2.ListNotificationsResponse(
            notifications=[
                notify_pb2.Notification(
                    id=row.id,
                    incident_id=row.incident_id,
                    channel=row.channel,
                    audience=row.audience,
                    priority=row.priority,
                    subject=row.subject,
                    sent_at=to_timestamp(row.sent_at),
                )
                for row in rows
            ]
        )
