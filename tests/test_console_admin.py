"""The console's admin pages through a browser-like client: an admin adds clients, people and
integrations, sets passwords, issues and revokes keys, keeps schedules and escalation policies;
a manager gets what the permission table gives managers, a client's contact the API's 403; no
form works without its session's token."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.browser import SCREENSHOTS, chromium, keep_pages_of_failure
from tests.conftest import on_backend
from tests.console_client import PASSWORD, browser, form_token, sign_in, with_password
from tests.gateway_client import Api, Person

__all__ = ["chromium"]  # the fixture, used by name
pytestmark = on_backend("sqlite", "platform")

SECRET = re.compile(r'<textarea id="secret-(\d)"[^>]*>([^<]*)</textarea>')


def secrets_shown(page: httpx.Response) -> list[str]:
    """The keys or link a page shows once, in order."""
    return [html.unescape(value) for _, value in SECRET.findall(page.text)]


def field_errors(page: httpx.Response) -> list[str]:
    """The fields a refusal shown on the page names."""
    return re.findall(r"<li><strong>([^<]+)</strong>:", page.text)


def unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]}"


class Console:
    """A signed-in person's browser, posting forms with their session's token."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.token = form_token(client.get("/console").text)

    def get(self, path: str, **params: str) -> httpx.Response:
        # httpx drops a path's own query when given params, even none.
        return self.client.get(path, params=params) if params else self.client.get(path)

    def post(self, path: str, **fields: str) -> httpx.Response:
        return self.client.post(path, data={"form_token": self.token, **fields})


@contextmanager
def signed_in(api: Api, person: Person) -> Iterator[Console]:
    with_password(api, person)
    with browser(api) as client:
        assert sign_in(client, person.email).url.path == "/console"
        yield Console(client)


@pytest.fixture
def admin(api: Api) -> Iterator[Console]:
    with signed_in(api, api.new_person("admin")) as console:
        yield console


def ok(response: httpx.Response) -> Any:
    assert response.is_success, response.text
    return response.json()


def test_the_index_links_every_section_for_an_admin(admin: Console) -> None:
    index = admin.get("/console/admin")
    assert index.status_code == 200
    for section in ("clients", "people", "keys", "schedules", "escalation-policies"):
        assert f'href="/console/admin/{section}"' in index.text
    assert 'href="/console/admin/integrations"' in index.text


def test_an_admin_adds_a_client_and_issues_its_system_key_shown_once(
    api: Api, admin: Console
) -> None:
    name = unique("Harbour Freight")
    added = admin.post("/console/admin/clients", name=name)
    assert added.status_code == 200 and added.url.path == "/console/admin/clients"
    assert f"Client {name} added." in added.text
    created = [c for c in api.pages("/v1/clients", api.admin) if c["name"] == name]
    assert len(created) == 1
    client_id = created[0]["id"]

    refused = admin.post("/console/admin/clients", name="")  # the API's 422, on the form
    assert refused.status_code == 422 and field_errors(refused) == ["name"]

    issued = admin.post(f"/console/admin/clients/{client_id}/keys", role="client")
    assert issued.status_code == 200
    assert "it will not be shown again" in issued.text
    assert issued.headers["cache-control"] == "no-store"
    [key] = secrets_shown(issued)
    # The key is its client's system: it sees its own client, and no other.
    listed = ok(api.http.get("/v1/clients", headers={"Authorization": f"Bearer {key}"}))
    assert [item["id"] for item in listed["items"]] == [client_id]
    # Listed from then on by its prefix, never itself.
    keys = admin.get("/console/admin/keys", client_id=client_id)
    assert key[:12] in keys.text and key not in keys.text

    # An operator key (role admin) is for the firm's own client only: the API says so here.
    wrong = admin.post(f"/console/admin/clients/{client_id}/keys", role="admin")
    assert wrong.status_code == 422 and field_errors(wrong) == ["role"]
    assert len(api.pages("/v1/api-keys", api.admin, client_id=client_id)) == 1


