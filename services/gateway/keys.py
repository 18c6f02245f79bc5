"""API keys: issuing, listing, revoking, and turning a key into the Principal it stands for.

Functions take the caller's connection and never commit; `authenticate` is on every request's
path, so its statement is built once (docs/architecture.md, where the CPU goes).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.errors import Conflict, InvalidArgument, NotFound
from firebreak.events import API_KEY_REVOKED, new_event
from firebreak.keyset_pages import aware, aware_or_none, json_size, newest_first, page_of
from services.gateway import audit
from services.gateway import clients as client_store
from services.gateway.models import api_keys, clients, people
from services.gateway.permissions import OPERATOR_CLIENT_ID, Principal, PrincipalKind

PREFIX_LENGTH = 12  # "fbk_" and 8 random characters
# last_used_at is written at most this often per key: one write a minute instead of one per
# request (the bench sends hundreds a second with one key).
TOUCH_INTERVAL = timedelta(seconds=60)

PERSON_KINDS = {
    "client": PrincipalKind.CLIENT_CONTACT,
    "responder": PrincipalKind.RESPONDER,
    "manager": PrincipalKind.MANAGER,
    "admin": PrincipalKind.ADMIN,
}


@dataclass(frozen=True)
class KeyHolder:
    """An authenticated key: who it is, when the key was last recorded as used, and when it
    expires (None: never)."""

    principal: Principal
    last_used_at: datetime | None
    expires_at: datetime | None

    def touch_due(self, now: datetime) -> bool:
        return self.last_used_at is None or now - self.last_used_at >= TOUCH_INTERVAL


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> str:
    return "fbk_" + secrets.token_urlsafe(32)


# One indexed query per request: the key by its hash (unique index), its client and its person
# by primary key. A revoked key is simply not found; an expired one is refused once read.
_AUTHENTICATE = (
    select(
        api_keys.c.id,
        api_keys.c.client_id,
        api_keys.c.role,
        api_keys.c.person_id,
        api_keys.c.last_used_at,
        api_keys.c.expires_at,
        clients.c.name.label("client_name"),
        people.c.name.label("person_name"),
        people.c.role.label("person_role"),
        people.c.active.label("person_active"),
        people.c.clients.label("wall"),
    )
    .join(clients, clients.c.id == api_keys.c.client_id)
    .outerjoin(people, people.c.id == api_keys.c.person_id)
    .where(api_keys.c.key_hash == bindparam("key_hash"), api_keys.c.revoked_at.is_(None))
)
_TOUCH = (
    update(api_keys)
    .where(
        api_keys.c.id == bindparam("key_id"),
        # Another replica may have just written it: then this writes nothing.
        or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < bindparam("stale")),
    )
    .values(last_used_at=bindparam("used_at"))
)


def _owner(row: Any) -> tuple[str, str, str]:
    """(kind, id, name) of who a key row belongs to, as the Principal it makes spells them."""
    if row.person_id is not None:
        return "person", row.person_id, row.person_name
    if row.role == "admin" and row.client_id == OPERATOR_CLIENT_ID:
        return "operator", row.id, "operator admin key"
    # A name goes into every event the key causes: bounded like a person's name.
    return "client_system", row.id, f"{row.client_name[:193]} system"


def principal_of(row: Any) -> Principal | None:
    """The Principal a key row (or a console session's row, labelled alike) stands for."""
    owner_kind, owner_id, name = _owner(row)
    if owner_kind == "person":
        kind = PERSON_KINDS.get(row.person_role)
        if kind is None or not row.person_active:
            return None
        wall = None if row.wall is None else frozenset(row.wall)
    else:
        kind = PrincipalKind.ADMIN if owner_kind == "operator" else PrincipalKind.CLIENT_SYSTEM
        wall = None
    if kind in (PrincipalKind.CLIENT_SYSTEM, PrincipalKind.CLIENT_CONTACT):
        wall = frozenset({row.client_id})
    return Principal(
        kind=kind, id=owner_id, name=name, client_id=row.client_id, key_id=row.id, clients=wall
    )


async def authenticate(connection: AsyncConnection, *, key_hash: str) -> KeyHolder | None:
    """Who the key of this hash (`hash_key`) is; None for an unknown, revoked or expired key,
    or a deactivated person's key."""
    row = (await connection.execute(_AUTHENTICATE, {"key_hash": key_hash})).first()
    if row is None:
        return None
    expires_at = aware_or_none(row.expires_at)
    if expires_at is not None and expires_at <= datetime.now(UTC):
        return None
    principal = principal_of(row)
    if principal is None:
        return None
    return KeyHolder(principal, aware_or_none(row.last_used_at), expires_at)


async def touch(connection: AsyncConnection, *, key_id: str, now: datetime) -> None:
    """Records that the key was used, unless that was recorded within the last minute."""
    await connection.execute(
        _TOUCH, {"key_id": key_id, "stale": now - TOUCH_INTERVAL, "used_at": now}
    )


async def _insert_key(
    connection: AsyncConnection,
    *,
    client_id: str,
    role: str,
    person_id: str | None,
    expires_at: datetime | None,
    created_by: str,
) -> dict[str, Any]:
    """Stores a new key's hash; the key itself is in the result this once and never again."""
    key = generate_key()
    issued = {
        "id": str(uuid.uuid4()),
        "person_id": person_id,
        "client_id": client_id,
        "role": role,
        "prefix": key[:PREFIX_LENGTH],
        "created_at": datetime.now(UTC),
        "expires_at": expires_at,
        "created_by": created_by,
    }
    await connection.execute(api_keys.insert().values(**issued, key_hash=hash_key(key)))
    return issued | {"key": key}


async def issue_client_key(
    connection: AsyncConnection,
    *,
    client_id: str,
    role: str,
    expires_at: datetime | None,
    created_by: str,
) -> dict[str, Any]:
    """A key that belongs to no person: a client system's, or an operator admin key."""
    if role == "admin" and client_id != OPERATOR_CLIENT_ID:
        raise InvalidArgument("role", f"only the operator ({OPERATOR_CLIENT_ID}) has admin keys")
    if not await client_store.client_exists(connection, client_id):
        raise NotFound(f"client {client_id} not found")
    return await _insert_key(
        connection,
        client_id=client_id,
        role=role,
        person_id=None,
        expires_at=expires_at,
        created_by=created_by,
    )


async def issue_personal_key(
    connection: AsyncConnection, *, person_id: str, expires_at: datetime | None, created_by: str
) -> dict[str, Any]:
    """A person's own key: it acts as the person, with the person's current role and wall."""
    query = select(people.c.client_id, people.c.role, people.c.active).where(
        people.c.id == person_id
    )
    person = (await connection.execute(query)).first()
    if person is None:
        raise NotFound(f"person {person_id} not found")
    if not person.active:
        raise Conflict(f"person {person_id} is inactive; reactivate them before issuing a key")
    return await _insert_key(
        connection,
        client_id=person.client_id,
        role=person.role,
        person_id=person_id,
        expires_at=expires_at,
        created_by=created_by,
    )


async def audit_issued(
    connection: AsyncConnection, actor: Principal, issued: dict[str, Any]
) -> None:
    """Records a key just issued in the audit log, in its transaction: never the key, its hash
    or its prefix."""
    expires_at = issued["expires_at"]
    await audit.record(
        connection,
        actor=actor,
        action="api_key.issued",
        target_kind="api_key",
        target_id=issued["id"],
        summary={
            "role": issued["role"],
            "client_id": issued["client_id"],
            "person_id": issued["person_id"],
            "expires_at": None if expires_at is None else expires_at.isoformat(),
        },
    )


def _listing() -> Any:
    return (
        select(
            api_keys.c.id,
            api_keys.c.client_id,
            api_keys.c.role,
            api_keys.c.person_id,
            api_keys.c.prefix,
            api_keys.c.created_at,
            api_keys.c.last_used_at,
            api_keys.c.revoked_at,
            api_keys.c.expires_at,
            api_keys.c.created_by,
            clients.c.name.label("client_name"),
            people.c.name.label("person_name"),
        )
        .join(clients, clients.c.id == api_keys.c.client_id)
        .outerjoin(people, people.c.id == api_keys.c.person_id)
    )


def _key_body(row: Any) -> dict[str, Any]:
    kind, owner_id, name = _owner(row)
    return {
        "id": row.id,
        "owner": {"kind": kind, "id": owner_id, "name": name},
        "client_id": row.client_id,
        "role": row.role,
        "prefix": row.prefix,
        "created_at": aware(row.created_at),
        "last_used_at": aware_or_none(row.last_used_at),
        "revoked_at": aware_or_none(row.revoked_at),
        "expires_at": aware_or_none(row.expires_at),
        "created_by": row.created_by,
    }


async def list_keys(
    connection: AsyncConnection,
    *,
    only_of: Principal | None,
    person_id: str | None = None,
    client_id: str | None = None,
    limit: int,
    cursor: str | None,
    max_bytes: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """Keys newest first (a page capped at `max_bytes`), never the key or its hash. `only_of`:
    just that principal's own keys (its person's, or for a key without a person just that
    key)."""
    query = _listing()
    if only_of is not None:
        if only_of.person_id is not None:
            query = query.where(api_keys.c.person_id == only_of.person_id)
        else:
            query = query.where(api_keys.c.id == only_of.key_id)
    if person_id is not None:
        query = query.where(api_keys.c.person_id == person_id)
    if client_id is not None:
        query = query.where(api_keys.c.client_id == client_id)
    query = newest_first(query, api_keys.c.created_at, api_keys.c.id, limit=limit, cursor=cursor)
    rows, next_cursor = page_of(
        (await connection.execute(query)).all(),
        limit=limit,
        max_bytes=max_bytes,
        size_of=lambda row: json_size(_key_body(row)),
    )
    return [_key_body(row) for row in rows], next_cursor


async def key_owner(connection: AsyncConnection, *, key_id: str) -> tuple[str, str]:
    """Who owns a key, as `Principal.id` spells it (its person's id, or else its own id), and
    the key's client."""
    query = select(api_keys.c.person_id, api_keys.c.client_id).where(api_keys.c.id == key_id)
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound(f"API key {key_id} not found")
    return row.person_id or key_id, row.client_id


async def revoke_key(connection: AsyncConnection, *, key_id: str) -> bool:
    """Revokes a key from the next request on; whether it did (revoking it again changes
    nothing)."""
    result = await connection.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return result.rowcount == 1


def revoked_event(
    *, key_id: str, owner_id: str, client_id: str, actor: events_pb2.Actor
) -> events_pb2.EventEnvelope:
    """api_key.revoked, on which every gateway replica forgets the key (principal_cache.py)."""
    return new_event(
        API_KEY_REVOKED,
        incident_id="",
        client_id=client_id,
        producer="gateway",
        payload=events_pb2.ApiKeyRevoked(key_id=key_id, owner_id=owner_id),
        actor=actor,
    )
