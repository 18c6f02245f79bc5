"""Integrations in the admin pages: a client's monitoring that sends alerts. Listing them,
adding one (its key, and an email integration's address, shown once), rotating its key (the
new one shown once) and disabling it. Managers may, for the clients inside their wall."""

from __future__ import annotations

import asyncio
import re
from typing import Any, get_args

from fastapi import APIRouter, Request
from starlette.responses import Response

from services.gateway import alert_schemas, schemas
from services.gateway.console.admin_web import (
    admin_page,
    back,
    client_choices,
    names_by_id,
    next_page,
    refusal,
    shown_once,
)
from services.gateway.console.api import Refused
from services.gateway.console.web import SignedIn, Viewer, checked_form
from services.gateway.routers.integrations import IntegrationId

router = APIRouter(prefix="/integrations")

PATH = "/v1/integrations"
PAGE_SIZE = 50
KINDS = get_args(alert_schemas.IntegrationKind)
INCIDENT_TYPES = get_args(schemas.IncidentType)
# What each kind needs beyond the rest, as the form asks for it.
KIND_FIELDS = {"email": ("allowed_senders",), "heartbeat": ("interval_seconds", "grace_seconds")}
SENDER_SEPARATORS = re.compile(r"[\s,]+")


def _new_integration(fields: dict[str, str]) -> dict[str, Any]:
    """The API's body from the form. Numbers go as typed: the API reads them, or names the
    field it cannot."""
    kind = fields.get("kind", "")
    body: dict[str, Any] = {
        "client_id": fields.get("client_id", ""),
        "kind": kind,
        "name": fields.get("name", ""),
        "service": fields.get("service", ""),
        "resolve_with_alerts": fields.get("resolve_with_alerts") == "on",
    }
    if fields.get("incident_type"):
        body["incident_type"] = fields["incident_type"]
    wanted = KIND_FIELDS.get(kind, ())
    if "allowed_senders" in wanted:
        senders = SENDER_SEPARATORS.split(fields.get("allowed_senders", "").strip())
        body["allowed_senders"] = [sender for sender in senders if sender]
    for name in ("interval_seconds", "grace_seconds"):
        if name in wanted and fields.get(name, "").strip():
            body[name] = fields[name].strip()
    return body


async def _integrations_page(
    request: Request,
    viewer: Viewer,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    query = request.query_params
    client_id = query.get("client_id", "")
    async with viewer.api(request) as api:
        listed, clients = await asyncio.gather(
            api.get(PATH, limit=PAGE_SIZE, cursor=query.get("cursor"), client_id=client_id),
            client_choices(api),
        )
    return admin_page(
        request,
        viewer,
        "admin_integrations.html",
        status_code,
        integrations=listed["items"],
        next_page=next_page(request, listed["next_cursor"]),
        client_id=client_id,
        clients=clients,
        client_names=names_by_id(clients),
        kinds=KINDS,
        incident_types=INCIDENT_TYPES,
        values=values or {"kind": "events_v2", "incident_type": "service_outage"},
        **extra,
    )


def _issued(
    request: Request, viewer: Viewer, issued: dict[str, Any], heading: str, client: str
) -> Response:
    secrets = [("The key", issued["key"])]
    if issued.get("email_address"):
        secrets.append(("The address to send alerts to", issued["email_address"]))
    return shown_once(
        request,
        viewer,
        heading=heading,
        secrets=secrets,
        facts=[
            ("Integration", issued["name"]),
            ("Client", client),
            ("Kind", issued["kind"]),
            ("Recognise it by", issued["key_prefix"]),
        ],
        back_to="/console/admin/integrations",
        back_label="Back to integrations",
    )


@router.get("")
async def integrations(request: Request, signed_in: SignedIn) -> Response:
    return await _integrations_page(request, signed_in)


@router.post("")
async def add_integration(request: Request, signed_in: SignedIn) -> Response:
    fields = await checked_form(request, signed_in)
    async with signed_in.api(request) as api:
        try:
            issued = await api.send("POST", PATH, _new_integration(fields))
        except Refused as refused:
            return await _integrations_page(
                request, signed_in, refused.status, values=fields, **refusal(refused)
            )
        named = names_by_id(await client_choices(api))
    client = named.get(issued["client_id"], issued["client_id"])
    return _issued(request, signed_in, issued, "An integration was added", client)


@router.post("/{integration_id}/rotate")
async def rotate(request: Request, integration_id: IntegrationId, signed_in: SignedIn) -> Response:
    await checked_form(request, signed_in)
    async with signed_in.api(request) as api:
        try:
            issued = await api.send("POST", f"{PATH}/{integration_id}/rotate")
        except Refused as refused:
            return await _integrations_page(request, signed_in, refused.status, **refusal(refused))
        named = names_by_id(await client_choices(api))
    client = named.get(issued["client_id"], issued["client_id"])
    return _issued(
        request, signed_in, issued, "The integration has a new key; the old one is refused", client
    )


@router.post("/{integration_id}/disable")
async def disable(request: Request, integration_id: IntegrationId, signed_in: SignedIn) -> Response:
    await checked_form(request, signed_in)
    async with signed_in.api(request) as api:
        try:
            disabled = await api.send("POST", f"{PATH}/{integration_id}/disable")
        except Refused as refused:
            return await _integrations_page(request, signed_in, refused.status, **refusal(refused))
    return back(
        "/console/admin/integrations",
        f"Integration {disabled['name']} disabled: its key is refused from now on.",
    )