def test_an_admin_adds_a_person_sets_their_password_and_they_sign_in(
    api: Api, admin: Console
) -> None:
    client = api.new_client(unique("Quayside"))
    email = f"contact-{uuid.uuid4().hex[:10]}@client.example"

    # Missing what a contact needs: the API's refusal names the field, nobody is added.
    refused = admin.post(
        "/console/admin/people", name="Nell Contact", email=email, role="client", wall="all"
    )
    assert refused.status_code == 422 and "client_id" in refused.text
    assert email in refused.text  # what was typed is kept
    assert not [p for p in api.pages("/v1/people", api.admin) if p["email"] == email]

    added = admin.post(
        "/console/admin/people",
        name="Nell Contact",
        email=email,
        role="client",
        client_id=client.id,
        wall="all",
    )
    assert added.status_code == 200 and "Nell Contact added." in added.text
    person_id = added.url.path.rsplit("/", 1)[1]
    person = ok(api.http.get(f"/v1/people/{person_id}", headers=api.admin.headers))
    assert (person["role"], person["client_id"], person["email"]) == ("client", client.id, email)

    page = f"/console/admin/people/{person_id}"
    mismatch = admin.post(f"{page}/password", password=PASSWORD, confirmation="something else")
    assert mismatch.status_code == 422
    short = admin.post(f"{page}/password", password="too short", confirmation="too short")
    assert short.status_code == 422 and field_errors(short) == ["password"]
    with browser(api) as client_browser:
        assert sign_in(client_browser, email).status_code == 401  # no password yet

    done = admin.post(f"{page}/password", password=PASSWORD, confirmation=PASSWORD)
    assert done.status_code == 200 and "Password set." in done.text
    with browser(api) as client_browser:
        assert sign_in(client_browser, email).url.path == "/console"


def test_a_walled_responder_a_sign_in_link_a_personal_key_and_deactivating(
    api: Api, admin: Console
) -> None:
    inside, outside = api.new_client(unique("Inside")), api.new_client(unique("Outside"))
    email = f"responder-{uuid.uuid4().hex[:10]}@firm.example"
    added = admin.post(
        "/console/admin/people",
        name="Wally Walled",
        email=email,
        role="responder",
        wall="some",
        **{f"wall.{inside.id}": "on"},
    )
    assert added.status_code == 200, added.text
    person_id = added.url.path.rsplit("/", 1)[1]
    person = ok(api.http.get(f"/v1/people/{person_id}", headers=api.admin.headers))
    assert person["clients"] == [inside.id] and outside.id not in person["clients"]

    page = f"/console/admin/people/{person_id}"
    link = admin.post(f"{page}/sign-in-link")
    assert link.status_code == 200 and "it will not be shown again" in link.text
    [url] = secrets_shown(link)
    # The link names the address the admin used, not the console's in-process one.
    assert url.startswith(f"{api.platform.gateway_url}/console/welcome/")
    with browser(api) as fresh:
        assert fresh.get(url).status_code == 200

    issued = admin.post(f"{page}/keys")
    [key] = secrets_shown(issued)
    bearer = {"Authorization": f"Bearer {key}"}
    assert ok(api.http.get("/v1/api-keys", headers=bearer))["items"][0]["owner"]["id"] == (
        person_id
    )
    assert key[:12] in admin.get(page).text

    off = admin.post(f"{page}/active", active="false")
    assert off.status_code == 200 and "deactivated" in off.text
    assert api.http.get("/v1/api-keys", headers=bearer).status_code == 401
    on = admin.post(f"{page}/active", active="true")
    assert on.status_code == 200 and "Reactivated." in on.text
    assert api.http.get("/v1/api-keys", headers=bearer).status_code == 200


def test_people_are_listed_a_page_at_a_time(api: Api, admin: Console) -> None:
    client = api.new_client(unique("Paged"))
    for _ in range(51):  # one more than a page
        api.http.post(
            "/v1/people",
            json={
                "name": unique("Paged contact"),
                "email": f"paged-{uuid.uuid4().hex[:10]}@client.example",
                "role": "client",
                "client_id": client.id,
            },
            headers=api.admin.headers,
        ).raise_for_status()
    first = admin.get("/console/admin/people", client_id=client.id)
    shown = first.text.count("Paged contact")
    assert shown == 50
    found = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert found is not None
    second = admin.get("/console/admin/people" + html.unescape(found.group(1)))
    assert second.text.count("Paged contact") == 1
    assert 'rel="next"' not in second.text


