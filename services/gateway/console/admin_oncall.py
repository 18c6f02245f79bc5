"""On-call schedules and escalation policies in the admin pages: lists, a page each (who is on
call now; a policy's steps by name), and adding or changing one as the API's own JSON body in a
textarea. The API checks the body; its 400 or 422 is shown on the form, the text kept. A change
carries the version the person saw (If-Match): one made meanwhile is a 412, not lost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from services.gateway.console.admin_web import (
    admin_page,
    back,
    client_choices,
    names_by_id,
    next_page,
    refusal,
    send_json_text,
)
from services.gateway.console.api import ConsoleApi, Refused
from services.gateway.console.web import SignedIn, Viewer, checked_form
from services.gateway.dependencies import PolicyId, ScheduleId

router = APIRouter()

# The page a refused form is shown on again (a listing, or an item's), with the text sent.
PageAgain = Callable[..., Awaitable[Response]]

PAGE_SIZE = 50
SCHEDULES = "/v1/schedules"
POLICIES = "/v1/escalation-policies"
# What a new one's textarea starts with: the API's body, to fill in.
NEW_SCHEDULE = {
    "name": "",
    "timezone": "Europe/London",
    "layers": [
        {
            "participants": [],
            "rotation": "weekly",
            "handoff_time": "09:00",
            "starts_at": "2030-01-07T09:00:00Z",
        }
    ],
    "overrides": [],
}
NEW_POLICY = {
    "name": "",
    "priorities": ["P1"],
    "client_id": None,
    "page": True,
    "repeat": 0,
    "steps": [{"targets": [{"schedule_id": "default"}], "after_minutes": 15}],
}
# The fields a change may name (the rest the API keeps: id, version, when).
SCHEDULE_FIELDS = ("name", "timezone", "layers", "overrides")
POLICY_FIELDS = ("name", "priorities", "client_id", "page", "repeat", "steps")


def _as_text(body: dict[str, Any]) -> str:
    return json.dumps(body, indent=2, ensure_ascii=False)


def _editable(item: dict[str, Any], fields: tuple[str, ...]) -> str:
    """An item's writable fields as the textarea's text; a step's empty target half left out."""
    body = {name: item[name] for name in fields}
    if "steps" in body:
        body["steps"] = [
            step
            | {
                "targets": [
                    {key: value for key, value in target.items() if value is not None}
                    for target in step["targets"]
                ]
            }
            for step in body["steps"]
        ]
    return _as_text(body)


async def _person_names(api: ConsoleApi, person_ids: set[str]) -> dict[str, str]:
    async def name(person_id: str) -> str:
        try:
            return str((await api.get(f"/v1/people/{person_id}"))["name"])
        except Refused as refused:
            if refused.status != 404:
                raise
            return f"unknown person {person_id}"

    ids = sorted(person_ids)
    return dict(zip(ids, await asyncio.gather(*(name(each) for each in ids)), strict=True))


async def _on_call_now(api: ConsoleApi, schedule_id: str) -> dict[str, Any]:
    return dict(await api.get(f"{SCHEDULES}/{schedule_id}/on-call"))


# --- schedules ----------------------------------------------------------------------------------


async def _schedules_page(
    request: Request,
    viewer: Viewer,
    status_code: int = 200,
    text: str | None = None,
    **extra: Any,
) -> Response:
    async with viewer.api(request) as api:
        listed = await api.get(
            SCHEDULES, limit=PAGE_SIZE, cursor=request.query_params.get("cursor")
        )
        on_call = await asyncio.gather(
            *(_on_call_now(api, schedule["id"]) for schedule in listed["items"])
        )
    return admin_page(
        request,
        viewer,
        "admin_schedules.html",
        status_code,
        schedules=list(zip(listed["items"], on_call, strict=True)),
        next_page=next_page(request, listed["next_cursor"]),
        text=_as_text(NEW_SCHEDULE) if text is None else text,
        **extra,
    )


@router.get("/schedules")
async def schedules(request: Request, signed_in: SignedIn) -> Response:
    return await _schedules_page(request, signed_in)


@router.post("/schedules")
async def add_schedule(request: Request, signed_in: SignedIn) -> Response:
    return await _add(
        request, signed_in, SCHEDULES, _schedules_page, "schedules", "Schedule added."
    )


async def _schedule_page(
    request: Request,
    viewer: Viewer,
    schedule_id: str,
    status_code: int = 200,
    text: str | None = None,
    version: str | None = None,
    **extra: Any,
) -> Response:
    """The page; after a refused change, with the text and version that were sent."""
    async with viewer.api(request) as api:
        schedule, on_call = await asyncio.gather(
            api.get(f"{SCHEDULES}/{schedule_id}"), _on_call_now(api, schedule_id)
        )
        named = {person for layer in schedule["layers"] for person in layer["participants"]}
        named |= {override["person_id"] for override in schedule["overrides"]}
        names = await _person_names(api, named)
    return admin_page(
        request,
        viewer,
        "admin_schedule.html",
        status_code,
        schedule=schedule,
        on_call=on_call,
        names=names,
        text=_editable(schedule, SCHEDULE_FIELDS) if text is None else text,
        version=schedule["version"] if version is None else version,
        **extra,
    )


