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
from services.evidence.models import evidence_items, known_incidents

# An item's record: every column but the bytes themselves.
RECORD = [column for column in evidence_items.c if column.name != "content"]
FIELD_LIMITS = {"client_id": 36, "incident_id": 36, "filename": 255, "collected_by": 200}

INSERT_KNOWN_INCIDENT = known_incidents.insert()


def validate_item(request: StoreEvidenceRequest, *, max_bytes: int) -> None:
    for field, limit in FIELD_LIMITS.items():
        if not 1 <= len(getattr(request, field).strip()) <= limit:
            raise InvalidArgument(field, f"must be 1 to {limit} characters")
    for field in (*FIELD_LIMITS, "description"):
        if "\x00" in getattr(request, field):
            raise InvalidArgument(field, "must not contain NUL characters")
    if len(request.description) > 20_000:
        raise InvalidArgument("description", "must be at most 20000 characters")
    if not request.content:
        raise InvalidArgument("content", "must not be empty")
    if len(request.content) > max_bytes:
        raise InvalidArgument("content", f"must be at most {max_bytes} bytes")


async def learn_incident(connection: AsyncConnection, *, incident_id: str, client_id: str) -> None:
    await connection.execute(
        INSERT_KNOWN_INCIDENT, {"incident_id": incident_id, "client_id": client_id}
    )


async def _require_incident(
    connection: AsyncConnection, *, incident_id: str, client_id: str
) -> None:
    query = select(known_incidents.c.incident_id).where(
        known_incidents.c.incident_id == incident_id, known_incidents.c.client_id == client_id
    )
    if (await connection.execute(query)).first() is None:
        # Another client's incident is as unknown as one never reported.
        raise NotFound(f"incident {incident_id} not found")


async def store_item(
    connection: AsyncConnection, *, outbox: Outbox, request: StoreEvidenceRequest
) -> Row[Any]:
    """Stores the bytes with their SHA-256 and size, and emits evidence.collected."""
    await _require_incident(
        connection, incident_id=request.incident_id, client_id=request.client_id
    )
    evidence_id = str(uuid.uuid4())
    digest = hashlib.sha256(request.content).hexdigest()
    now = datetime.now(UTC)
    row = (
        await connection.execute(
            evidence_items.insert()
            .returning(*RECORD)
            .values(
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
    ).one()
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
    return row


async def get_item(
    connection: AsyncConnection, *, client_id: str | None, evidence_id: str
) -> Row[Any]:
    """The item's record, without its bytes."""
    query = select(*RECORD).where(evidence_items.c.id == evidence_id)
    if client_id is not None:
        query = query.where(evidence_items.c.client_id == client_id)
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound(f"evidence {evidence_id} not found")
    return row
