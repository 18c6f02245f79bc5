"""Client organisations (tenants): the domain logic. Functions take the caller's connection and
never commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.database import upsert_insert
from firebreak.keyset_pages import aware, json_size, newest_first, page_of
from services.gateway.models import clients
from services.gateway.permissions import OPERATOR_CLIENT_ID


async def create_client(
    connection: AsyncConnection, *, name: str, created_by: str
) -> dict[str, Any]:
    client = {
        "id": str(uuid.uuid4()),
        "name": name,
        "created_at": datetime.now(UTC),
        "created_by": created_by,
    }
    await connection.execute(clients.insert().values(**client))
    return client


async def ensure_operator(connection: AsyncConnection) -> None:
    """The firm itself is a client too: it owns the staff and the operator's admin keys."""
    await connection.execute(
        upsert_insert(connection.dialect.name, clients)
        .values(id=OPERATOR_CLIENT_ID, name="Operator", created_at=datetime.now(UTC))
        .on_conflict_do_nothing(index_elements=["id"])
    )


async def client_exists(connection: AsyncConnection, client_id: str) -> bool:
    query = select(clients.c.id).where(clients.c.id == client_id)
    return (await connection.execute(query)).first() is not None


async def existing_clients(connection: AsyncConnection, client_ids: Iterable[str]) -> set[str]:
    """Which of `client_ids` exist, in one query."""
    wanted = set(client_ids)
    if not wanted:
        return set()
    query = select(clients.c.id).where(clients.c.id.in_(wanted))
    return set((await connection.execute(query)).scalars())


def _client_body(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "created_at": aware(row.created_at),  # SQLite gives it back without its zone
        "created_by": row.created_by,
    }


async def list_clients(
    connection: AsyncConnection,
    *,
    visible_clients: frozenset[str] | None,
    limit: int,
    cursor: str | None,
    max_bytes: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """Clients newest first, of the visible ones only (None: all), and the next page's cursor."""
    query = select(clients)
    if visible_clients is not None:
        query = query.where(clients.c.id.in_(sorted(visible_clients)))
    query = newest_first(query, clients.c.created_at, clients.c.id, limit=limit, cursor=cursor)
    rows, next_cursor = page_of(
        (await connection.execute(query)).all(),
        limit=limit,
        max_bytes=max_bytes,
        size_of=lambda row: json_size(_client_body(row)),
    )
    return [_client_body(row) for row in rows], next_cursor
