"""Evidence's gRPC API: store an item, read its record."""

from __future__ import annotations

from typing import Any

import grpc
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.evidence.v1 import evidence_pb2, evidence_pb2_grpc
from firebreak.database import reading
from firebreak.events import to_timestamp
from firebreak.outbox import Outbox
from firebreak.tenancy import client_scope
from services.evidence import service


class EvidenceServicer(evidence_pb2_grpc.EvidenceServiceServicer):
    def __init__(self, engine: AsyncEngine, outbox: Outbox, *, max_bytes: int) -> None:
        self._engine = engine
        self._outbox = outbox
        self._max_bytes = max_bytes

    async def StoreEvidence(
        self, request: evidence_pb2.StoreEvidenceRequest, context: grpc.aio.ServicerContext
    ) -> evidence_pb2.EvidenceItem:
        service.validate_item(request, max_bytes=self._max_bytes)
        async with self._outbox.transaction() as connection:
            row = await service.store_item(connection, outbox=self._outbox, request=request)
        return item_message(row)

    async def GetEvidence(
        self, request: evidence_pb2.GetEvidenceRequest, context: grpc.aio.ServicerContext
    ) -> evidence_pb2.EvidenceItem:
        async with reading(self._engine) as connection:
            row = await service.get_item(
                connection,
                client_id=client_scope(request),
                evidence_id=request.evidence_id,
            )
        return item_message(row)


def item_message(row: Row[Any]) -> evidence_pb2.EvidenceItem:
    return evidence_pb2.EvidenceItem(
        id=row.id,
        incident_id=row.incident_id,
        client_id=row.client_id,
        filename=row.filename,
        description=row.description,
        collected_by=row.collected_by,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        collected_at=to_timestamp(row.collected_at),
    )
