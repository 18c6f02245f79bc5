"""Evidence's domain logic: accept an item, fix its digest at collection, record the fact."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.api.evidence.v1.evidence_pb2 import StoreEvidenceRequest
from firebreak.errors import InvalidArgument, NotFound
from firebreak.events import EVIDENCE_COLLECTED, new_event
from firebreak.outbox import Outbox
from services.evidence.models import evidence_items


def validate_item(request: StoreEvidenceRequest, *, max_bytes: int) -> None:
    for field in ("client_id", "incident_id", "filename", "collected_by"):
        if not getattr(request, field).strip():
            raise InvalidArgument(field, "is required")
    if not request.content:
        raise InvalidArgument("content", "must not be empty")
    if len(request.content) > max_bytes:
        raise InvalidArgument("content", f"must be at most {max_bytes} bytes")


async def store_item(
    connection: AsyncConnection, *, outbox: Outbox, request: StoreEvidenceRequest
) -> Row[Any]:
    """Stores the bytes with their SHA-256 and size, and emits evidence.collected."""
    evidence_id = str(uuid.uuid4())
    digest = hashlib.sha256(request.content).hexdigest()
    now = datetime.now(UTC)
    await connection.execute(
        evidence_items.insert().values(
            id=evidence_id,
            incident_id=request.incident_id,
            client_id=request.client_id,
            filename=request.filename,
            description=request.description,
            collected_by=request.collected_by,
            sha256=digest,
            size_bytes=len(request.content),
            content=request.content,
            collected_at=now,
        )
    )
    await outbox.add(
        connection,
        new_event(
            EVIDENCE_COLLECTED,
            incident_id=request.incident_id,
            client_id=request.client_id,
            producer="evidence",
            occurred_at=now,
            payload=events_pb2.EvidenceCollected(
                evidence_id=evidence_id,
                filename=request.filename,
                sha256=digest,
                size_bytes=len(request.content),
                collected_by=request.collected_by,
            ),
        ),
    )
    return await get_item(connection, client_id=request.client_id, evidence_id=evidence_id)


async def get_item(connection: AsyncConnection, *, client_id: str, evidence_id: str) -> Row[Any]:
    query = select(evidence_items).where(evidence_items.c.id == evidence_id)
    if client_id:
        query = query.where(evidence_items.c.client_id == client_id)
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound(f"evidence {evidence_id} not found")
    return row
