"""People: the firm's staff (responders, managers, admins; client "operator") and clients'
contacts. Functions take the caller's connection and never commit.

A staff member may carry an ethical wall: the clients they may work on (None: every client).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.errors import Conflict, InvalidArgument, NotFound
from firebreak.events import PERSON_CHANGED, PERSON_REGISTERED, new_event
from firebreak.keyset_pages import aware, json_size, newest_first, page_of
from services.gateway import clients as client_store
from services.gateway.models import api_keys, people
from services.gateway.permissions import OPERATOR_CLIENT_ID

STAFF_ROLES = frozenset({"responder", "manager", "admin"})
CLIENT_ROLE = "client"


async def _checked_wall(
    connection: AsyncConnection, wall: Sequence[str] | None
) -> list[str] | None:
    """The wall as stored (sorted, no repeats); every client in it must exist."""
    if wall is None:
        return None
    known = await client_store.existing_clients(connection, wall)
    for index, client_id in enumerate(wall):
        if client_id not in known:
            raise InvalidArgument(f"clients.{index}", f"client {client_id} does not exist")
    return sorted(set(wall))


async def _check_email_free(
    connection: AsyncConnection, email: str, *, except_id: str | None = None
) -> None:
    query = select(people.c.id).where(people.c.email_key == email.lower())
    if except_id is not None:
        query = query.where(people.c.id != except_id)
    if (await connection.execute(query)).first() is not None:
        raise Conflict(f"a person with email {email} already exists")


async def _client_of_new_person(
    connection: AsyncConnection, role: str, client_id: str | None
) -> str:
    if role in STAFF_ROLES:
        if client_id not in (None, OPERATOR_CLIENT_ID):
            raise InvalidArgument(
                "client_id", f"staff belong to {OPERATOR_CLIENT_ID}; leave client_id out"
            )
        return OPERATOR_CLIENT_ID
    if client_id is None:
        raise InvalidArgument("client_id", "is required for a person with role client")
    if client_id == OPERATOR_CLIENT_ID:
        raise InvalidArgument(
            "client_id", "the operator's own people are staff: responder, manager or admin"
        )
    if not await client_store.client_exists(connection, client_id):
        raise InvalidArgument("client_id", f"client {client_id} does not exist")
    return client_id


async def create_person(
    connection: AsyncConnection,
    *,
    name: str,
    email: str,
    role: str,
    client_id: str | None,
    phone: str | None,
    timezone: str | None,
    clients: Sequence[str] | None,
    created_by: str,
) -> dict[str, Any]:
    client_id = await _client_of_new_person(connection, role, client_id)
    if role == CLIENT_ROLE and clients is not None:
        raise InvalidArgument("clients", "only staff have a wall; a client contact sees its client")
    wall = await _checked_wall(connection, clients)
    await _check_email_free(connection, email)
    now = datetime.now(UTC)
    person = {
        "id": str(uuid.uuid4()),
        "name": name,
        "email": email,
        "role": role,
        "client_id": client_id,
        "phone": phone,
        "timezone": timezone,
        "clients": wall,
        "active": True,
        "created_at": now,
        "updated_at": now,
        "created_by": created_by,
    }
    try:
        await connection.execute(people.insert().values(**person, email_key=email.lower()))
    except IntegrityError as error:  # the same email added at the same moment
        raise Conflict(f"a person with email {email} already exists") from error
    return person


def _person_body(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "email": row.email,
        "role": row.role,
        "client_id": row.client_id,
        "phone": row.phone,
        "timezone": row.timezone,
        "clients": row.clients,
        "active": row.active,
        "created_at": aware(row.created_at),
        "updated_at": aware(row.updated_at),
        "created_by": row.created_by,
    }


async def get_person(connection: AsyncConnection, person_id: str) -> dict[str, Any]:
    row = (await connection.execute(select(people).where(people.c.id == person_id))).first()
    if row is None:
        raise NotFound(f"person {person_id} not found")
    return _person_body(row)


async def list_people(
    connection: AsyncConnection,
    *,
    role: str | None,
    client_id: str | None,
    visible_clients: frozenset[str] | None,
    active: bool | None,
    limit: int,
    cursor: str | None,
    max_bytes: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """People newest first, filtered, of the visible clients only (None: all); returns a page
    (capped at `max_bytes`: a wall may name a thousand clients) and the next page's cursor."""
    query = select(people)
    if visible_clients is not None:
        query = query.where(people.c.client_id.in_(sorted(visible_clients)))
    if role is not None:
        query = query.where(people.c.role == role)
    if client_id is not None:
        query = query.where(people.c.client_id == client_id)
    if active is not None:
        query = query.where(people.c.active == active)
    query = newest_first(query, people.c.created_at, people.c.id, limit=limit, cursor=cursor)
    rows, next_cursor = page_of(
        (await connection.execute(query)).all(),
        limit=limit,
        max_bytes=max_bytes,
        size_of=lambda row: json_size(_person_body(row)),
    )
    return [_person_body(row) for row in rows], next_cursor


async def update_person(
    connection: AsyncConnection, person_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    """Applies `changes` (only the fields given; None clears phone, timezone and the wall)."""
    current = await get_person(connection, person_id)
    is_staff = current["role"] in STAFF_ROLES
    if "role" in changes and (changes["role"] in STAFF_ROLES) != is_staff:
        raise InvalidArgument(
            "role",
            "staff roles change only among responder, manager and admin; a staff member "
            "cannot become a client contact, nor a contact staff",
        )
    if "clients" in changes:
        if not is_staff and changes["clients"] is not None:
            raise InvalidArgument("clients", "only staff have a wall; a contact sees its client")
        changes["clients"] = await _checked_wall(connection, changes["clients"])
    if "email" in changes:
        await _check_email_free(connection, changes["email"], except_id=person_id)
        changes["email_key"] = changes["email"].lower()
    if not changes:
        return current
    changes["updated_at"] = datetime.now(UTC)
    try:
        await connection.execute(update(people).where(people.c.id == person_id).values(**changes))
    except IntegrityError as error:
        raise Conflict(f"a person with email {changes.get('email')} already exists") from error
    if "role" in changes:
        # A personal key acts with its person's current role; keep the stored one in step.
        await connection.execute(
            update(api_keys).where(api_keys.c.person_id == person_id).values(role=changes["role"])
        )
    changes.pop("email_key", None)
    return current | changes


def person_event(
    person: dict[str, Any], *, registered: bool, actor: events_pb2.Actor
) -> events_pb2.EventEnvelope:
    """person.registered or person.changed, carrying the person whole (their details are what
    another service keeps a copy of)."""
    details = events_pb2.PersonDetails(
        id=person["id"],
        name=person["name"],
        email=person["email"],
        phone=person["phone"] or "",
        timezone=person["timezone"] or "",
        role=person["role"],
        client_id=person["client_id"],
        walled=person["clients"] is not None,
        clients=person["clients"] or [],
        active=person["active"],
    )
    event_type, payload = (
        (PERSON_REGISTERED, events_pb2.PersonRegistered(person=details))
        if registered
        else (PERSON_CHANGED, events_pb2.PersonChanged(person=details))
    )
    return new_event(
        event_type,
        incident_id="",
        client_id=person["client_id"],
        producer="gateway",
        payload=payload,
        actor=actor,
    )