def test_an_admin_lists_and_revokes_a_key(api: Api, admin: Console) -> None:
    person = api.new_person("responder")
    listed = admin.get("/console/admin/keys", person_id=person.person_id)
    assert person.key_id in listed.text
    revoked = admin.post(f"/console/admin/keys/{person.key_id}/revoke")
    assert revoked.status_code == 200 and "Key revoked." in revoked.text
    assert api.http.get("/v1/api-keys", headers=person.headers).status_code == 401
    keys = api.pages("/v1/api-keys", api.admin, person_id=person.person_id)
    assert [key["revoked_at"] is not None for key in keys] == [True]


def integration_row(page: httpx.Response, name: str) -> str:
    found = re.search(rf"<tr>\s*<th scope=\"row\">{re.escape(name)}.*?</tr>", page.text, re.S)
    assert found is not None, f"no row for {name}"
    return found.group(0)


def test_an_admin_adds_rotates_and_disables_an_integration(api: Api, admin: Console) -> None:
    client = api.new_client(unique("Monitored"))
    name = unique("Prometheus")

    # A heartbeat without its interval: the API's field error, and nothing added.
    refused = admin.post(
        "/console/admin/integrations", client_id=client.id, kind="heartbeat", name=name
    )
    assert refused.status_code == 422 and "interval_seconds" in refused.text
    assert api.pages("/v1/integrations", api.admin, client_id=client.id) == []

    added = admin.post(
        "/console/admin/integrations",
        client_id=client.id,
        kind="events_v2",
        name=name,
        service="checkout",
        incident_type="service_outage",
    )
    assert added.status_code == 200 and "it will not be shown again" in added.text
    assert added.headers["cache-control"] == "no-store"
    [key] = secrets_shown(added)
    [made] = api.pages("/v1/integrations", api.admin, client_id=client.id)
    assert (made["name"], made["service"], made["key_prefix"]) == (name, "checkout", key[:8])

    rotated = admin.post(f"/console/admin/integrations/{made['id']}/rotate")
    [new_key] = secrets_shown(rotated)
    assert new_key != key
    [after] = api.pages("/v1/integrations", api.admin, client_id=client.id)
    assert after["key_prefix"] == new_key[:8] and after["key_rotated_at"] is not None

    disabled = admin.post(f"/console/admin/integrations/{made['id']}/disable")
    assert disabled.status_code == 200 and f"Integration {name} disabled" in disabled.text
    assert "disabled" in integration_row(disabled, name)
    [gone] = api.pages("/v1/integrations", api.admin, client_id=client.id)
    assert gone["disabled_at"] is not None


def test_an_email_integration_shows_its_address_once(api: Api, admin: Console) -> None:
    client = api.new_client(unique("Mailing"))
    added = admin.post(
        "/console/admin/integrations",
        client_id=client.id,
        kind="email",
        name=unique("Mail alerts"),
        allowed_senders="ops@client.example, @alerts.client.example",
    )
    assert added.status_code == 200, added.text
    key, address = secrets_shown(added)
    assert address.startswith(f"{key}@")
    [made] = api.pages("/v1/integrations", api.admin, client_id=client.id)
    assert made["allowed_senders"] == ["ops@client.example", "@alerts.client.example"]


def schedule_body(participants: list[str], **overrides: Any) -> str:
    body = {
        "name": unique("Console rota"),
        "timezone": "Europe/London",
        "layers": [
            {
                "participants": participants,
                "rotation": "weekly",
                "handoff_time": "09:00",
                "starts_at": "2020-01-06T09:00:00Z",  # long since started: someone is on
            }
        ],
        "overrides": [],
    } | overrides
    return json.dumps(body)


