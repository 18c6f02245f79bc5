"""Who may open which console page: the console asks the API as the signed-in person, so each
page answers as that person's API calls do. Another client's incident is a 404; a page the
person may not use is the API's refusal, as a page; no session, the sign-in page.

Every console route is listed here (test_every_console_route_is_listed), as the API's are in
test_authorisation_matrix.py."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx
import pytest
from fastapi.routing import APIRoute

from firebreak.settings import Settings
from services.gateway.app import create_app
from tests.conftest import on_backend
from tests.console_client import browser, form_token, hidden_field, sign_in, with_password
from tests.gateway_client import Api, Person, eventually

KINDS = ("anonymous", "client_a", "client_b", "responder", "walled", "manager", "admin")
SIGN_IN = 303  # the sign-in page, where a request without a session is sent

# fmt: off
EXPECTED: dict[str, tuple[int, ...]] = {
    # path                                     anon  A    B    resp wall mngr admn
    "/console":                               (SIGN_IN, 200, 200, 200, 200, 200, 200),
    "/console/board/rows":                    (SIGN_IN, 200, 200, 200, 200, 200, 200),
    "/console/report":                        (SIGN_IN, 200, 200, 200, 200, 200, 200),
    "/console/incidents/{incident_id}":       (SIGN_IN, 200, 404, 200, 404, 200, 200),
    "/console/incidents/{incident_id}/report": (SIGN_IN, 200, 404, 200, 404, 200, 200),
    # The trace is the firm's: a client's view of an incident has none.
    "/console/incidents/{incident_id}/trace": (SIGN_IN, 404, 404, 200, 404, 200, 200),
}
# fmt: on
# Routes whose access is shown elsewhere: sign-in and its link (test_console_sign_in.py), the
# event stream (never ends: test_console_live.py, and the browser test), and the forms, which
# carry the session's form token (their refusals are the API's: tested below and in the
# browser test).
ELSEWHERE = {
    "/console/sign-in",
    "/console/sign-out",
    "/console/welcome/{token}",
    "/console/live",
}
# The admin pages, by role: tests/test_console_admin.py.
ELSEWHERE_PREFIXES = ("/console/admin",)


@dataclass
class World:
    api: Api
    incident_id: str
    reference: str
    clients: dict[str, httpx.Client]
    people: dict[str, Person]


@pytest.fixture(scope="module")
def world(api: Api) -> World:
    client_a, client_b = api.new_client("Console A LLP"), api.new_client("Console B LLP")
    people: dict[str, Person] = {
        "client_a": api.new_person("client", client_id=client_a.id),
        "client_b": api.new_person("client", client_id=client_b.id),
        "responder": api.new_person("responder"),
        "walled": api.new_person("responder", clients=[client_b.id]),
        "manager": api.new_person("manager"),
        "admin": api.new_person("admin"),
    }
    created = api.report(client_a, title=f"Console access {uuid.uuid4().hex[:6]}")
    assert created.status_code == 201, created.text
    incident_id = created.json()["id"]
    eventually(lambda: api.incident(api.admin, incident_id)["status"] == "triaged")
    clients = {"anonymous": browser(api)}
    for kind, person in people.items():
        clients[kind] = browser(api)
        sign_in(clients[kind], with_password(api, person).email)
    return World(api, incident_id, created.json()["reference"], clients, people)


@on_backend("sqlite", "platform")
@pytest.mark.parametrize("path", list(EXPECTED))
@pytest.mark.parametrize("kind", KINDS)
def test_who_may_open_which_page(world: World, path: str, kind: str) -> None:
    url = path.format(incident_id=world.incident_id)
    response = world.clients[kind].get(url, follow_redirects=False)
    expected = EXPECTED[path][KINDS.index(kind)]
    assert response.status_code == expected, f"{url} as {kind}: {response.text[:300]}"
    if expected == SIGN_IN:
        assert response.headers["location"] == "/console/sign-in"
    if expected == 404:
        # As for an incident that does not exist: nothing of it shows.
        assert "Console access" not in response.text  # its title


@on_backend("sqlite", "platform")
def test_a_board_lists_only_what_its_viewer_may_see(world: World) -> None:
    # By the incident's id: references are per client, and client B has an INC-…-000001 too.
    for kind, sees in (("client_a", True), ("client_b", False), ("walled", False)):
        rows = world.clients[kind].get("/console/board/rows").text
        assert (world.incident_id in rows) is sees, kind


@on_backend("sqlite", "platform")
def test_the_trace_page_draws_the_incidents_whole_trace(world: World) -> None:
    path = f"/console/incidents/{world.incident_id}/trace"

    def drawn() -> str | None:
        html = world.clients["manager"].get(path).text
        return html if all(f"<td>{name}</td>" in html for name in SERVICES) else None

    html = eventually(drawn)
    assert "on the bus" in html  # the hop from intake's publish to triage's consume
    assert 'class="waterfall"' in html


SERVICES = ("firebreak-gateway", "firebreak-intake", "firebreak-triage", "firebreak-notify")


@on_backend("sqlite", "platform")
def test_the_board_filters_by_client_priority_type_and_mine(world: World) -> None:
    incident = world.api.incident(world.api.admin, world.incident_id)
    admin = world.clients["admin"]

    def listed(**query: str) -> bool:
        return world.incident_id in admin.get("/console/board/rows", params=query).text

    assert listed() and listed(client=incident["client_id"]) and not listed(client="operator")
    other_priority = "P4" if incident["priority"] != "P4" else "P1"
    assert listed(priority=incident["priority"]) and not listed(priority=other_priority)
    assert listed(type=incident["type"]) and not listed(type="near_miss")
    assert not listed(mine="1")  # the admin holds no role in it
    manager = world.clients["manager"]
    token = form_token(manager.get("/console").text)
    path = f"/console/incidents/{world.incident_id}/roles/scribe"
    admin_id = world.people["admin"].person_id
    assert manager.post(path, data={"form_token": token, "person_id": admin_id}).status_code == 200
    eventually(lambda: listed(mine="1"))  # now its scribe, once intake's copy says so


@on_backend("sqlite", "platform")
def test_a_contact_reports_from_the_portal_once_however_often_the_form_is_sent(
    world: World,
) -> None:
    client = world.clients["client_a"]
    form = client.get("/console/report").text
    fields = {
        "form_token": form_token(form),
        "idempotency_key": hidden_field(form, "idempotency_key"),
        "title": "Printer on fire",
        "description": "Smoke from the third-floor printer",
        "type": "accident",
        "impact": "minor",
        "urgency": "high",
    }
    empty = client.post("/console/report", data=fields | {"title": " "})
    assert empty.status_code == 422 and "title" in empty.text
    first = client.post("/console/report", data=fields)
    again = client.post("/console/report", data=fields)  # sent twice: one incident
    assert first.status_code == again.status_code == 200
    assert first.url.path == again.url.path and first.url.path.startswith("/console/incidents/")
    assert "Printer on fire" in first.text and "Reported as" in first.text
    incident_id = first.url.path.rsplit("/", 1)[1]
    reported = world.api.incident(world.api.admin, incident_id)
    assert reported["reporter"]["name"].startswith("Client")  # the contact, by their name


@on_backend("sqlite", "platform")
def test_a_form_is_answered_as_the_api_answers_its_sender(world: World) -> None:
    path = f"/console/incidents/{world.incident_id}/commands/acknowledge"
    # Commands are staff's: to a client, as to another client, they do not exist (404).
    for kind, expected in (("client_a", 404), ("client_b", 404), ("walled", 404)):
        client = world.clients[kind]
        token = form_token(client.get("/console").text)
        refused = client.post(path, data={"form_token": token})
        assert refused.status_code == expected, (kind, refused.text[:300])
        assert "Console access" not in refused.text  # the incident's title
    assert world.api.incident(world.api.admin, world.incident_id)["status"] == "triaged"


def console_routes() -> dict[str, set[str]]:
    """Each console route's path and methods, as the gateway's app declares them."""
    app = create_app(Settings(admin_key="x" * 32))
    return {
        route.path: route.methods or set()
        for route in app.routes
        if isinstance(route, APIRoute) and route.path.startswith("/console")
    }


def test_every_console_page_is_listed() -> None:
    pages = {path for path, methods in console_routes().items() if "GET" in methods}
    unlisted = {
        page
        for page in pages - set(EXPECTED) - ELSEWHERE
        if not page.startswith(ELSEWHERE_PREFIXES)
    }
    assert unlisted == set(), "add each new page to EXPECTED"


@on_backend("sqlite", "platform")
def test_every_form_without_its_token_is_refused_and_changes_nothing(world: World) -> None:
    client = world.clients["manager"]
    before = world.api.incident(world.api.admin, world.incident_id)
    for path, methods in console_routes().items():
        if "POST" not in methods:
            continue
        url = re.sub(r"\{[a-z_]+\}", world.incident_id, path)
        response = client.post(url, data={"status": "done"}, follow_redirects=False)
        assert response.status_code == 400, f"{path}: {response.status_code}"
    after = world.api.incident(world.api.admin, world.incident_id)
    assert after["version"] == before["version"]
