"""Reporting an incident from the console: a client's contact for their organisation, staff
for the firm. The form carries an idempotency key of its own, so a form sent twice (a double
click, a resent request) reports once."""

from __future__ import annotations

import uuid
from typing import Any, get_args

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from services.gateway.console.api import Refused
from services.gateway.console.web import SignedIn, Viewer, checked_form, page
from services.gateway.schemas import Impact, IncidentType, Urgency

router = APIRouter(prefix="/console/report", include_in_schema=False)

# The API's own choices, offered as they are.
TYPES, IMPACTS, URGENCIES = (get_args(choice) for choice in (IncidentType, Impact, Urgency))


def _form(request: Request, viewer: Viewer, status_code: int = 200, **context: Any) -> Response:
    return page(
        request,
        "report.html",
        status_code,
        viewer=viewer,
        types=TYPES,
        impacts=IMPACTS,
        urgencies=URGENCIES,
        idempotency_key=context.pop("idempotency_key", None) or str(uuid.uuid4()),
        **context,
    )


@router.get("")
async def report_form(request: Request, signed_in: SignedIn) -> Response:
    return _form(request, signed_in, values={})


@router.post("")
async def report(request: Request, signed_in: SignedIn) -> Response:
    fields = await checked_form(request, signed_in)
    body = {
        "title": fields.get("title", ""),
        "description": fields.get("description", ""),
        "type": fields.get("type", ""),
        "impact": fields.get("impact", ""),
        "urgency": fields.get("urgency", ""),
        "reporter": {"name": signed_in.principal.name, "email": signed_in.email},
    }
    key = fields.get("idempotency_key", "")
    async with signed_in.api(request) as api:
        try:
            created = await api.send(
                "POST", "/v1/incidents", body, headers={"Idempotency-Key": key} if key else None
            )
        except Refused as refused:
            if refused.status not in (400, 409, 422):
                raise
            return _form(
                request,
                signed_in,
                refused.status,
                values=fields,
                idempotency_key=key,
                problem=refused.message,
                errors=refused.problem.get("errors") or [],
            )
    return RedirectResponse(
        f"/console/incidents/{created['id']}?notice=Reported+as+{created['reference']}.",
        status_code=303,
    )