@router.get("/schedules/{schedule_id}")
async def schedule(request: Request, schedule_id: ScheduleId, signed_in: SignedIn) -> Response:
    return await _schedule_page(request, signed_in, schedule_id)


@router.post("/schedules/{schedule_id}")
async def change_schedule(
    request: Request, schedule_id: ScheduleId, signed_in: SignedIn
) -> Response:
    return await _change(
        request, signed_in, SCHEDULES, schedule_id, _schedule_page, "schedules", "Schedule saved."
    )


# --- escalation policies ------------------------------------------------------------------------


async def _policies_page(
    request: Request,
    viewer: Viewer,
    status_code: int = 200,
    text: str | None = None,
    **extra: Any,
) -> Response:
    async with viewer.api(request) as api:
        listed, clients = await asyncio.gather(
            api.get(POLICIES, limit=PAGE_SIZE, cursor=request.query_params.get("cursor")),
            client_choices(api),
        )
    return admin_page(
        request,
        viewer,
        "admin_policies.html",
        status_code,
        policies=listed["items"],
        next_page=next_page(request, listed["next_cursor"]),
        client_names=names_by_id(clients),
        text=_as_text(NEW_POLICY) if text is None else text,
        **extra,
    )


@router.get("/escalation-policies")
async def policies(request: Request, signed_in: SignedIn) -> Response:
    return await _policies_page(request, signed_in)


@router.post("/escalation-policies")
async def add_policy(request: Request, signed_in: SignedIn) -> Response:
    return await _add(
        request, signed_in, POLICIES, _policies_page, "escalation-policies", "Policy added."
    )


async def _policy_page(
    request: Request,
    viewer: Viewer,
    policy_id: str,
    status_code: int = 200,
    text: str | None = None,
    version: str | None = None,
    **extra: Any,
) -> Response:
    """The page; after a refused change, with the text and version that were sent."""
    async with viewer.api(request) as api:
        policy, clients, schedules = await asyncio.gather(
            api.get(f"{POLICIES}/{policy_id}"),
            client_choices(api),
            api.get(SCHEDULES, limit=200),
        )
        targets = [target for step in policy["steps"] for target in step["targets"]]
        names = await _person_names(
            api, {target["person_id"] for target in targets if target["person_id"]}
        )
    return admin_page(
        request,
        viewer,
        "admin_policy.html",
        status_code,
        policy=policy,
        client_names=names_by_id(clients),
        schedule_names=names_by_id(schedules["items"]),
        names=names,
        text=_editable(policy, POLICY_FIELDS) if text is None else text,
        version=policy["version"] if version is None else version,
        **extra,
    )


@router.get("/escalation-policies/{policy_id}")
async def policy(request: Request, policy_id: PolicyId, signed_in: SignedIn) -> Response:
    return await _policy_page(request, signed_in, policy_id)


@router.post("/escalation-policies/{policy_id}")
async def change_policy(request: Request, policy_id: PolicyId, signed_in: SignedIn) -> Response:
    return await _change(
        request,
        signed_in,
        POLICIES,
        policy_id,
        _policy_page,
        "escalation-policies",
        "Policy saved.",
    )


async def _add(
    request: Request,
    viewer: Viewer,
    collection: str,
    listing: PageAgain,
    section: str,
    done: str,
) -> Response:
    """Adds one from the form's JSON text; its page, or the listing again with the refusal."""
    fields = await checked_form(request, viewer)
    text = fields.get("body", "")
    async with viewer.api(request) as api:
        try:
            created = await send_json_text(api, "POST", collection, text)
        except Refused as refused:
            return await listing(request, viewer, refused.status, text=text, **refusal(refused))
    return back(f"/console/admin/{section}/{created['id']}", done)


async def _change(
    request: Request,
    viewer: Viewer,
    collection: str,
    item_id: str,
    item_page: PageAgain,
    section: str,
    done: str,
) -> Response:
    """Replaces one's changeable fields with the form's JSON text, at the version the person
    saw; its page again, with the refusal if any."""
    fields = await checked_form(request, viewer)
    text, version = fields.get("body", ""), fields.get("version", "")
    async with viewer.api(request) as api:
        try:
            await send_json_text(
                api, "PATCH", f"{collection}/{item_id}", text, {"If-Match": f'"{version}"'}
            )
        except Refused as refused:
            return await item_page(
                request,
                viewer,
                item_id,
                refused.status,
                text=text,
                # Stale: the page shows the item as it is now, and saving again means to
                # replace that version.
                version=None if refused.status == 412 else version,
                **refusal(refused),
            )
    return back(f"/console/admin/{section}/{item_id}", done)
