"""Evidence's view of incidents (whose they are, whether they ended) and reading its items.
Functions take the caller's connection and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.database import upsert_insert
from firebreak.errors import Conflict, NotFound
from services.evidence.custody_chain import timestamp
from services.evidence.models import blobs, items, known_incidents, transfers

# An incident in one of these is over: its evidence may be disposed of (unless held).
ENDED = frozenset({"closed", "declined", "merged"})


async def admit_incident(
    connection: AsyncConnection, *, incident_id: str, client_id: str, confirmed: bool
) -> None:
    """NotFound unless the incident is known here as the client's, or not known here yet and
    `confirmed` by the caller (the gateway found it, of that client, in triage or intake)."""
    owner = (
        await connection.execute(
            select(known_incidents.c.client_id).where(known_incidents.c.incident_id == incident_id)
        )
    ).scalar()
    if owner != client_id and not (owner is None and confirmed):
        # Another client's incident is as unknown as one never reported.
        raise NotFound(f"incident {incident_id} not found")


async def learn_incident(connection: AsyncConnection, *, incident_id: str, client_id: str) -> None:
    """Records the incident as the client's; one known already keeps the client it has."""
    statement = upsert_insert(connection.dialect.name, known_incidents).values(
        incident_id=incident_id, client_id=client_id
    )
    await connection.execute(statement.on_conflict_do_nothing(index_elements=["incident_id"]))


async def track_status(
    connection: AsyncConnection, *, incident_id: str, client_id: str, status: str, version: int
) -> None:
    """Keeps the newest status: events arriving twice or out of order do no harm."""
    statement = upsert_insert(connection.dialect.name, known_incidents).values(
        incident_id=incident_id, client_id=client_id, status=status, state_version=version
    )
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=["incident_id"],
            set_={"status": status, "state_version": version},
            where=known_incidents.c.state_version < version,
        )
    )


async def require_incident(
    connection: AsyncConnection, *, incident_id: str, client_id: str
) -> Row[Any]:
    query = select(known_incidents).where(
        known_incidents.c.incident_id == incident_id, known_incidents.c.client_id == client_id
    )
    row = (await connection.execute(query)).first()
    if row is None:
        # Another client's incident is as unknown as one never reported.
        raise NotFound(f"incident {incident_id} not found")
    return row


def _item_query(client_id: str | None, evidence_id: str) -> Any:
    query = select(items).where(items.c.id == evidence_id)
    if client_id is not None:
        query = query.where(items.c.client_id == client_id)
    return query


async def item_row(
    connection: AsyncConnection, *, client_id: str | None, evidence_id: str
) -> Row[Any]:
    row = (await connection.execute(_item_query(client_id, evidence_id))).first()
    if row is None:
        raise NotFound(f"evidence {evidence_id} not found")
    return row


async def lock_item(connection: AsyncConnection, *, client_id: str, evidence_id: str) -> Row[Any]:
    """The item, locked until the transaction ends (PostgreSQL; SQLite has one writer)."""
    query = _item_query(client_id, evidence_id).with_for_update()
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound(f"evidence {evidence_id} not found")
    return row


def refuse_if_disposed(item: Row[Any]) -> None:
    if item.disposed_at is not None:
        raise Conflict(
            f"evidence {item.id} was disposed of at {timestamp(item.disposed_at)}: its content "
            "is gone; its record and custody log remain"
        )


async def blob_row(connection: AsyncConnection, sha256: str) -> Row[Any] | None:
    return (await connection.execute(select(blobs).where(blobs.c.sha256 == sha256))).first()


async def list_items(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str
) -> Sequence[Row[Any]]:
    query = select(items).where(items.c.incident_id == incident_id)
    if client_id is not None:
        query = query.where(items.c.client_id == client_id)
    return (await connection.execute(query.order_by(items.c.received_at, items.c.id))).all()


async def pending_transfers(
    connection: AsyncConnection, evidence_ids: Sequence[str]
) -> dict[str, Row[Any]]:
    """The transfer awaiting receipt of each item that has one."""
    if not evidence_ids:
        return {}
    rows = await connection.execute(
        select(transfers).where(
            transfers.c.evidence_id.in_(evidence_ids), transfers.c.status == "pending"
        )
    )
    return {row.evidence_id: row for row in rows}
