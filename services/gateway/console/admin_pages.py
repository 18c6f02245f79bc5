"""The console's admin pages (issue 15 §1): clients and their systems' keys, API keys, and the
sections of their own modules (people, on-call, integrations), under one router.

Every page asks the API as the signed-in person; what it refuses is shown on the page that
asked, with the fields it names. A client's contact is refused the area as a whole.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from services.gateway.console import admin_integrations, admin_oncall, admin_people
from services.gateway.console.admin_web import (
    admin_page,
    back,
    client_choices,
    names_by_id,
    next_page,
    refusal,
    return_path,
    shown_once,
)
from services.gateway.console.api import Refused
from services.gateway.console.web import SignedIn, Viewer, checked_form
from services.gateway.dependencies import ClientId, KeyId
from services.gateway.permissions import OPERATOR_CLIENT_ID, Action

router = APIRouter(prefix="/console/admin", include_in_schema=False)

# (path, title, the action that opens it, what it holds)
SECTIONS = (
    ("clients", "Clients", Action.CLIENT_READ, "Client organisations and their systems' keys."),
    (
        "people",
        "People",
        Action.PERSON_READ,
        "Staff and clients' contacts: adding them, passwords, sign-in links, personal keys.",
    ),
    ("keys", "API keys", Action.KEY_LIST, "Keys as listed (never the key itself); revoking."),
    ("schedules", "On-call schedules", Action.ONCALL_READ, "Who is on call, and when."),
    (
        "escalation-policies",
        "Escalation policies",
        Action.ONCALL_READ,
        "Who is paged for which incidents, and how it escalates.",
    ),
    (
        "integrations",
        "Integrations",
        Action.INTEGRATION_MANAGE,
        "Clients' monitoring that sends alerts: keys, rotating, disabling.",
    ),
)
PAGE_SIZE = 50


@router.get("")
async def index(request: Request, signed_in: SignedIn) -> Response:
    async with signed_in.api(request) as api:
        # The area is the firm's: a client's contact meets the API's refusal to list people
        # as this page.
        await api.get("/v1/people", limit=1)
    return admin_page(request, signed_in, "admin.html", sections=SECTIONS)


# --- clients ------------------------------------------------------------------------------------


async def _clients_page(
    request: Request,
    viewer: Viewer,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    cursor = request.query_params.get("cursor")
    async with viewer.api(request) as api:
        listed = await api.get("/v1/clients", limit=PAGE_SIZE, cursor=cursor)
    return admin_page(
        request,
        viewer,
        "admin_clients.html",
        status_code,
        clients=listed["items"],
        next_page=next_page(request, listed["next_cursor"]),
        operator=OPERATOR_CLIENT_ID,
        values=values or {},
        **extra,
    )


@router.get("/clients")
async def clients(request: Request, signed_in: SignedIn) -> Response:
    return await _clients_page(request, signed_in)


@router.post("/clients")
async def add_client(request: Request, signed_in: SignedIn) -> Response:
    fields = await checked_form(request, signed_in)
    async with signed_in.api(request) as api:
        try:
            created = await api.send("POST", "/v1/clients", {"name": fields.get("name", "")})
        except Refused as refused:
            return await _clients_page(
                request, signed_in, refused.status, values=fields, **refusal(refused)
            )
    return back("/console/admin/clients", f"Client {created['name']} added.")


@router.post("/clients/{client_id}/keys")
async def issue_client_key(request: Request, client_id: ClientId, signed_in: SignedIn) -> Response:
    fields = await checked_form(request, signed_in)
    body = {"role": fields.get("role", "")}
    if fields.get("expires_at"):
        body["expires_at"] = fields["expires_at"]
    async with signed_in.api(request) as api:
        try:
            issued = await api.send("POST", f"/v1/clients/{client_id}/api-keys", body)
        except Refused as refused:
            return await _clients_page(request, signed_in, refused.status, **refusal(refused))
        named = names_by_id(await client_choices(api))
    return shown_once(
        request,
        signed_in,
        heading="A system key was issued",
        secrets=[("The key", issued["key"])],
        facts=[
            ("Client", named.get(client_id, client_id)),
            ("Role", issued["role"]),
            ("Recognise it by", issued["prefix"]),
            ("Stops working", issued["expires_at"] or "never (until revoked)"),
        ],
        back_to="/console/admin/clients",
        back_label="Back to clients",
    )


# --- API keys -----------------------------------------------------------------------------------


async def _keys_page(
    request: Request, viewer: Viewer, status_code: int = 200, **extra: Any
) -> Response:
    query = request.query_params
    filters = {name: query.get(name, "") for name in ("person_id", "client_id")}
    async with viewer.api(request) as api:
        listed = await api.get(
            "/v1/api-keys", limit=PAGE_SIZE, cursor=query.get("cursor"), **filters
        )
    return admin_page(
        request,
        viewer,
        "admin_keys.html",
        status_code,
        keys=listed["items"],
        next_page=next_page(request, listed["next_cursor"]),
        filters=filters,
        **extra,
    )


@router.get("/keys")
async def api_keys(request: Request, signed_in: SignedIn) -> Response:
    return await _keys_page(request, signed_in)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, key_id: KeyId, signed_in: SignedIn) -> Response:
    fields = await checked_form(request, signed_in)
    async with signed_in.api(request) as api:
        try:
            await api.send("DELETE", f"/v1/api-keys/{key_id}")
        except Refused as refused:
            return await _keys_page(request, signed_in, refused.status, **refusal(refused))
    return back(return_path(fields, "/console/admin/keys"), "Key revoked.")


for section in (admin_people, admin_oncall, admin_integrations):
    router.include_router(section.router)
