"""People in the admin pages: the list (paged, filtered), adding a member of staff or a client's
contact, and on a person's page deactivating or reactivating them, a first password, a one-time
sign-in link and a personal key (each link and key shown once)."""

from __future__ import annotations

import asyncio
from typing import Any, get_args
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from starlette.responses import Response

from services.gateway import schemas
from services.gateway.console.admin_web import (
    admin_page,
    back,
    client_choices,
    names_by_id,
    next_page,
    offered,
    refusal,
    shown_once,
)
from services.gateway.console.api import Refused
from services.gateway.console.web import SignedIn, Viewer, checked_form
from services.gateway.dependencies import PersonId
from services.gateway.permissions import Action

router = APIRouter(prefix="/people")

ROLES = get_args(schemas.PersonRole)
PAGE_SIZE = 50
# A wall's clients are ticked one box each, named "wall.<client id>" (a form's fields keep one
# value per name).
WALL_BOX = "wall."


def _new_person(fields: dict[str, str]) -> dict[str, Any]:
    """The API's body from the form: what was left empty is left out, for the API to judge."""
    body: dict[str, Any] = {name: fields.get(name, "") for name in ("name", "email", "role")}
    for name in ("client_id", "phone", "timezone"):
        if fields.get(name):
            body[name] = fields[name]
    if fields.get("wall") == "some":
        body["clients"] = sorted(
            name.removeprefix(WALL_BOX) for name in fields if name.startswith(WALL_BOX)
        )
    return body


async def _people_page(
    request: Request,
    viewer: Viewer,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    query = request.query_params
    filters = {name: query.get(name, "") for name in ("role", "client_id", "active")}
    async with viewer.api(request) as api:
        listed, clients = await asyncio.gather(
            api.get("/v1/people", limit=PAGE_SIZE, cursor=query.get("cursor"), **filters),
            client_choices(api),
        )
    return admin_page(
        request,
        viewer,
        "admin_people.html",
        status_code,
        people=listed["items"],
        next_page=next_page(request, listed["next_cursor"]),
        filters=filters,
        clients=clients,
        client_names=names_by_id(clients),
        roles=ROLES,
        wall_box=WALL_BOX,
        values=values or {"role": "responder", "wall": "all"},
        **extra,
    )


@router.get("")
async def people(request: Request, signed_in: SignedIn) -> Response:
    return await _people_page(request, signed_in)


@router.post("")
async def add_person(request: Request, signed_in: SignedIn) -> Response:
    fields = await checked_form(request, signed_in)
    async with signed_in.api(request) as api:
        try:
            person = await api.send("POST", "/v1/people", _new_person(fields))
        except Refused as refused:
            return await _people_page(
                request, signed_in, refused.status, values=fields, **refusal(refused)
            )
    return back(
        f"/console/admin/people/{person['id']}",
        f"{person['name']} added. Set a first password or make a sign-in link for them.",
    )


async def _person_page(
    request: Request, viewer: Viewer, person_id: str, status_code: int = 200, **extra: Any
) -> Response:
    async with viewer.api(request) as api:
        person, clients = await asyncio.gather(
            api.get(f"/v1/people/{person_id}"), client_choices(api)
        )
        # Whoever may issue a person's keys (an admin) may list them; anyone else would be
        # listed only their own.
        keys = (
            (await api.get("/v1/api-keys", person_id=person_id, limit=PAGE_SIZE))["items"]
            if Action.KEY_ISSUE.value in offered(viewer)
            else []
        )
    return admin_page(
        request,
        viewer,
        "admin_person.html",
        status_code,
        person=person,
        client_names=names_by_id(clients),
        keys=keys,
        **extra,
    )


@router.get("/{person_id}")
async def person(request: Request, person_id: PersonId, signed_in: SignedIn) -> Response:
    return await _person_page(request, signed_in, person_id)


async def _change(
    request: Request, viewer: Viewer, person_id: str, method: str, path: str, body: Any, done: str
) -> Response:
    async with viewer.api(request) as api:
        try:
            await api.send(method, path, body)
        except Refused as refused:
            return await _person_page(
                request, viewer, person_id, refused.status, **refusal(refused)
            )
    return back(f"/console/admin/people/{person_id}", done)


@router.post("/{person_id}/active")
async def set_active(request: Request, person_id: PersonId, signed_in: SignedIn) -> Response:
    fields = await checked_form(request, signed_in)
    active = fields.get("active") == "true"
    return await _change(
        request,
        signed_in,
        person_id,
        "PATCH",
        f"/v1/people/{person_id}",
        {"active": active},
        "Reactivated." if active else "Deactivated: their keys and sessions stop working.",
    )


@router.post("/{person_id}/password")
async def set_password(request: Request, person_id: PersonId, signed_in: SignedIn) -> Response:
    fields = await checked_form(request, signed_in)
    password = fields.get("password", "")
    if password != fields.get("confirmation", ""):
        return await _person_page(
            request, signed_in, person_id, 422, problem="The two passwords are not the same."
        )
    return await _change(
        request,
        signed_in,
        person_id,
        "PUT",
        f"/v1/people/{person_id}/password",
        {"password": password},
        "Password set. Hand it on by a channel of its own; they can sign in with it now.",
    )


@router.post("/{person_id}/sign-in-link")
async def sign_in_link(request: Request, person_id: PersonId, signed_in: SignedIn) -> Response:
    await checked_form(request, signed_in)
    async with signed_in.api(request) as api:
        try:
            link = await api.send("POST", f"/v1/people/{person_id}/sign-in-links")
        except Refused as refused:
            return await _person_page(
                request, signed_in, person_id, refused.status, **refusal(refused)
            )
    # The API built the link for the address it was asked at (in process, not the public
    # one); the person is sent to the address this console was reached at.
    url = str(request.base_url).rstrip("/") + urlsplit(link["url"]).path
    return shown_once(
        request,
        signed_in,
        heading="A one-time sign-in link",
        secrets=[("The link", url)],
        facts=[("Works once, until", link["expires_at"])],
        back_to=f"/console/admin/people/{person_id}",
        back_label="Back to the person",
    )


@router.post("/{person_id}/keys")
async def issue_key(request: Request, person_id: PersonId, signed_in: SignedIn) -> Response:
    fields = await checked_form(request, signed_in)
    body = {"expires_at": fields["expires_at"]} if fields.get("expires_at") else None
    async with signed_in.api(request) as api:
        try:
            issued = await api.send("POST", f"/v1/people/{person_id}/api-keys", body)
        except Refused as refused:
            return await _person_page(
                request, signed_in, person_id, refused.status, **refusal(refused)
            )
    return shown_once(
        request,
        signed_in,
        heading="A personal key was issued",
        secrets=[("The key", issued["key"])],
        facts=[
            ("Recognise it by", issued["prefix"]),
            ("Acts as", "the person, with their role and wall at the time of each request"),
            ("Stops working", issued["expires_at"] or "never (until revoked or deactivated)"),
        ],
        back_to=f"/console/admin/people/{person_id}",
        back_label="Back to the person",
    )
