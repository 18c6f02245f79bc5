"""What the gateway sets up when it starts: the operator (the firm itself, a client like any
other) and its bootstrap admin key. Clients, people and keys themselves live in clients.py,
people.py and keys.py."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import case
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.database import upsert_insert
from services.gateway.clients import ensure_operator
from services.gateway.keys import PREFIX_LENGTH, hash_key
from services.gateway.models import api_keys
from services.gateway.permissions import OPERATOR_CLIENT_ID

BOOTSTRAP_KEY_ID = "bootstrap"


async def install_bootstrap_key(connection: AsyncConnection, *, key: str) -> None:
    """Makes `key` the operator's admin key, replacing any earlier bootstrap key."""
    await ensure_operator(connection)
    statement = upsert_insert(connection.dialect.name, api_keys).values(
        id=BOOTSTRAP_KEY_ID,
        client_id=OPERATOR_CLIENT_ID,
        role="admin",
        prefix=key[:PREFIX_LENGTH],
        key_hash=hash_key(key),
        created_at=datetime.now(UTC),
    )
    # The same key again (every restart with FIREBREAK_ADMIN_KEY set) keeps its history, and
    # stays revoked if an admin revoked it; a different key starts afresh. SET expressions see
    # the row as it was, so `same_key` compares the old hash with the new one.
    same_key = api_keys.c.key_hash == statement.excluded.key_hash
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "key_hash": statement.excluded.key_hash,
                "prefix": statement.excluded.prefix,
                "created_at": case(
                    (same_key, api_keys.c.created_at), else_=statement.excluded.created_at
                ),
                "last_used_at": case((same_key, api_keys.c.last_used_at), else_=None),
                "revoked_at": case((same_key, api_keys.c.revoked_at), else_=None),
            },
        )
    )