def test_an_admin_keeps_a_schedule_as_json_and_sees_who_is_on_call(
    api: Api, admin: Console
) -> None:
    ann_name = unique("Ann On-call")
    ann = api.new_person("responder", name=ann_name)
    body = schedule_body([ann.person_id])
    name = json.loads(body)["name"]

    not_json = admin.post("/console/admin/schedules", body="{not json")
    assert not_json.status_code == 400 and "not valid JSON" in not_json.text
    assert "{not json" in not_json.text  # the text is kept to correct
    bad_time = admin.post(
        "/console/admin/schedules",
        body=body.replace('"handoff_time": "09:00"', '"handoff_time": "25:61"'),
    )
    assert bad_time.status_code == 422
    assert field_errors(bad_time) == ["layers.0.handoff_time"]
    assert not [s for s in api.pages("/v1/schedules", api.admin) if s["name"] == name]

    added = admin.post("/console/admin/schedules", body=body)
    assert added.status_code == 200 and "Schedule added." in added.text
    path = added.url.path
    on_call = re.search(r'<dd id="on-call-now">(.*?)</dd>', added.text, re.S)
    assert on_call is not None and ann_name in on_call.group(1)
    listed = admin.get("/console/admin/schedules")
    assert name in listed.text

    schedule_id = path.rsplit("/", 1)[1]
    version = ok(api.http.get(f"/v1/schedules/{schedule_id}", headers=api.admin.headers))["version"]
    renamed = json.dumps(json.loads(body) | {"name": name + " renamed"})
    stale = admin.post(path, body=renamed, version=str(version - 1 or 99))
    assert stale.status_code == 412
    saved = admin.post(path, body=renamed, version=str(version))
    assert saved.status_code == 200 and "Schedule saved." in saved.text
    now = ok(api.http.get(f"/v1/schedules/{schedule_id}", headers=api.admin.headers))
    assert now["name"] == name + " renamed" and now["version"] == version + 1


def test_an_admin_adds_an_escalation_policy_as_json_and_reads_its_steps(
    api: Api, admin: Console
) -> None:
    client = api.new_client(unique("Escalated"))
    name = unique("Console policy")
    body: dict[str, Any] = {
        "name": name,
        "client_id": client.id,
        "priorities": ["P1"],
        "steps": [{"targets": [{"schedule_id": "default"}], "after_minutes": 10}],
    }
    wrong = admin.post(
        "/console/admin/escalation-policies",
        body=json.dumps(body | {"steps": [{"targets": [{}], "after_minutes": 10}]}),
    )
    assert wrong.status_code == 422 and field_errors(wrong) == ["steps.0.targets.0"]

    added = admin.post("/console/admin/escalation-policies", body=json.dumps(body))
    assert added.status_code == 200 and "Policy added." in added.text
    assert "whoever is on call on" in added.text
    assert client.id not in added.text.split("<h1>")[1].split("</dl>")[0]  # named, not its id
    listed = admin.get("/console/admin/escalation-policies")
    assert name in listed.text
    stored = [
        policy
        for policy in api.pages("/v1/escalation-policies", api.admin, client_id=client.id)
        if policy["name"] == name
    ]
    assert len(stored) == 1 and stored[0]["steps"][0]["after_minutes"] == 10


