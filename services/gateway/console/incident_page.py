"""An incident's page and what can be done from it: its commands (as `GET …/transitions` says,
refused ones shown with the reason), tasks, timeline, evidence, deadlines, deliveries, status
updates, notes and closing. Every change is a form that the page sends to the API as the
signed-in person, then shows the page again (post, redirect, get)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.responses import Response

from services.gateway.console.api import ConsoleApi, Refused
from services.gateway.console.web import SignedIn, Viewer, checked_form, page
from services.gateway.dependencies import incident_id_path

router = APIRouter(prefix="/console/incidents/{incident_id}", include_in_schema=False)

# The lifecycle commands the page offers, and the one text each needs (None: none).
COMMAND_TEXT = {
    "acknowledge": None,
    "contain": "summary",
    "resolve": "summary",
    "reopen": "reason",
    "decline": "reason",
}
ROLES = {
    "incident_commander": "Commander",
    "communications_lead": "Communications lead",
    "scribe": "Scribe",
}
CLOSURE_CODES = ("resolved", "false_positive", "duplicate", "risk_accepted")
WITH_CUSTODY = 20  # evidence items whose custody log the page shows


async def _optional(call: Any) -> Any:
    """A section the viewer may not see (a 403 or 404 for it) is left out, not an error."""
    try:
        return await call
    except Refused as refused:
        if refused.status in (403, 404):
            return None
        raise


async def _page_data(api: ConsoleApi, viewer: Viewer, incident_id: str) -> dict[str, Any]:
    base = f"/v1/incidents/{incident_id}"
    incident = await api.get(base)  # a 404 for another client's incident ends here
    sections = {
        "timeline": api.get(f"{base}/timeline"),
        "evidence": api.get(f"{base}/evidence"),
        "updates": api.get(f"{base}/updates"),
    }
    if viewer.principal.is_staff:
        sections |= {
            "transitions": api.get(f"{base}/transitions"),
            "tasks": api.get(f"{base}/tasks"),
            "deadlines": api.get(f"{base}/deadlines"),
            "notifications": api.get(f"{base}/notifications"),
            "people": api.get("/v1/people", limit=200, active="true"),
            "analysis": api.get(f"{base}/analysis"),
            "actions": api.get(f"{base}/actions"),
            "review": api.get(f"{base}/review"),  # a 404 until one is drafted
            "gates": api.get(f"{base}/closure-gates"),
        }
    found = await asyncio.gather(*(_optional(call) for call in sections.values()))
    data = dict(zip(sections, found, strict=True))
    data["incident"] = incident
    items = (data["evidence"] or {}).get("items", [])[:WITH_CUSTODY]
    records = await asyncio.gather(
        *(_optional(api.get(f"/v1/evidence/{quote(item['id'], safe='')}")) for item in items)
    )
    data["custody"] = {record["id"]: record["custody"] for record in records if record is not None}
    if data.get("people"):
        data["staff"] = [person for person in data["people"]["items"] if person["role"] != "client"]
    return data


async def show(
    request: Request, viewer: Viewer, incident_id: str, status_code: int = 200, **extra: Any
) -> Response:
    async with viewer.api(request) as api:
        data = await _page_data(api, viewer, incident_id)
    return page(
        request,
        "incident.html",
        status_code,
        viewer=viewer,
        command_text=COMMAND_TEXT,
        roles=ROLES,
        closure_codes=CLOSURE_CODES,
        notice=request.query_params.get("notice", ""),
        **data,
        **extra,
    )


def _back(incident_id: str, notice: str) -> Response:
    return RedirectResponse(
        f"/console/incidents/{incident_id}?notice={quote(notice)}", status_code=303
    )


async def _form_to_api(
    request: Request,
    viewer: Viewer,
    incident_id: str,
    method: str,
    below: str,
    body: Callable[[dict[str, str]], Any],
    done: str,
    *,
    if_match: bool = False,
) -> Response:
    """Sends one form's change to the API at /v1/incidents/{id}/{below}; back to the page with
    `done`, or the page again with what the API refused (a 409's unmet closure gates among
    it). `if_match`: with the version the person saw, so that a change made meanwhile is a
    412, not a surprise."""
    fields = await checked_form(request, viewer)
    incident_id = await incident_id_path(incident_id)
    version = fields.get("version") if if_match else None
    async with viewer.api(request) as api:
        try:
            await api.send(
                method,
                f"/v1/incidents/{incident_id}/{below}",
                body(fields),
                headers={"If-Match": version} if version else None,
            )
        except Refused as refused:
            if refused.status == 404:
                raise
            return await show(
                request,
                viewer,
                incident_id,
                refused.status,
                problem=refused.message,
                unmet_gates=refused.problem.get("unmet_gates") or [],
            )
    return _back(incident_id, done)


@router.get("")
async def incident(request: Request, incident_id: str, signed_in: SignedIn) -> Response:
    return await show(request, signed_in, await incident_id_path(incident_id))


@router.post("/commands/{command}")
async def run_command(
    request: Request, incident_id: str, command: str, signed_in: SignedIn
) -> Response:
    if command not in COMMAND_TEXT:
        await checked_form(request, signed_in)  # a form not of the session is that first
        raise Refused(404, {"detail": "No such command."})
    text = COMMAND_TEXT[command]
    return await _form_to_api(
        request,
        signed_in,
        incident_id,
        "POST",
        command,
        lambda fields: {text: fields.get(text, "")} if text else None,
        f"Done: {command}.",
        if_match=True,
    )


@router.post("/roles/{role}")
async def assign_role(
    request: Request, incident_id: str, role: str, signed_in: SignedIn
) -> Response:
    return await _form_to_api(
        request,
        signed_in,
        incident_id,
        "PUT",
        f"roles/{quote(role, safe='')}",
        lambda fields: {"person_id": fields.get("person_id", "")},
        f"{ROLES.get(role, role)} assigned.",
    )


@router.post("/tasks/{task_id}")
async def change_task(
    request: Request, incident_id: str, task_id: str, signed_in: SignedIn
) -> Response:
    return await _form_to_api(
        request,
        signed_in,
        incident_id,
        "PATCH",
        f"tasks/{quote(task_id, safe='')}",
        lambda fields: {"status": fields.get("status", "done")},
        "Task updated.",
    )


@router.post("/updates")
async def post_update(request: Request, incident_id: str, signed_in: SignedIn) -> Response:
    return await _form_to_api(
        request,
        signed_in,
        incident_id,
        "POST",
        "updates",
        lambda fields: {"audience": fields.get("audience", ""), "body": fields.get("body", "")},
        "Update posted.",
    )


@router.post("/notes")
async def add_note(request: Request, incident_id: str, signed_in: SignedIn) -> Response:
    return await _form_to_api(
        request,
        signed_in,
        incident_id,
        "POST",
        "notes",
        lambda fields: {"body": fields.get("body", ""), "audience": "internal"},
        "Note added.",
    )


@router.post("/close")
async def close(request: Request, incident_id: str, signed_in: SignedIn) -> Response:
    return await _form_to_api(
        request,
        signed_in,
        incident_id,
        "POST",
        "close",
        lambda fields: {field: fields.get(field, "") for field in ("closure_code", "summary")},
        "Incident closed.",
    )


@router.post("/evidence/{evidence_id}/verify")
async def verify_evidence(
    request: Request, incident_id: str, evidence_id: str, signed_in: SignedIn
) -> Response:
    await checked_form(request, signed_in)
    incident_id = await incident_id_path(incident_id)
    async with signed_in.api(request) as api:
        result = await api.send("POST", f"/v1/evidence/{quote(evidence_id, safe='')}/verify")
    verdict = (
        "intact"
        if result["result"] == "intact"
        else "TAMPERED: " + "; ".join(difference["detail"] for difference in result["differences"])
    )
    return _back(incident_id, f"Evidence verified: {verdict}.")


@router.post("/evidence")
async def add_evidence(request: Request, incident_id: str, signed_in: SignedIn) -> Response:
    """The page's script sends the file itself as the body (never a multipart form, whose
    envelope would become part of the evidence), with the form token in a header; it goes on
    to the API as it arrives."""
    incident_id = await incident_id_path(incident_id)
    if request.headers.get("x-form-token") != signed_in.form_token:
        return Response("this form is not from your session", status_code=400)

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            yield chunk

    params = {
        "filename": request.query_params.get("filename", ""),
        "description": request.query_params.get("description", ""),
    }
    headers = {"Content-Type": request.headers.get("content-type", "application/octet-stream")}
    async with signed_in.api(request) as api:
        response = await api.http.post(
            f"/v1/incidents/{incident_id}/evidence", params=params, content=body(), headers=headers
        )
    return Response(
        response.content, status_code=response.status_code, media_type="application/json"
    )


@router.get("/report")
async def client_report(request: Request, incident_id: str, signed_in: SignedIn) -> Response:
    """The client report as a PDF download (the API's, for the person)."""
    incident_id = await incident_id_path(incident_id)
    async with signed_in.api(request) as api:
        response = await api.http.get(
            f"/v1/incidents/{incident_id}/report", headers={"Accept": "application/pdf"}
        )
    if not response.is_success:
        ConsoleApi.checked(response)  # raises Refused, which becomes the error page
    return StreamingResponse(
        iter([response.content]),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="incident-{incident_id}.pdf"'},
    )
