"""Console sign-in: passwords (argon2id), sessions behind an HttpOnly cookie, one-time links.

A session's token is a credential like an API key: the cookie carries it, and the console's
pages present it to the gateway's own API as `Authorization: Bearer fbs_…`, so a page shows
exactly what its person's API calls would (dependencies.authenticate takes either kind).
Functions take the caller's connection and never commit.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.errors import InvalidArgument, NotFound
from firebreak.keyset_pages import aware
from services.gateway import keys
from services.gateway.models import clients, console_sessions, passwords, people, sign_in_links
from services.gateway.permissions import Principal

SESSION_PREFIX = "fbs_"
MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; a bound keeps one request's hashing bounded
LINK_LIFETIME = timedelta(hours=24)
# last_seen_at is written at most this often per session, not on every page.
TOUCH_INTERVAL = timedelta(seconds=60)

# argon2-cffi's defaults (argon2id, RFC 9106's low-memory profile).
_hasher = PasswordHasher()
# Checked when no such person exists, so that an unknown address takes as long as a wrong
# password and the answer does not tell which.
_ABSENT = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Session:
    """A signed-in session: who, the token its forms carry, when it was last recorded seen."""

    principal: Principal
    email: str
    form_token: str
    last_seen_at: datetime


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_session_token(credential: str) -> bool:
    return credential.startswith(SESSION_PREFIX)


def check_new_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidArgument(
            "password", f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"
        )


async def set_password(connection: AsyncConnection, *, person_id: str, password: str) -> None:
    check_new_password(password)
    hashed = _hasher.hash(password)
    now = datetime.now(UTC)
    changed = await connection.execute(
        update(passwords).where(passwords.c.person_id == person_id).values(hash=hashed, set_at=now)
    )
    if changed.rowcount == 0:
        await connection.execute(
            passwords.insert().values(person_id=person_id, hash=hashed, set_at=now)
        )
    # A new password ends the person's sessions: whoever knew the old one is signed out.
    await connection.execute(
        update(console_sessions)
        .where(console_sessions.c.person_id == person_id, console_sessions.c.ended_at.is_(None))
        .values(ended_at=now)
    )


async def person_by_password(
    connection: AsyncConnection, *, email: str, password: str
) -> str | None:
    """The id of the active person with this email and password; None otherwise."""
    row = (
        await connection.execute(
            select(people.c.id, people.c.active, passwords.c.hash)
            .outerjoin(passwords, passwords.c.person_id == people.c.id)
            .where(people.c.email_key == email.strip().lower())
        )
    ).first()
    stored = row.hash if row is not None and row.hash is not None else _ABSENT
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None or row.hash is None or not row.active:
        return None
    if _hasher.check_needs_rehash(stored):
        await connection.execute(
            update(passwords)
            .where(passwords.c.person_id == row.id)
            .values(hash=_hasher.hash(password))
        )
    return str(row.id)


async def person_by_key(connection: AsyncConnection, *, key: str) -> str | None:
    """The person whose personal API key this is; None for any other key (a client system's
    key or the operator's belongs to no one who could sign in)."""
    holder = await keys.authenticate(connection, key_hash=keys.hash_key(key.strip()))
    if holder is None:
        return None
    return holder.principal.person_id


async def start(connection: AsyncConnection, *, person_id: str, lifetime: timedelta) -> str:
    """A new session for the person; its token, for the cookie."""
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    await connection.execute(
        console_sessions.insert().values(
            id=str(uuid.uuid4()),
            token_hash=_hash(token),
            person_id=person_id,
            form_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
        )
    )
    return token


# One indexed query per page: the session by its token's hash, its person and their client,
# labelled as keys.principal_of reads a key's row.
_AUTHENTICATE = (
    select(
        console_sessions.c.id,
        console_sessions.c.form_token,
        console_sessions.c.last_seen_at,
        console_sessions.c.expires_at,
        console_sessions.c.person_id,
        people.c.client_id,
        people.c.role,
        clients.c.name.label("client_name"),
        people.c.name.label("person_name"),
        people.c.email.label("person_email"),
        people.c.role.label("person_role"),
        people.c.active.label("person_active"),
        people.c.clients.label("wall"),
    )
    .join(people, people.c.id == console_sessions.c.person_id)
    .join(clients, clients.c.id == people.c.client_id)
    .where(
        console_sessions.c.token_hash == bindparam("token_hash"),
        console_sessions.c.ended_at.is_(None),
    )
)


async def authenticate(
    connection: AsyncConnection, *, token: str, idle: timedelta, now: datetime
) -> Session | None:
    """The session's person, unless it ended, expired or sat idle for longer than `idle`, or
    its person was deactivated."""
    row: Any = (await connection.execute(_AUTHENTICATE, {"token_hash": _hash(token)})).first()
    if row is None:
        return None
    last_seen = aware(row.last_seen_at)
    if aware(row.expires_at) <= now or now - last_seen > idle:
        return None
    principal = keys.principal_of(row)
    if principal is None:
        return None
    return Session(principal, row.person_email, row.form_token, last_seen)


async def touch(connection: AsyncConnection, *, session_id: str, now: datetime) -> None:
    await connection.execute(
        update(console_sessions).where(console_sessions.c.id == session_id).values(last_seen_at=now)
    )


async def end(connection: AsyncConnection, *, token: str) -> None:
    await connection.execute(
        update(console_sessions)
        .where(console_sessions.c.token_hash == _hash(token), console_sessions.c.ended_at.is_(None))
        .values(ended_at=datetime.now(UTC))
    )


async def issue_link(
    connection: AsyncConnection, *, person_id: str, created_by: str
) -> tuple[str, datetime]:
    """A one-time token with which the person sets a password; and when it stops working."""
    found = (
        await connection.execute(select(people.c.active).where(people.c.id == person_id))
    ).first()
    if found is None or not found.active:
        raise NotFound("person not found")
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires_at = now + LINK_LIFETIME
    await connection.execute(
        sign_in_links.insert().values(
            id=str(uuid.uuid4()),
            token_hash=_hash(token),
            person_id=person_id,
            created_at=now,
            expires_at=expires_at,
            created_by=created_by,
        )
    )
    return token, expires_at


async def link_person(connection: AsyncConnection, *, token: str) -> str | None:
    """The person a link is for, while it is unused and unexpired."""
    row = (
        await connection.execute(
            select(sign_in_links.c.person_id, sign_in_links.c.expires_at).where(
                sign_in_links.c.token_hash == _hash(token), sign_in_links.c.used_at.is_(None)
            )
        )
    ).first()
    if row is None or aware(row.expires_at) <= datetime.now(UTC):
        return None
    return str(row.person_id)


async def redeem_link(connection: AsyncConnection, *, token: str, password: str) -> str | None:
    """Sets the link's person's password and uses the link up; the person, or None when the
    link is used, expired or unknown."""
    check_new_password(password)
    person_id = await link_person(connection, token=token)
    if person_id is None:
        return None
    used = await connection.execute(
        update(sign_in_links)
        .where(sign_in_links.c.token_hash == _hash(token), sign_in_links.c.used_at.is_(None))
        .values(used_at=datetime.now(UTC))
    )
    if used.rowcount != 1:
        return None  # another request used it first
    await set_password(connection, person_id=person_id, password=password)
    return person_id
