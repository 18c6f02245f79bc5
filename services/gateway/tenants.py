"""Clients, API keys and who a request is: the gateway's domain logic."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.database import upsert_insert
from firebreak.errors import InvalidArgument, NotFound
from services.gateway.models import api_keys, clients

OPERATOR_CLIENT_ID = "operator"  # the services firm itself; owns the bootstrap admin key
BOOTSTRAP_KEY_ID = "bootstrap"


@dataclass(frozen=True)
class Principal:
    client_id: str
    role: str

    @property
    def is_admin(self) -> bool:
        """The firm's own staff: only the operator's keys may carry the admin role."""
        return self.role == "admin" and self.client_id == OPERATOR_CLIENT_ID


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return "fbk_" + secrets.token_urlsafe(32)


async def authenticate(connection: AsyncConnection, *, key: str) -> Principal | None:
    row = (
        await connection.execute(
            select(api_keys.c.client_id, api_keys.c.role).where(api_keys.c.key_hash == _hash(key))
        )
    ).first()
    return Principal(client_id=row.client_id, role=row.role) if row else None


async def create_client(connection: AsyncConnection, *, name: str) -> dict[str, str]:
    client_id = str(uuid.uuid4())
    await connection.execute(
        clients.insert().values(id=client_id, name=name, created_at=datetime.now(UTC))
    )
    return {"id": client_id, "name": name}


async def issue_key(connection: AsyncConnection, *, client_id: str, role: str) -> dict[str, str]:
    """Creates a key; the key itself is returned this once and only its hash is kept."""
    if role == "admin" and client_id != OPERATOR_CLIENT_ID:
        raise InvalidArgument("role", f"only the operator ({OPERATOR_CLIENT_ID}) has admin keys")
    exists = (
        await connection.execute(select(clients.c.id).where(clients.c.id == client_id))
    ).first()
    if exists is None:
        raise NotFound(f"client {client_id} not found")
    key = generate_key()
    key_id = str(uuid.uuid4())
    await connection.execute(
        api_keys.insert().values(
            id=key_id,
            client_id=client_id,
            role=role,
            key_hash=_hash(key),
            created_at=datetime.now(UTC),
        )
    )
    return {"id": key_id, "client_id": client_id, "role": role, "key": key}


async def has_bootstrap_key(connection: AsyncConnection) -> bool:
    query = select(api_keys.c.id).where(api_keys.c.id == BOOTSTRAP_KEY_ID)
    return (await connection.execute(query)).first() is not None


async def install_bootstrap_key(connection: AsyncConnection, *, key: str) -> None:
    """Makes `key` the operator's admin key, replacing any earlier bootstrap key."""
    now = datetime.now(UTC)
    await connection.execute(
        upsert_insert(connection.dialect.name, clients)
        .values(
            id=OPERATOR_CLIENT_ID,
            name="Operator",
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )
    statement = upsert_insert(connection.dialect.name, api_keys).values(
        id=BOOTSTRAP_KEY_ID,
        client_id=OPERATOR_CLIENT_ID,
        role="admin",
        key_hash=_hash(key),
        created_at=now,
    )
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "key_hash": statement.excluded.key_hash,
                "created_at": statement.excluded.created_at,
            },
        )
    )
