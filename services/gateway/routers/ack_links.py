"""One-click acknowledge: the signed, expiring, single-use link each page carries
(`<public URL>/v1/ack/<token>`, made by notify with firebreak/ack_links.py).

No API key: the token is the credential, and it names the paged person, the incident and the
page's delivery. `GET` shows what the link would do, with a button, and changes nothing (mail
scanners and link previews follow links); the button `POST`s to the same URL, which
acknowledges as that person exactly as `POST /v1/incidents/{id}/acknowledge` does with their
key. The person must still be active staff inside the incident's client's wall: the permission
table decides, as for a key. A link works once: its delivery id is recorded as used before the
command is sent (and released again if triage could not be reached).

Every answer is a small HTML page (ack_pages.py), for a person to read: a link that is not
valid is a 404 that says nothing about what it names; an expired or used one a 410; a refused
person a 403 saying why. An incident already acknowledged by someone is not an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import grpc
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from firebreak import ack_links
from firebreak.api.events.v1 import events_pb2
from firebreak.api.triage.v1 import triage_pb2
from firebreak.database import reading
from firebreak.grpc_server import STATUS_METADATA_KEY
from firebreak.keyset_pages import ID
from services.gateway import ack_pages
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import Services, act_for
from services.gateway.incident_access import IncidentInHand, report_of, takes_part
from services.gateway.keys import PERSON_KINDS
from services.gateway.models import people, used_ack_links
from services.gateway.permissions import STAFF, Action, Principal, authorize
from services.gateway.problems import Problem
from services.gateway.routers.lifecycle import acknowledgement, run_command

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/ack", tags=["acknowledge links"])

DELIVERY_ID_LENGTH = 36  # notify's delivery ids are UUIDs; used_ack_links.delivery_id holds 36
# Not worth retrying here: the command reached triage and was answered.
ANSWERED = (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND)


async def link_secret(request: Request) -> str | None:
    secret: str | None = request.app.state.link_secret
    return secret


LinkSecret = Annotated[str | None, Depends(link_secret)]


class Answer(Exception):
    """Ends a request with this page."""

    def __init__(self, response: HTMLResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class Link:
    """A genuine, unexpired, unused link whose person may acknowledge its incident."""

    claim: ack_links.AckClaim
    person: Principal
    incident: IncidentInHand


PAGE_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"description": description, "content": {"text/html": {}}}
    for status, description in (
        (403, "The person is deactivated, or no longer inside the client's ethical wall"),
        (404, "Not a valid link (altered, cut short, or not made here)"),
        (410, "The link has expired, or was already used"),
        (503, "A backing service did not answer; the link still works"),
    )
}


@router.get(
    "/{token:path}",
    summary="Show what an acknowledge link does",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}, **PAGE_RESPONSES},
)
async def confirm(token: str, services: Services, secret: LinkSecret) -> HTMLResponse:
    """What the link would do, with a button to do it; changes nothing."""
    try:
        link = await _checked(services, token, secret=secret)
        report = await report_of(services, link.incident)
    except Answer as answer:
        return answer.response
    except grpc.aio.AioRpcError:
        log.warning("acknowledge link: a backing service failed", exc_info=True)
        return ack_pages.unavailable()
    state = link.incident.state
    what = f"{report.reference} ({state.priority}): {report.title}"
    if state.status != "triaged":
        return ack_pages.page(
            200,
            "Already taken on",
            [what, _taken_on(state.status, state.incident_commander)],
        )
    return ack_pages.page(
        200,
        f"Acknowledge {report.reference}?",
        [
            what,
            f"You are acknowledging as {link.person.name}: this stops the escalation, and you "
            "become the incident commander if there is none yet.",
            "This link works once.",
        ],
        button="Acknowledge",
    )


@router.post(
    "/{token:path}",
    summary="Acknowledge by link",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}, **PAGE_RESPONSES},
)
async def acknowledge(token: str, services: Services, secret: LinkSecret) -> HTMLResponse:
    """Acknowledges the incident as the link's person, once."""
    try:
        link = await _checked(services, token, secret=secret)
        await _claim(services, link)
    except Answer as answer:
        return answer.response
    except grpc.aio.AioRpcError:
        log.warning("acknowledge link: a backing service failed", exc_info=True)
        return ack_pages.unavailable()
    try:
        report, changed = await run_command(
            services,
            link.person,
            link.incident,
            None,
            acknowledge=acknowledgement(link.person),
        )
    except grpc.aio.AioRpcError as error:
        if error.code() not in ANSWERED:
            await _release(services, link)
            log.warning("acknowledge link: triage did not answer", exc_info=True)
            return ack_pages.unavailable()
        return await _not_acknowledged(services, link, error)
    title = f"{report.reference} ({changed.state.priority}): {report.title}"
    commander = changed.state.incident_commander.id == link.person.id
    return ack_pages.page(
        200,
        f"{report.reference} is acknowledged",
        [
            title,
            f"Acknowledged by {link.person.name}; the escalation stops.",
            "You are its incident commander."
            if commander
            else f"Its incident commander is {changed.state.incident_commander.name}.",
        ],
    )


