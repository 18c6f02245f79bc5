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
