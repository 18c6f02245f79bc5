"""Notify's gRPC API for status updates (issue 9, §4). The gateway has checked that the author
may post on the incident (its communications lead, its commander, or a manager or admin inside
the wall) and hands over the incident as it checked it; notify validates the update."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.events.v1 import events_pb2
from firebreak.api.notify.v1 import updates_pb2, updates_pb2_grpc
from firebreak.database import reading
from firebreak.errors import InvalidArgument
from firebreak.events import to_timestamp
from firebreak.tenancy import client_scope
from services.notify import status_updates
from services.notify.status_updates import Incident, Posting


def update_message(row: Row[Any]) -> updates_pb2.StatusUpdate:
    return updates_pb2.StatusUpdate(
        id=row.id,
        incident_id=row.incident_id,
        audience=row.audience,
        body=row.body,
        author=events_pb2.Actor(id=row.author_id, kind=row.author_kind, name=row.author_name),
        posted_at=to_timestamp(row.posted_at),
        recipients=row.recipients,
    )


class StatusUpdateServicer(updates_pb2_grpc.StatusUpdateServiceServicer):
    def __init__(self, engine: AsyncEngine, posting: Posting) -> None:
        self._engine = engine
        self._posting = posting

    async def PostUpdate(
        self, request: updates_pb2.PostUpdateRequest, context: grpc.aio.ServicerContext
    ) -> updates_pb2.StatusUpdate:
        if not request.incident_id or not request.client_id:
            raise InvalidArgument("incident_id", "the incident and its client are required")
        incident = Incident(
            id=request.incident_id,
            client_id=request.client_id,
            reference=request.reference,
            title=request.title,
            state=request.state,
        )
        async with self._posting.outbox.transaction() as connection:
            row = await status_updates.post_update(
                connection,
                posting=self._posting,
                incident=incident,
                audience=request.audience,
                body=request.body,
                author=request.author,
                now=datetime.now(UTC),
            )
        return update_message(row)

    async def ListUpdates(
        self, request: updates_pb2.ListUpdatesRequest, context: grpc.aio.ServicerContext
    ) -> updates_pb2.ListUpdatesResponse:
        async with reading(self._engine) as connection:
            rows = await status_updates.list_updates(
                connection,
                client_id=client_scope(request),
                incident_id=request.incident_id,
                audience=request.audience,
            )
        return updates_pb2.ListUpdatesResponse(updates=[update_message(row) for row in rows])