async def _checked(services: Backends, token: str, *, secret: str | None) -> Link:
    """The link, if it is genuine, unexpired, unused, and its person may acknowledge its
    incident now; otherwise Answer with the page that says which it is not."""
    try:
        claim = ack_links.verify(token, secret=secret, now=datetime.now(UTC))
    except ack_links.InvalidLink:
        raise Answer(ack_pages.not_valid()) from None
    except ack_links.ExpiredLink:
        raise Answer(ack_pages.expired()) from None
    ids = (claim.incident_id, claim.client_id, claim.person_id, claim.delivery_id)
    too_long = len(claim.delivery_id) > DELIVERY_ID_LENGTH
    if too_long or not all(ID.fullmatch(value) for value in ids):
        raise Answer(ack_pages.not_valid())
    async with reading(services.engine) as connection:
        used = (
            await connection.execute(
                select(used_ack_links.c.delivery_id).where(
                    used_ack_links.c.delivery_id == claim.delivery_id
                )
            )
        ).first()
        person = (
            await connection.execute(
                select(
                    people.c.id,
                    people.c.name,
                    people.c.role,
                    people.c.client_id,
                    people.c.active,
                    people.c.clients,
                ).where(people.c.id == claim.person_id)
            )
        ).first()
    if used is not None:
        raise Answer(ack_pages.already_used())
    if person is None:
        raise Answer(ack_pages.not_valid())
    kind = PERSON_KINDS.get(person.role)
    if not person.active or kind is None or kind not in STAFF:
        raise Answer(
            ack_pages.refused(
                f"{person.name} is deactivated, so this link no longer works."
                if not person.active
                else f"{person.name} is not one of the firm's staff."
            )
        )
    principal = Principal(
        kind=kind,
        id=person.id,
        name=person.name,
        client_id=person.client_id,
        key_id="",  # acting by a link, not by a key
        clients=None if person.clients is None else frozenset(person.clients),
    )
    walled_off = Answer(
        ack_pages.refused(
            f"{person.name} may no longer work on this client's incidents (their ethical "
            "wall), so this link no longer works."
        )
    )
    if not principal.can_see_client(claim.client_id):
        raise walled_off  # before asking triage: the person's token does not reach the client
    act_for(principal)
    try:
        response = await services.triage.GetResponse(
            # The incident of the link's client, or none.
            triage_pb2.IncidentRef(incident_id=claim.incident_id, client_id=claim.client_id),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            raise Answer(ack_pages.not_valid()) from None
        raise
    try:
        authorize(
            principal,
            Action.INCIDENT_ACKNOWLEDGE,
            client_id=response.client_id,
            participant=takes_part(principal, response.state),
            incident_id=claim.incident_id,
        )
    except Problem:
        raise walled_off from None
    return Link(
        claim, principal, IncidentInHand(claim.incident_id, response.client_id, response.state)
    )


async def _claim(services: Backends, link: Link) -> None:
    """Records the link as used; Answer "already used" when another request just did."""
    try:
        async with services.engine.begin() as connection:
            await connection.execute(
                used_ack_links.insert().values(
                    delivery_id=link.claim.delivery_id,
                    incident_id=link.claim.incident_id,
                    person_id=link.claim.person_id,
                    used_at=datetime.now(UTC),
                )
            )
    except IntegrityError:
        raise Answer(ack_pages.already_used()) from None


async def _release(services: Backends, link: Link) -> None:
    """Triage could not be reached: the link was not really used, so it works again."""
    async with services.engine.begin() as connection:
        await connection.execute(
            delete(used_ack_links).where(used_ack_links.c.delivery_id == link.claim.delivery_id)
        )


async def _not_acknowledged(
    services: Backends, link: Link, error: grpc.aio.AioRpcError
) -> HTMLResponse:
    """Triage refused: someone took the incident on first (or it ended). Not an error."""
    status = dict(error.trailing_metadata() or ()).get(STATUS_METADATA_KEY)
    state = link.incident.state
    try:
        current = await services.triage.GetResponse(
            link.incident.ref(), timeout=RPC_TIMEOUT_SECONDS
        )
        state = current.state
    except grpc.aio.AioRpcError:
        pass  # the state as checked a moment ago will do
    return ack_pages.page(
        200,
        "Already taken on",
        [_taken_on(str(status or state.status), state.incident_commander)],
    )


def _taken_on(status: str, commander: events_pb2.Person) -> str:
    text = f"Nothing to do: the incident is already {status}"
    return f"{text}, with {commander.name} as its commander." if commander.id else f"{text}."