def test_a_walled_manager_gets_what_managers_may(api: Api) -> None:
    inside, outside = api.new_client(unique("Managed")), api.new_client(unique("Walled off"))
    manager = api.new_person("manager", clients=[inside.id])
    with signed_in(api, manager) as console:
        index = console.get("/console/admin")
        assert index.status_code == 200
        assert 'href="/console/admin/integrations"' in index.text
        assert 'href="/console/admin/schedules"' in index.text

        clients = console.get("/console/admin/clients")
        assert inside.id in clients.text and outside.id not in clients.text
        assert "Add a client" not in clients.text and "Issue a key" not in clients.text
        name = unique("Not allowed")
        refused = console.post("/console/admin/clients", name=name)
        assert refused.status_code == 403 and "client_manage is not allowed" in refused.text
        assert not [c for c in api.pages("/v1/clients", api.admin) if c["name"] == name]

        people = console.get("/console/admin/people")
        assert people.status_code == 200 and "Add a person" not in people.text
        someone = api.new_person("responder")
        person = console.get(f"/console/admin/people/{someone.person_id}")
        assert "Set password" not in person.text and "Deactivate" not in person.text
        assert console.post(f"/console/admin/people/{someone.person_id}/active").status_code == (
            403
        )

        keys = console.get("/console/admin/keys")
        assert manager.key_id in keys.text and someone.key_id not in keys.text

        # Integrations of the clients inside the wall; the one outside is not offered.
        integrations = console.get("/console/admin/integrations")
        assert f'value="{inside.id}"' in integrations.text
        assert f'value="{outside.id}"' not in integrations.text
        added = console.post(
            "/console/admin/integrations", client_id=inside.id, kind="events_v2", name="Grafana"
        )
        assert added.status_code == 200 and len(secrets_shown(added)) == 1
        beyond = console.post(
            "/console/admin/integrations", client_id=outside.id, kind="events_v2", name="No"
        )
        assert beyond.status_code == 404
        assert api.pages("/v1/integrations", api.admin, client_id=outside.id) == []

        schedules = console.get("/console/admin/schedules")
        assert schedules.status_code == 200 and "Add schedule" in schedules.text
        policies = console.get("/console/admin/escalation-policies")
        assert policies.status_code == 200 and "Add policy" in policies.text


def test_a_responder_reads_schedules_but_is_offered_no_changes(api: Api) -> None:
    with signed_in(api, api.new_person("responder")) as console:
        index = console.get("/console/admin")
        assert 'href="/console/admin/integrations"' not in index.text
        schedules = console.get("/console/admin/schedules")
        assert schedules.status_code == 200 and "Add schedule" not in schedules.text
        default = console.get("/console/admin/schedules/default")
        assert default.status_code == 200 and "Save schedule" not in default.text
        assert console.get("/console/admin/integrations").status_code == 403


def test_a_client_contact_gets_the_apis_403(api: Api) -> None:
    client = api.new_client(unique("Contacted"))
    contact = api.new_person("client", client_id=client.id)
    with signed_in(api, contact) as console:
        for path in ("/console/admin", "/console/admin/people", "/console/admin/integrations"):
            refused = console.get(path)
            assert refused.status_code == 403, path
            assert "is not allowed for client_contact" in refused.text
        refused = console.post(
            "/console/admin/people", name="X", email="x@y.example", role="client"
        )
        assert refused.status_code == 403


