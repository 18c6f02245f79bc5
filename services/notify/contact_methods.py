"""People's contact methods: how a page reaches them, tried in order.

A person's email (notify's copy of people) is always their first method, implicitly: it is
method 0, cannot be deleted, and changes with the person. The methods they add (email, a signed
webhook, Slack, Teams) come after it, in the order added (`position` 1, 2, …). A page goes to
the first; when a delivery to one method finally fails, the next is queued at once, for the same
step; only when the last has failed does the escalation move on (paging.py).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlsplit

from sqlalchemy import Row, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.errors import Conflict, InvalidArgument, NotFound
from services.notify.channels import TARGET_KINDS, Target, TargetKind, validate_target
from services.notify.escalation import STOPPED
from services.notify.models import contact_methods, deliveries, escalations, people
from services.notify.outgoing import PAGE

IMPLICIT_ID = "email"  # the id the person's own email is listed under
EMAIL_INDEX = 0  # deliveries.method_index of the person's own email
MAX_METHODS = 10  # added methods per person, besides their email
# Kinds whose URL is itself the credential: shown as scheme and host only.
SECRET_URL_KINDS = frozenset({"slack", "teams"})
# Stands in for a webhook's secret while its address alone is checked, so that a complaint is
# pinned on the right field (24 zero bytes: a well-formed secret, never stored or used).
_WELL_FORMED_SECRET = "whsec_" + base64.b64encode(bytes(24)).decode()


@dataclass(frozen=True)
class Method:
    """One contact method as it may be shown: never its secret, nor a Slack or Teams path."""

    id: str
    kind: str
    address: str
    has_secret: bool
    implicit: bool
    created_at: datetime | None


def checked(kind: str, address: str, secret: str) -> tuple[TargetKind, str, str | None]:
    """The method as it is stored, or InvalidArgument naming `kind`, `address` or `secret`."""
    if kind not in TARGET_KINDS:
        raise InvalidArgument("kind", f"must be one of {', '.join(TARGET_KINDS)}")
    target_kind = cast(TargetKind, kind)
    address = address.strip()
    if secret and kind != "webhook":
        raise InvalidArgument("secret", f"only webhook methods are signed; a {kind} takes none")
    stand_in = _WELL_FORMED_SECRET if kind == "webhook" else None
    try:
        validate_target(Target(kind=target_kind, address=address, secret=stand_in))
    except ValueError as error:
        raise InvalidArgument("address", str(error)) from None
    if kind == "webhook":
        try:
            validate_target(Target(kind=target_kind, address=address, secret=secret))
        except ValueError as error:
            raise InvalidArgument("secret", str(error)) from None
    return target_kind, address, secret or None


def shown_address(kind: str, address: str) -> str:
    """The address as a reader may see it: Slack and Teams URLs are secrets (anyone holding
    one can post to the channel), so only their scheme and host are shown."""
    if kind not in SECRET_URL_KINDS:
        return address
    parts = urlsplit(address)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


def delivery_target(channel: str, address: str) -> str:
    """Where a delivery went, as the incident's list of deliveries shows it: the email address,
    or only the host of a URL (Slack and Teams URLs are secrets; a webhook's path may be)."""
    if channel == "email":
        return address
    return urlsplit(address).netloc.rpartition("@")[2]


def _method(row: Row[Any]) -> Method:
    return Method(
        id=row.id,
        kind=row.kind,
        address=shown_address(row.kind, row.address),
        has_secret=row.secret is not None,
        implicit=False,
        created_at=row.created_at,
    )


async def _email_of(connection: AsyncConnection, person_id: str) -> str | None:
    query = select(people.c.email).where(people.c.id == person_id)
    email: str | None = (await connection.execute(query)).scalar()
    return email


async def _added(connection: AsyncConnection, person_id: str) -> list[Row[Any]]:
    query = (
        select(contact_methods)
        .where(contact_methods.c.person_id == person_id)
        .order_by(contact_methods.c.position)
    )
    return list((await connection.execute(query)).all())


async def list_methods(connection: AsyncConnection, person_id: str) -> list[Method]:
    """The person's methods in the order they are tried: their email first (when notify has
    heard of them), then those they added."""
    email = await _email_of(connection, person_id)
    implicit = (
        [Method(IMPLICIT_ID, "email", email, has_secret=False, implicit=True, created_at=None)]
        if email is not None
        else []
    )
    return implicit + [_method(row) for row in await _added(connection, person_id)]


async def add_method(
    connection: AsyncConnection,
    *,
    person_id: str,
    kind: str,
    address: str,
    secret: str,
    now: datetime,
) -> Method:
    """Adds a method after the person's others. The same kind and address twice, or more than
    MAX_METHODS, is a Conflict."""
    target_kind, address, stored_secret = checked(kind, address, secret)
    existing = await _added(connection, person_id)
    same = address.lower() if target_kind == "email" else address
    email = await _email_of(connection, person_id)
    if target_kind == "email" and email is not None and email.lower() == same:
        raise Conflict(f"{address} is the person's own email, always their first contact method")
    for row in existing:
        known = row.address.lower() if row.kind == "email" else row.address
        if row.kind == target_kind and known == same:
            raise Conflict(f"the person already has this {kind} contact method ({row.id})")
    if len(existing) >= MAX_METHODS:
        raise Conflict(f"a person has at most {MAX_METHODS} contact methods besides their email")
    position = (
        await connection.execute(
            select(func.coalesce(func.max(contact_methods.c.position), EMAIL_INDEX)).where(
                contact_methods.c.person_id == person_id
            )
        )
    ).scalar_one() + 1
    values = {
        "id": str(uuid.uuid4()),
        "person_id": person_id,
        "position": position,
        "kind": target_kind,
        "address": address,
        "secret": stored_secret,
        "created_at": now,
    }
    try:
        await connection.execute(contact_methods.insert().values(**values))
    except IntegrityError as error:  # another method added for the person at the same moment
        raise Conflict("the person's contact methods changed at the same moment; retry") from error
    return Method(
        id=values["id"],
        kind=target_kind,
        address=shown_address(target_kind, address),
        has_secret=stored_secret is not None,
        implicit=False,
        created_at=now,
    )


async def delete_method(connection: AsyncConnection, *, person_id: str, method_id: str) -> None:
    """Deletes one of the person's added methods. Pages already queued to it still go out."""
    if method_id == IMPLICIT_ID:
        raise Conflict(
            "the person's email is always their first contact method and cannot be deleted; "
            "change the person's email instead"
        )
    deleted = await connection.execute(
        delete(contact_methods).where(
            contact_methods.c.id == method_id, contact_methods.c.person_id == person_id
        )
    )
    if not deleted.rowcount:
        raise NotFound(f"contact method {method_id} not found")


async def queue_next_method(connection: AsyncConnection, page: Row[Any], *, now: datetime) -> bool:
    """After `page` finally failed: queues the same message to the person's next method, due
    at once, and returns True; False when there is none (a page's escalation moves on), or when
    the person is no longer active, or, for a page, when its escalation no longer pages (it
    stopped, or its policy sends email only). Other messages (outgoing.py) go on regardless."""
    if page.purpose == PAGE:
        running = (
            await connection.execute(
                select(escalations.c.status, escalations.c.policy).where(
                    escalations.c.incident_id == page.incident_id
                )
            )
        ).first()
        if running is None or running.status == STOPPED or not running.policy["page"]:
            return False
    active = (
        await connection.execute(select(people.c.active).where(people.c.id == page.person_id))
    ).scalar()
    if active is False:
        return False
    following = (
        await connection.execute(
            select(contact_methods)
            .where(
                contact_methods.c.person_id == page.person_id,
                contact_methods.c.position > page.method_index,
            )
            .order_by(contact_methods.c.position)
            .limit(1)
        )
    ).first()
    if following is None:
        return False
    # The same page (step, subject, body, acknowledge link, trace) under a delivery id of its
    # own, so the receiver of each method sees one id per message.
    values = dict(page._mapping) | {
        "id": str(uuid.uuid4()),
        "channel": following.kind,
        "address": following.address,
        "secret": following.secret,
        "method_index": following.position,
        "status": "pending",
        "attempts": 0,
        "last_error": None,
        "due_at": now,
        "created_at": now,
        "delivered_at": None,
    }
    await connection.execute(deliveries.insert().values(**values))
    return True


async def list_deliveries(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str
) -> list[Row[Any]]:
    """Every delivery of the incident's pages and other messages, oldest first."""
    query = (
        select(deliveries)
        .where(deliveries.c.incident_id == incident_id)
        .order_by(deliveries.c.created_at, deliveries.c.method_index, deliveries.c.id)
    )
    if client_id is not None:
        query = query.where(deliveries.c.client_id == client_id)
    return list((await connection.execute(query)).all())
