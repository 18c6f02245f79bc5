"""The board: open incidents by priority and state, with what needs attention, kept current by
server-sent events (live.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from services.gateway.console.api import ConsoleApi
from services.gateway.console.live import LiveFeed
from services.gateway.console.web import SignedIn, Viewer, page

router = APIRouter(prefix="/console", include_in_schema=False)

OPEN = ("reported", "triaged", "acknowledged", "contained")
PRIORITIES = ("P1", "P2", "P3", "P4")
SOON = timedelta(hours=4)  # a deadline or target this close is flagged
# The board asks for at most this many incidents, and for the badges of the first ones.
LISTED = 200
WITH_BADGES = 50
TARGET_MILESTONES = {
    "acknowledge_by": "acknowledged_at",
    "contain_by": "contained_at",
    "resolve_by": "resolved_at",
}


@dataclass(frozen=True)
class Filters:
    client: str
    type: str
    priority: str
    mine: bool

    @classmethod
    def of(cls, request: Request) -> Filters:
        query = request.query_params
        return cls(
            client=query.get("client", ""),
            type=query.get("type", ""),
            priority=query.get("priority", "") if query.get("priority") in PRIORITIES else "",
            mine=query.get("mine") == "1",
        )

    def keeps(self, incident: dict[str, Any], person_id: str | None) -> bool:
        if incident["status"] not in OPEN:
            return False
        if self.client and incident["client_id"] != self.client:
            return False
        if self.type and incident["type"] != self.type:
            return False
        return not self.mine or person_id in _people_of(incident)


def _people_of(incident: dict[str, Any]) -> set[str]:
    roles = incident.get("roles") or {}
    held = {holder["id"] for holder in roles.values() if holder}
    return held | {person["id"] for person in incident.get("responders") or []}


async def _badges(
    api: ConsoleApi, incident: dict[str, Any], now: datetime
) -> list[tuple[str, str]]:
    """(text, kind) of what needs attention: a page not acknowledged, a target or deadline
    passed or close, a status update overdue."""
    badges: list[tuple[str, str]] = []
    if incident["status"] in ("reported", "triaged"):
        badges.append(("not acknowledged", "bad"))
    milestones = incident.get("milestones") or {}
    for target, when in (incident.get("targets") or {}).items():
        if when is None or milestones.get(TARGET_MILESTONES[target]):
            continue
        due, what = datetime.fromisoformat(when), target.removesuffix("_by")
        if due <= now:
            badges.append((f"{what} target passed", "bad"))
        elif due - now <= SOON:
            badges.append((f"{what} due soon", "warn"))
    deadlines, timeline = await asyncio.gather(
        api.get(f"/v1/incidents/{incident['id']}/deadlines"),
        api.get(f"/v1/incidents/{incident['id']}/timeline"),
    )
    for deadline in deadlines["items"]:
        if deadline["status"] != "pending":
            continue
        due = datetime.fromisoformat(deadline["due_at"])
        if due - now <= SOON:
            badges.append(
                (f"deadline {deadline['rule']} {'missed' if due <= now else 'soon'}", "bad")
            )
    if _update_overdue(timeline["entries"]):
        badges.append(("update overdue", "warn"))
    return badges


def _update_overdue(entries: list[dict[str, Any]]) -> bool:
    """Whether notify's last reminder of an overdue update came after the last update."""
    last_reminder = last_update = ""
    for entry in entries:
        if entry["type"] == "status_update.overdue":
            last_reminder = max(last_reminder, entry["occurred_at"])
        elif entry["type"] == "status_update.posted":
            last_update = max(last_update, entry["occurred_at"])
    return last_reminder > last_update


async def board_rows(api: ConsoleApi, viewer: Viewer, filters: Filters) -> list[dict[str, Any]]:
    query = {"limit": LISTED, "priority": filters.priority, "type": filters.type}
    listed = (await api.get("/v1/incidents", **query))["items"]
    person_id = viewer.principal.person_id
    rows = [incident for incident in listed if filters.keeps(incident, person_id)]
    rows.sort(key=lambda incident: (incident["priority"] or "P9", OPEN.index(incident["status"])))
    now = datetime.now(UTC)
    if viewer.principal.is_staff:
        badges = await asyncio.gather(*(_badges(api, row, now) for row in rows[:WITH_BADGES]))
        for row, its_badges in zip(rows, badges, strict=False):
            row["badges"] = its_badges
    return rows


async def _clients(api: ConsoleApi, viewer: Viewer) -> list[dict[str, Any]]:
    if not viewer.principal.is_staff:
        return []
    return list((await api.get("/v1/clients"))["items"])


@router.get("")
async def board(request: Request, signed_in: SignedIn) -> Response:
    filters = Filters.of(request)
    async with signed_in.api(request) as api:
        rows, clients = await asyncio.gather(
            board_rows(api, signed_in, filters), _clients(api, signed_in)
        )
    return page(
        request,
        "board.html",
        viewer=signed_in,
        rows=rows,
        filters=filters,
        clients=clients,
        priorities=PRIORITIES,
    )


@router.get("/board/rows")
async def rows_fragment(request: Request, signed_in: SignedIn) -> Response:
    async with signed_in.api(request) as api:
        rows = await board_rows(api, signed_in, Filters.of(request))
    return page(request, "board_rows.html", viewer=signed_in, rows=rows)


@router.get("/live")
async def live(request: Request, signed_in: SignedIn) -> Response:
    feed: LiveFeed = request.app.state.live_feed
    return StreamingResponse(
        feed.stream(signed_in.principal.visible_clients(), request.is_disconnected),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
