"""Notify's gRPC API: what was sent about an incident, and every delivery of its messages."""

from __future__ import annotations

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.notify.v1 import notify_pb2, notify_pb2_grpc
from firebreak.database import reading
from firebreak.events import to_timestamp
from firebreak.tenancy import client_scope
from services.notify import contact_methods, service


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

    async def ListDeliveries(
        self, request: notify_pb2.ListNotificationsRequest, context: grpc.aio.ServicerContext
    ) -> notify_pb2.ListDeliveriesResponse:
        async with reading(self._engine) as connection:
            rows = await contact_methods.list_deliveries(
                connection, client_id=client_scope(request), incident_id=request.incident_id
            )
        listed = []
        for row in rows:
            delivery = notify_pb2.Delivery(
                id=row.id,
                person_id=row.person_id,
                person_name=row.person_name,
                channel=row.channel,
                target=contact_methods.delivery_target(row.channel, row.address),
                status=row.status,
                attempts=row.attempts,
                last_error=row.last_error or "",
                step=row.step,
                created_at=to_timestamp(row.created_at),
                purpose=row.purpose,
            )
            if row.delivered_at is not None:
                delivery.delivered_at.CopyFrom(to_timestamp(row.delivered_at))
            listed.append(delivery)
        return notify_pb2.ListDeliveriesResponse(deliveries=listed)
