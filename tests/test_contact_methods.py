"""Contact methods against the real processes: adding, listing and deleting them (validation and
who may), and pages that try them in order, against a real SMTP server (aiosmtpd) and a real
HTTP receiver that checks the Standard Webhooks signature as a receiver would. Then every
delivery, failed ones with their error, in GET /v1/incidents/{id}/notifications.

A person's own email is always their first method. The SMTP server refuses (550, permanent)
every address at `bounce.example`, and the HTTP receiver answers each path with the status the
test set for it, so which method fails is decided up front: nothing depends on timing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook

from firebreak.launcher import Platform, free_port
from tests.gateway_client import Api, Person, Tenant, eventually
from tests.lifecycle_client import ok
from tests.mail import BOUNCE, Mailbox
from tests.test_bad_input import assert_problem


def a_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def methods_path(person_id: str) -> str:
    return f"/v1/people/{person_id}/contact-methods"


def add(api: Api, caller: Tenant, person_id: str, **body: Any) -> Any:
    return api.http.post(methods_path(person_id), json=body, headers=caller.headers)


def listed(api: Api, caller: Tenant, person_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(api.http.get(methods_path(person_id), headers=caller.headers))[
        "items"
    ]
    return items


# --- Keeping contact methods ----------------------------------------------------------------


def test_a_person_adds_lists_and_deletes_their_contact_methods(api: Api) -> None:
    person = api.new_person("responder")
    secret = a_secret()
    webhook = add(
        api,
        person,
        person.person_id,
        kind="webhook",
        address="https://hooks.firm.example/pager",
        secret=secret,
    )
    assert webhook.status_code == 201, webhook.text
    assert secret not in webhook.text
    assert webhook.json() | {"id": "", "created_at": ""} == {
        "id": "",
        "kind": "webhook",
        "address": "https://hooks.firm.example/pager",
        "has_secret": True,
        "implicit": False,
        "created_at": "",
    }
    slack_url = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"
    slack = ok(add(api, person, person.person_id, kind="slack", address=slack_url))
    backup = ok(add(api, person, person.person_id, kind="email", address="ada@home.example"))

    items = listed(api, person, person.person_id)
    # Their email first, implicitly; then the methods in the order added.
    assert [item["id"] for item in items] == [
        "email",
        webhook.json()["id"],
        slack["id"],
        backup["id"],
    ]
    assert items[0] == {
        "id": "email",
        "kind": "email",
        "address": person.email,
        "has_secret": False,
        "implicit": True,
        "created_at": None,
    }
    # A Slack URL is a secret: only its scheme and host are shown, here and after adding.
    assert slack["address"] == items[2]["address"] == "https://hooks.slack.com/…"
    response = api.http.get(methods_path(person.person_id), headers=person.headers)
    assert secret not in response.text and "XXXXXXXX" not in response.text

    deleted = api.http.delete(
        f"{methods_path(person.person_id)}/{slack['id']}", headers=person.headers
    )
    assert deleted.status_code == 204, deleted.text
    assert [item["id"] for item in listed(api, person, person.person_id)] == [
        "email",
        webhook.json()["id"],
        backup["id"],
    ]
    # Added after a deletion: still last.
    teams = ok(add(api, person, person.person_id, kind="teams", address="https://x.example/t/1"))
    assert listed(api, person, person.person_id)[-1]["id"] == teams["id"]

    assert_problem(
        api.http.delete(f"{methods_path(person.person_id)}/email", headers=person.headers), 409
    )
    assert_problem(
        api.http.delete(f"{methods_path(person.person_id)}/{uuid.uuid4()}", headers=person.headers),
        404,
    )
    # Someone else's method is not one of this person's.
    other = api.new_person("responder")
    theirs = ok(add(api, other, other.person_id, kind="email", address="bo@home.example"))
    assert_problem(
        api.http.delete(
            f"{methods_path(person.person_id)}/{theirs['id']}", headers=api.admin.headers
        ),
        404,
    )


def test_the_implicit_email_follows_the_person(api: Api) -> None:
    person = api.new_person("responder")
    new_email = f"renamed-{uuid.uuid4().hex[:8]}@firm.example"
    ok(
        api.http.patch(
            f"/v1/people/{person.person_id}", json={"email": new_email}, headers=api.admin.headers
        )
    )
    eventually(lambda: listed(api, person, person.person_id)[0]["address"] == new_email)
    # Notify knows it now: the person's own email, in any case, is already their first method.
    assert_problem(add(api, person, person.person_id, kind="email", address=new_email.upper()), 409)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "webhook", "address": "https://hooks.firm.example/x"}, "secret"),
        (
            {"kind": "webhook", "address": "https://h.example/x", "secret": "whsec_c2hvcnQ="},
            "secret",
        ),
        ({"kind": "webhook", "address": "https://h.example/x", "secret": "not-whsec"}, "secret"),
        ({"kind": "webhook", "address": "ftp://h.example/x", "secret": a_secret()}, "address"),
        ({"kind": "slack", "address": "https://hooks.slack.com/x", "secret": a_secret()}, "secret"),
        ({"kind": "slack", "address": "hooks.slack.com/services/x"}, "address"),
        ({"kind": "teams", "address": "https:///no-host"}, "address"),
        ({"kind": "email", "address": "not an address"}, "address"),
        ({"kind": "pager", "address": "+44 20 7946 0000"}, "kind"),
        ({"kind": "email", "address": ""}, "address"),
        ({"kind": "email"}, "address"),
        ({"kind": "email", "address": "a@b.example", "extra": 1}, "extra"),
    ],
)
def test_a_method_that_cannot_be_delivered_to_is_a_422_naming_the_field(
    api: Api, body: dict[str, Any], field: str
) -> None:
    person = api.new_person("responder")
    assert_problem(add(api, person, person.person_id, **body), 422, field)
    assert [item["id"] for item in listed(api, person, person.person_id)] == ["email"]


def test_the_same_method_twice_is_a_409(api: Api) -> None:
    person = api.new_person("responder")
    ok(add(api, person, person.person_id, kind="email", address="Ada@Home.example"))
    assert_problem(
        add(api, person, person.person_id, kind="email", address="ada@home.example"), 409
    )
    url = "https://hooks.slack.com/services/T1/B1/abc"
    ok(add(api, person, person.person_id, kind="slack", address=url))
    assert_problem(add(api, person, person.person_id, kind="slack", address=url), 409)
    # The same URL as another kind is another method.
    ok(add(api, person, person.person_id, kind="teams", address=url))


def test_who_may_read_and_change_contact_methods(api: Api) -> None:
    client = api.new_client("Contacts LLP")
    person = api.new_person("responder")
    other = api.new_person("responder")
    manager = api.new_person("manager")
    admin = api.new_person("admin")
    contact = api.new_person("client", client_id=client.id)
    walled_manager = api.new_person("manager", clients=[api.new_client("Elsewhere LLP").id])
    method = {"kind": "email", "address": "pager@home.example"}

    # The person themselves, and an admin, change them; nobody else.
    assert add(api, person, person.person_id, **method).status_code == 201
    for caller in (other, manager, client, contact):
        assert_problem(
            add(api, caller, person.person_id, **method | {"address": "x@y.example"}), 403
        )
    by_admin = add(api, admin, person.person_id, kind="email", address="admin-added@home.example")
    assert by_admin.status_code == 201, by_admin.text
    for caller in (other, manager):
        refused = api.http.delete(
            f"{methods_path(person.person_id)}/{by_admin.json()['id']}", headers=caller.headers
        )
        assert_problem(refused, 403)
    assert (
        api.http.delete(
            f"{methods_path(person.person_id)}/{by_admin.json()['id']}", headers=admin.headers
        ).status_code
        == 204
    )

    # The person, managers and admins read them; another responder and clients do not.
    for caller in (person, manager, admin, api.admin):
        assert len(listed(api, caller, person.person_id)) == 2
    for caller in (other, client, contact):
        assert_problem(api.http.get(methods_path(person.person_id), headers=caller.headers), 403)

    # A client's contact keeps their own; a manager walled off from the client does not see them.
    assert add(api, contact, contact.person_id, **method).status_code == 201
    assert len(listed(api, manager, contact.person_id)) == 2
    assert_problem(
        api.http.get(methods_path(contact.person_id), headers=walled_manager.headers), 404
    )
    # No such person.
    assert_problem(api.http.get(methods_path(str(uuid.uuid4())), headers=admin.headers), 404)
    assert_problem(add(api, admin, str(uuid.uuid4()), **method), 404)


# --- Pages that try them in order -------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A real HTTP server on loopback, on its own thread: records every POST and answers it
    with the status set for its path (200 unless told)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self.statuses: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver._lock:
                    receiver.received.append(Received(self.path, headers, body))
                    status = receiver.statuses.get(self.path, 200)
                answer = b"ok" if status < 300 else b"refused by the test receiver"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str, *, status: int = 200) -> str:
        with self._lock:
            self.statuses[path] = status
        return f"http://{self.host}{path}"

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [request for request in self.received if request.path == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def paging(mail_platform: Platform) -> Api:
    return Api(mail_platform)


def signed_as_the_spec_says(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Standard Webhooks verification from the spec: HMAC-SHA256 under the base64 key after
    `whsec_`, over `{webhook-id}.{webhook-timestamp}.{body}`, sent as `v1,<base64>`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    return any(
        version == "v1" and hmac.compare_digest(base64.b64decode(signature), expected)
        for version, _, signature in (
            entry.partition(",") for entry in headers["webhook-signature"].split(" ")
        )
    )


def bouncing(api: Api, role: str = "responder") -> Person:
    """A person whose own email the SMTP server refuses for good: their first method fails."""
    return api.new_person(role, email=f"{role}-{uuid.uuid4().hex[:12]}@{BOUNCE}")


def page_on_p1(
    api: Api, first: Person, then: Person, client: Tenant | None = None
) -> dict[str, Any]:
    """A client whose P1s page `first`, and `then` in a second step (both given half an hour,
    so only a failure can bring the second step on early); reports a P1 for it."""
    client = client or api.new_client()
    policy = {
        "name": "Contact methods",
        "client_id": client.id,
        "priorities": ["P1"],
        "steps": [
            {"targets": [{"person_id": first.person_id}], "after_minutes": 30},
            {"targets": [{"person_id": then.person_id}], "after_minutes": 30},
        ],
    }
    ok(api.http.post("/v1/escalation-policies", json=policy, headers=api.admin.headers))
    return ok(api.report(client, impact="extensive", urgency="critical"))


def deliveries(api: Api, incident_id: str) -> list[dict[str, Any]]:
    response = api.http.get(f"/v1/incidents/{incident_id}/notifications", headers=api.admin.headers)
    items: list[dict[str, Any]] = ok(response)["items"]
    return items


def summary(items: list[dict[str, Any]]) -> list[tuple[str, str, str, str, int]]:
    return [
        (item["person"]["id"], item["channel"], item["target"], item["status"], item["step"])
        for item in items
    ]


def test_a_page_tries_each_method_in_order_until_one_delivers(
    paging: Api, mailbox: tuple[Mailbox, int], receiver: Receiver
) -> None:
    api, (box, _) = paging, mailbox
    person, second = bouncing(api), api.new_person("responder")
    secret = a_secret()
    hook = f"/hooks/{uuid.uuid4().hex}"
    ok(
        add(
            api,
            person,
            person.person_id,
            kind="webhook",
            address=receiver.url(hook, status=400),
            secret=secret,
        )
    )
    backup = f"backup-{uuid.uuid4().hex[:12]}@home.example"
    ok(add(api, person, person.person_id, kind="email", address=backup))
    incident = page_on_p1(api, person, second)

    # Their email is refused (550), the webhook answers 400: both for good, so the backup
    # email gets the page.
    [mail] = eventually(lambda: box.to(backup))
    assert incident["reference"] in str(mail["Subject"]) and "[P1]" in str(mail["Subject"])

    # The webhook had the page, signed with the method's secret, as a receiver checks it.
    [request] = receiver.at(hook)
    payload = Webhook(secret).verify(request.body, request.headers)
    assert signed_as_the_spec_says(secret, request.headers, request.body)
    assert payload["type"] == "incident.page"
    assert payload["data"]["incident_id"] == incident["id"]
    assert payload["data"]["reference"] == incident["reference"]
    assert payload["data"]["priority"] == "P1"

    items = eventually(
        lambda: (
            (found := deliveries(api, incident["id"]))
            and found[-1]["status"] == "delivered"
            and found
        )
    )
    assert summary(items) == [
        (person.person_id, "email", person.email, "failed", 0),
        (person.person_id, "webhook", receiver.host, "failed", 0),
        (person.person_id, "email", backup, "delivered", 0),
    ]
    refused_mail, refused_hook, delivered = items
    assert "550" in refused_mail["last_error"]
    assert "400" in refused_hook["last_error"]
    assert hook not in json.dumps(items)  # a URL shows as its host only
    assert request.headers["webhook-id"] == refused_hook["id"]
    assert delivered["last_error"] is None and delivered["delivered_at"] is not None
    assert all(item["attempts"] == 1 for item in items)
    assert items[0]["person"]["name"] and items == sorted(items, key=lambda i: i["created_at"])
    # One of the person's methods took the page: the escalation did not move on.
    assert not box.to(second.email)
    types = [entry["type"] for entry in api.timeline(api.admin, incident["id"])]
    assert types.count("escalation.step_reached") == 1


def test_the_escalation_moves_on_only_when_the_last_method_failed(
    paging: Api, mailbox: tuple[Mailbox, int], receiver: Receiver
) -> None:
    api, (box, _) = paging, mailbox
    person, second = bouncing(api), api.new_person("responder")
    hook = f"/hooks/{uuid.uuid4().hex}"
    ok(
        add(
            api,
            person,
            person.person_id,
            kind="webhook",
            address=receiver.url(hook, status=400),
            secret=a_secret(),
        )
    )
    incident = page_on_p1(api, person, second)

    eventually(lambda: box.to(second.email))
    items = eventually(
        lambda: (
            (found := deliveries(api, incident["id"]))
            and found[-1]["status"] == "delivered"
            and found
        )
    )
    # In the order they were queued: the second step only after both methods had failed.
    assert summary(items) == [
        (person.person_id, "email", person.email, "failed", 0),
        (person.person_id, "webhook", receiver.host, "failed", 0),
        (second.person_id, "email", second.email, "delivered", 1),
    ]
    assert len(receiver.at(hook)) == 1
    failed = [
        entry["summary"]
        for entry in api.timeline(api.admin, incident["id"])
        if entry["type"] == "page.failed"
    ]
    assert len(failed) == 2 and all("gave up" in line for line in failed)


def test_slack_gets_block_kit_and_teams_an_adaptive_card(
    paging: Api, mailbox: tuple[Mailbox, int], receiver: Receiver
) -> None:
    api, _ = paging, mailbox
    person, second = bouncing(api), api.new_person("responder")
    slack, teams = f"/slack/{uuid.uuid4().hex}", f"/teams/{uuid.uuid4().hex}"
    ok(add(api, person, person.person_id, kind="slack", address=receiver.url(slack, status=400)))
    ok(add(api, person, person.person_id, kind="teams", address=receiver.url(teams)))
    incident = page_on_p1(api, person, second)

    [teams_request] = eventually(lambda: receiver.at(teams))
    [slack_request] = receiver.at(slack)
    message = slack_request.json()
    header, section, context = message["blocks"][:3]
    assert header["type"] == "header" and incident["reference"] in header["text"]["text"]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert context["type"] == "context" and "P1" in context["elements"][0]["text"]
    assert incident["reference"] in message["text"]
    assert "webhook-signature" not in slack_request.headers  # Slack URLs are not signed

    card = teams_request.json()["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard"
    assert incident["reference"] in card["content"]["body"][0]["text"]

    items = eventually(
        lambda: (
            (found := deliveries(api, incident["id"]))
            and found[-1]["status"] == "delivered"
            and found
        )
    )
    assert [(item["channel"], item["target"], item["status"]) for item in items] == [
        ("email", person.email, "failed"),
        ("slack", receiver.host, "failed"),
        ("teams", receiver.host, "delivered"),
    ]


def test_deliveries_are_for_staff_inside_the_wall(paging: Api) -> None:
    api = paging
    client = api.new_client()
    person = api.new_person("responder")
    incident = page_on_p1(api, person, person, client)
    path = f"/v1/incidents/{incident['id']}/notifications"
    # 409 until triage has seen the incident (as for its tasks), then the page's delivery.
    eventually(
        lambda: (
            (response := api.http.get(path, headers=person.headers)).status_code == 200
            and response.json()["items"]
        )
    )
    walled = api.new_person("responder", clients=[api.new_client("Elsewhere LLP").id])
    for caller in (client, walled):
        assert_problem(api.http.get(path, headers=caller.headers), 404)
