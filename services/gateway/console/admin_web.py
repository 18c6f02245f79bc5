"""What the admin pages share: which forms a page offers, a refusal shown on the form that met
it, a secret shown once, and a JSON body sent to the API as typed.

Which forms to offer comes from THE permission table (permissions.PERMISSIONS): a form the
viewer's kind has no grant for is left out. That only spares people a button that cannot work;
each call still goes through the API as the signed-in person, whose answer (a wall, someone
else's key) decides, and whose refusal the page shows.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from services.gateway.console.api import ConsoleApi, Refused
from services.gateway.console.web import Viewer, page
from services.gateway.permissions import PERMISSIONS

# Where a form may send the person back to: an admin page of this console, nowhere else.
ADMIN_PATH = re.compile(r"/console/admin(/[A-Za-z0-9_-]+)*")
# Clients listed in a form's choices (a client, a wall): the API's largest page.
CHOICES = 200


def offered(viewer: Viewer) -> frozenset[str]:
    """The actions (their values) the viewer's kind holds any grant for."""
    kind = viewer.principal.kind
    return frozenset(action.value for action, grants in PERMISSIONS.items() if kind in grants)


def admin_page(
    request: Request, viewer: Viewer, template: str, status_code: int = 200, **context: Any
) -> Response:
    return page(
        request,
        template,
        status_code,
        viewer=viewer,
        may=offered(viewer),
        notice=request.query_params.get("notice", ""),
        **context,
    )


def next_page(request: Request, cursor: str | None) -> str | None:
    """The link to a list's next page: its filters kept, with the API's cursor."""
    if not cursor:
        return None
    query = {name: value for name, value in request.query_params.items() if name != "notice"}
    return "?" + urlencode(query | {"cursor": cursor})


def refusal(refused: Refused) -> dict[str, Any]:
    """What a page shows of the API's refusal: its words and each field it names. A 404 is
    no form's mistake (the thing is gone, or never was the viewer's): that is the 404 page."""
    if refused.status == 404:
        raise refused
    return {"problem": refused.message, "errors": refused.problem.get("errors") or []}


def back(path: str, notice: str) -> Response:
    """After a change: the page again, saying what was done (post, redirect, get)."""
    return RedirectResponse(f"{path}?notice={quote(notice)}", status_code=303)


def return_path(fields: dict[str, str], default: str) -> str:
    wanted = fields.get("return_to", "")
    return wanted if ADMIN_PATH.fullmatch(wanted) else default


def shown_once(
    request: Request,
    viewer: Viewer,
    *,
    heading: str,
    secrets: list[tuple[str, str]],
    facts: list[tuple[str, str]],
    back_to: str,
    back_label: str,
) -> Response:
    """Keys or a link (label, value), on the one page that will ever show them; kept out of
    every cache."""
    response = admin_page(
        request,
        viewer,
        "admin_secret.html",
        heading=heading,
        secrets=secrets,
        facts=facts,
        back_to=back_to,
        back_label=back_label,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def send_json_text(
    api: ConsoleApi,
    method: str,
    path: str,
    text: str,
    headers: dict[str, str] | None = None,
) -> Any:
    """A textarea's JSON as the body, byte for byte: the API parses and checks it (a 400 for
    text that is not JSON, a 422 naming each field), so the console has no rules of its own."""
    response = await api.http.request(
        method,
        path,
        content=text.encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    return ConsoleApi.checked(response)


async def client_choices(api: ConsoleApi) -> list[dict[str, Any]]:
    """Clients the viewer may see, for a form's choices."""
    return list((await api.get("/v1/clients", limit=CHOICES))["items"])


def names_by_id(items: list[dict[str, Any]]) -> dict[str, str]:
    return {item["id"]: item["name"] for item in items}
