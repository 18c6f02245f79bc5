"""Review's gRPC API: an incident's timeline."""

from __future__ import annotations

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.review.v1 import review_pb2, review_pb2_grpc
from firebreak.database import reading
from firebreak.errors import InvalidArgument
from firebreak.events import to_timestamp
from firebreak.tenancy import client_scope
from services.review import service

AUDIENCES = ("", "internal", service.CLIENT)


class ReviewServicer(review_pb2_grpc.ReviewServiceServicer):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def GetTimeline(
        self, request: review_pb2.GetTimelineRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.Timeline:
        if request.audience not in AUDIENCES:
            raise InvalidArgument("audience", "must be internal or client")
        async with reading(self._engine) as connection:
            rows = await service.get_timeline(
                connection,
                client_id=client_scope(request),
                incident_id=request.incident_id,
                audience=request.audience,
            )
        for_client = request.audience == service.CLIENT
        return review_pb2.Timeline(
            incident_id=request.incident_id,
            entries=[
                review_pb2.TimelineEntry(
                    event_id=row.event_id,
                    type=row.type,
                    occurred_at=to_timestamp(row.occurred_at),
                    producer=row.producer,
                    summary=row.client_summary if for_client else row.summary,
                    actor=service.entry_actor(row, audience=request.audience),
                    audience="client" if row.client_summary is not None else "internal",
                )
                for row in rows
            ],
        )
