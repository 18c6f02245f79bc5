"""Status updates: what the communications lead, the commander or a manager says about an
incident, to the firm's people working it (internal) or to the client's contacts (client).

Posting one stores it, renders its message from the audience's templates, queues an email to
each recipient (outgoing.py), counts it for the update cadence and as progress on an acknowledged
P1/P2, and records `status_update.posted`, all in one transaction. An internal update goes to
the incident's role holders and responders (never a client's contact); a client update to the
client's active contacts, rendered from templates that can only show client-safe fields.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.errors import InvalidArgument
from firebreak.events import STATUS_UPDATE_POSTED, new_event
from firebreak.outbox import Outbox
from firebreak.telemetry import current_trace_context
from services.notify import escalation, update_cadence
from services.notify.models import people, status_updates
from services.notify.outgoing import queue_message
from services.notify.templating import Templates
from services.notify.update_cadence import Cadence

INTERNAL, CLIENT = "internal", "client"
AUDIENCES = (INTERNAL, CLIENT)
MAX_BODY = 10_000
STAFF_ROLES = ("responder", "manager", "admin")


@dataclass(frozen=True)
class Incident:
    """The incident as the gateway checked it when the update was posted."""

    id: str
    client_id: str
    reference: str
    title: str
    state: events_pb2.ResponseState


@dataclass(frozen=True)
class Posting:
    """What posting needs besides the update: where the messages come from, the cadence and
    acknowledgement lapse it counts for, and the firm's name as client messages sign it."""

    outbox: Outbox
    templates: Templates
    cadence: Cadence
    ack_lapse: timedelta | None
    firm_name: str


def checked(audience: str, body: str) -> tuple[str, str]:
    """The update's audience and body, or InvalidArgument naming `audience` or `body`."""
    if audience not in AUDIENCES:
        raise InvalidArgument("audience", f"must be one of {', '.join(AUDIENCES)}")
    if not body.strip():
        raise InvalidArgument("body", "must not be empty")
    if len(body) > MAX_BODY:
        raise InvalidArgument("body", f"must be at most {MAX_BODY} characters, not {len(body)}")
    if "\x00" in body:
        raise InvalidArgument("body", "must not contain NUL characters")
    return audience, body


async def post_update(
    connection: AsyncConnection,
    *,
    posting: Posting,
    incident: Incident,
    audience: str,
    body: str,
    author: events_pb2.Actor,
    now: datetime,
) -> Row[Any]:
    """Stores, sends and records one update; the stored row."""
    audience, body = checked(audience, body)
    update_id = str(uuid.uuid4())
    state = incident.state
    recipients = (
        await _client_contacts(connection, incident.client_id)
        if audience == CLIENT
        else await _staff_working_on(connection, state, author_id=author.id)
    )
    message = posting.templates.render(
        f"status_update_{audience}",
        incident={
            "id": incident.id,
            "reference": incident.reference,
            "title": incident.title,
            "priority": state.priority,
            "status": state.status,
            "commander": state.incident_commander.name,
            "communications_lead": state.communications_lead.name,
        },
        update={
            "id": update_id,
            "audience": audience,
            "body": body,
            "author": author.name,
            "posted_at": f"{now:%Y-%m-%d %H:%M} UTC",
        },
        firm={"name": posting.firm_name},
    )
    queued = 0
    for person_id in recipients:
        queued += await queue_message(
            connection,
            incident_id=incident.id,
            client_id=incident.client_id,
            reference=incident.reference,
            priority=state.priority,
            person_id=person_id,
            purpose="status_update",
            subject=message.subject,
            text=message.text,
            html=message.html,
            trace_context=current_trace_context(),
            now=now,
        )
    row = {
        "id": update_id,
        "incident_id": incident.id,
        "client_id": incident.client_id,
        "audience": audience,
        "body": body,
        "author_id": author.id,
        "author_kind": author.kind,
        "author_name": author.name,
        "recipients": queued,
        "posted_at": now,
    }
    await connection.execute(status_updates.insert().values(**row))
    # The cadence counts from the newest state; the gateway's may be newer than the events
    # notify has consumed so far.
    await update_cadence.follow_state(
        connection,
        cadence=posting.cadence,
        incident_id=incident.id,
        client_id=incident.client_id,
        state=state,
        at=now,
        reference=incident.reference,
        title=incident.title,
    )
    await update_cadence.count_update(
        connection, cadence=posting.cadence, incident_id=incident.id, posted_at=now
    )
    if posting.ack_lapse is not None:
        await escalation.renew_acknowledgement(
            connection, incident_id=incident.id, lapse=posting.ack_lapse, now=now
        )
    await posting.outbox.add(
        connection,
        new_event(
            STATUS_UPDATE_POSTED,
            incident_id=incident.id,
            client_id=incident.client_id,
            producer="notify",
            occurred_at=now,
            actor=author,
            payload=events_pb2.StatusUpdatePosted(
                update_id=update_id,
                audience=audience,
                subject=message.subject,
                body=body,
                recipients=queued,
            ),
        ),
    )
    stored = (
        await connection.execute(select(status_updates).where(status_updates.c.id == update_id))
    ).one()
    return stored


async def list_updates(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str, audience: str
) -> list[Row[Any]]:
    """The incident's updates, oldest first; only `audience`'s when one is given."""
    query = (
        select(status_updates)
        .where(status_updates.c.incident_id == incident_id)
        .order_by(status_updates.c.posted_at, status_updates.c.id)
    )
    if client_id is not None:
        query = query.where(status_updates.c.client_id == client_id)
    if audience:
        query = query.where(status_updates.c.audience == audience)
    return list((await connection.execute(query)).all())


async def _client_contacts(connection: AsyncConnection, client_id: str) -> list[str]:
    """The client's active contacts, as notify's copy of people knows them."""
    rows = await connection.execute(
        select(people.c.id)
        .where(
            people.c.role == "client",
            people.c.client_id == client_id,
            people.c.active.is_(True),
        )
        .order_by(people.c.name, people.c.id)
    )
    return list(rows.scalars())


async def _staff_working_on(
    connection: AsyncConnection, state: events_pb2.ResponseState, *, author_id: str
) -> list[str]:
    """The incident's role holders and responders but the author, each once; only the firm's
    own active people, so an internal update can never reach a client's contact."""
    named = [
        person.id
        for person in (
            state.incident_commander,
            state.communications_lead,
            state.scribe,
            *state.responders,
        )
        if person.id and person.id != author_id
    ]
    ids = list(dict.fromkeys(named))
    if not ids:
        return []
    rows = await connection.execute(
        select(people.c.id).where(
            people.c.id.in_(ids),
            people.c.role.in_(STAFF_ROLES),
            people.c.client_id == "operator",
            people.c.active.is_(True),
        )
    )
    staff = set(rows.scalars())
    return [person_id for person_id in ids if person_id in staff]