def test_no_admin_form_works_without_its_sessions_token(api: Api, admin: Console) -> None:
    client = api.new_client(unique("Forged"))
    person = api.new_person("responder")
    integration = ok(
        api.http.post(
            "/v1/integrations",
            json={"client_id": client.id, "kind": "events_v2", "name": "Forged"},
            headers=api.admin.headers,
        )
    )
    schedule = ok(
        api.http.post(
            "/v1/schedules",
            content=schedule_body([person.person_id]),
            headers={**api.admin.headers, "Content-Type": "application/json"},
        )
    )
    policy_body = {
        "name": "Forged policy",
        "client_id": client.id,
        "priorities": ["P2"],
        "steps": [{"targets": [{"schedule_id": "default"}], "after_minutes": 5}],
    }
    policy = ok(
        api.http.post("/v1/escalation-policies", json=policy_body, headers=api.admin.headers)
    )
    email = f"forged-{uuid.uuid4().hex[:10]}@firm.example"
    forms: list[tuple[str, dict[str, str]]] = [
        ("/console/admin/clients", {"name": "Forged client"}),
        (f"/console/admin/clients/{client.id}/keys", {"role": "client"}),
        ("/console/admin/people", {"name": "F", "email": email, "role": "responder"}),
        (f"/console/admin/people/{person.person_id}/active", {"active": "false"}),
        (
            f"/console/admin/people/{person.person_id}/password",
            {"password": PASSWORD, "confirmation": PASSWORD},
        ),
        (f"/console/admin/people/{person.person_id}/sign-in-link", {}),
        (f"/console/admin/people/{person.person_id}/keys", {}),
        (f"/console/admin/keys/{person.key_id}/revoke", {}),
        ("/console/admin/schedules", {"body": schedule_body([], name="Forged rota")}),
        (
            f"/console/admin/schedules/{schedule['id']}",
            {"body": json.dumps({"name": "Forged"}), "version": str(schedule["version"])},
        ),
        ("/console/admin/escalation-policies", {"body": json.dumps(policy_body)}),
        (
            f"/console/admin/escalation-policies/{policy['id']}",
            {"body": json.dumps({"name": "Forged"}), "version": str(policy["version"])},
        ),
        ("/console/admin/integrations", {"client_id": client.id, "kind": "events_v2", "name": "F"}),
        (f"/console/admin/integrations/{integration['id']}/rotate", {}),
        (f"/console/admin/integrations/{integration['id']}/disable", {}),
    ]
    for path, fields in forms:
        for token in ({}, {"form_token": "not-this-sessions"}):
            forged = admin.client.post(path, data=fields | token)
            assert forged.status_code == 400, (path, token, forged.text)
            # (No fields at all is no form: refused as that.)
            assert ("not from your session" if fields | token else "not a form") in forged.text

    assert not [c for c in api.pages("/v1/clients", api.admin) if c["name"] == "Forged client"]
    assert len(api.pages("/v1/api-keys", api.admin, client_id=client.id)) == 1
    assert not [p for p in api.pages("/v1/people", api.admin) if p["email"] == email]
    assert (
        ok(api.http.get("/v1/api-keys", headers=person.headers))["items"][0]["revoked_at"] is None
    )
    assert len(api.pages("/v1/api-keys", api.admin, person_id=person.person_id)) == 1
    with browser(api) as fresh:
        assert sign_in(fresh, person.email).status_code == 401  # no password was set
    assert ok(api.http.get(f"/v1/schedules/{schedule['id']}", headers=api.admin.headers)) == (
        schedule
    )
    after = ok(api.http.get(f"/v1/escalation-policies/{policy['id']}", headers=api.admin.headers))
    assert after == policy
    [still] = api.pages("/v1/integrations", api.admin, client_id=client.id)
    assert still["key_prefix"] == integration["key_prefix"] and still["disabled_at"] is None
    assert not [s for s in api.pages("/v1/schedules", api.admin) if s["name"] == "Forged rota"]


# --- in a real browser --------------------------------------------------------------------------

PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture
def phone(chromium: Browser, api: Api, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a phone-sized browser context of its own."""
    context = chromium.new_context(base_url=api.platform.gateway_url, viewport=PHONE)
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    keep_pages_of_failure(request, [page])
    context.close()


def test_an_admin_adds_a_person_from_a_phone_with_the_keyboard(api: Api, phone: Page) -> None:
    admin = with_password(api, api.new_person("admin"))
    client_name = unique("Browser client")
    client = api.new_client(client_name)
    email = f"bea-{uuid.uuid4().hex[:10]}@client.example"
    phone.goto("/console/sign-in")
    phone.get_by_label("Email").fill(admin.email)
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_label("Password").press("Enter")
    phone.get_by_role("link", name="Admin").click()
    phone.get_by_role("link", name="People").click()

    form = phone.get_by_role("region", name="Add a person")
    form.get_by_label("Name").fill("Bea Browser")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Role").select_option("client")
    form.get_by_label("Their client").select_option(label=client_name)
    form.get_by_role("button", name="Add person").focus()
    phone.keyboard.press("Enter")

    expect(phone.get_by_role("heading", level=1)).to_have_text("Bea Browser")
    expect(phone.get_by_role("status")).to_contain_text("Bea Browser added.")
    phone.get_by_label("Set a password").fill(PASSWORD)
    phone.get_by_label("The same again").fill(PASSWORD)
    phone.get_by_label("The same again").press("Enter")
    expect(phone.get_by_role("status")).to_contain_text("Password set.")
    # Readable on a phone: nothing makes the page itself scroll sideways.
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    phone.screenshot(path=str(SCREENSHOTS / "console-admin-person.png"), full_page=True)

    [person] = [p for p in api.pages("/v1/people", api.admin) if p["email"] == email]
    assert (person["role"], person["client_id"]) == ("client", client.id)
    with browser(api) as fresh:
        assert sign_in(fresh, email).url.path == "/console"
