"""Status updates against the real processes and a real SMTP server: a client update reaches
the client's contacts (escaped in its HTML part) and the client's timeline; an internal one
reaches the firm's people working the incident and never a client key nor a client's inbox; who
may post; bad input; and an update counts as progress on an acknowledged P1."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import httpx
import pytest

from firebreak.launcher import Platform
from tests.conftest import BACKENDS, database_urls, on_backend
from tests.gateway_client import Api, Person, Tenant, eventually
from tests.lifecycle_client import ok, report_triaged, run
from tests.mail import Mailbox, parts, start_paging_platform

LAPSE_SECONDS = 6.0  # an acknowledged P1 without progress pages again after this


@pytest.fixture(scope="module", params=BACKENDS)
def updates_platform(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    mailbox: tuple[Mailbox, int],
) -> Iterator[Platform]:
    factory = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    _, port = mailbox
    platform = start_paging_platform(
        tmp_path_factory.mktemp(f"updates-{request.param}"),
        smtp_port=port,
        database_urls=database_urls(request.param, factory),
        extra_env={
            "FIREBREAK_ACK_LAPSE_MINUTES": str(LAPSE_SECONDS / 60),
            "FIREBREAK_FIRM_NAME": "Hopper & Partners",
        },
    )
    yield platform
    platform.stop()


@dataclass(frozen=True)
class Cast:
    api: Api
    client: Tenant
    other_client: Tenant
    contacts: tuple[Person, Person]
    other_contact: Person  # a contact of the other client
    lead: Person  # a responder, made communications lead of each incident
    responder: Person  # a responder of each incident, holding no role
    manager: Person


@pytest.fixture(scope="module")
def cast(updates_platform: Platform) -> Cast:
    api = Api(updates_platform)
    client, other = api.new_client("Acme LLP"), api.new_client("Other LLP")
    return Cast(
        api=api,
        client=client,
        other_client=other,
        contacts=(
            api.new_person("client", client_id=client.id),
            api.new_person("client", client_id=client.id),
        ),
        other_contact=api.new_person("client", client_id=other.id),
        lead=api.new_person("responder"),
        responder=api.new_person("responder"),
        manager=api.new_person("manager"),
    )


def worked_incident(cast: Cast, **report: Any) -> str:
    """A triaged incident of the client, acknowledged by the manager (its commander), with the
    lead as communications lead and the responder among its responders."""
    api = cast.api
    incident_id = report_triaged(api, cast.client, **report)
    ok(run(api, cast.manager, incident_id, "acknowledge"))
    ok(
        run(
            api,
            cast.manager,
            incident_id,
            "assign_role",
            {"role": "communications_lead", "person_id": cast.lead.person_id},
        )
    )
    ok(
        run(
            api, cast.manager, incident_id, "add_responder", {"person_id": cast.responder.person_id}
        )
    )
    return incident_id


def post(api: Api, caller: Tenant, incident_id: str, **body: Any) -> httpx.Response:
    return api.http.post(f"/v1/incidents/{incident_id}/updates", json=body, headers=caller.headers)


def listed(api: Api, caller: Tenant, incident_id: str) -> list[dict[str, Any]]:
    response = api.http.get(f"/v1/incidents/{incident_id}/updates", headers=caller.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def mail_about(box: Mailbox, person: Person, reference: str) -> list[dict[str, str]]:
    """The subject and parts (with plain line ends) of each email the person received about
    the incident."""
    return [
        {"subject": str(message["Subject"])}
        | {kind: text.replace("\r\n", "\n") for kind, text in parts(message).items()}
        for message in box.to(person.email)
        if reference in str(message["Subject"])
    ]


def test_a_client_update_reaches_the_clients_contacts_and_its_timeline(
    cast: Cast, mailbox: tuple[Mailbox, int]
) -> None:
    api, box = cast.api, mailbox[0]
    incident_id = worked_incident(cast)
    reference = api.incident(api.admin, incident_id)["reference"]
    body = "Service is restored for <b>all</b> users & partners.\nNext update at 14:00."

    posted = ok(post(api, cast.lead, incident_id, audience="client", body=body))
    assert posted["audience"] == "client" and posted["body"] == body
    assert posted["recipients"] == 2
    assert posted["author"]["id"] == cast.lead.person_id

    for contact in cast.contacts:
        [mail] = eventually(partial(mail_about, box, contact, reference))
        assert reference in mail["subject"]
        assert body in mail["text/plain"]
        assert "Hopper & Partners" in mail["text/plain"]
        # Autoescaped: the author's words are shown, never run as markup.
        assert "&lt;b&gt;all&lt;/b&gt; users &amp; partners" in mail["text/html"]
        assert "<b>all</b>" not in mail["text/html"]
    assert not mail_about(box, cast.other_contact, reference)

    # The client's timeline shows the update in the author's words, said by the response team.
    def client_line() -> dict[str, Any] | None:
        entries = api.timeline(cast.client, incident_id)
        return next((e for e in entries if e["type"] == "status_update.posted"), None)

    entry = eventually(client_line)
    assert entry["summary"] == "status update"
    assert entry["fields"] == [{"name": "update", "value": body}]
    assert entry["actor"]["kind"] == "staff" and entry["actor"]["id"] == ""
    [seen] = listed(api, cast.contacts[0], incident_id)
    assert seen["body"] == body and seen["author"]["name"] == "Response team"

    deliveries = ok(
        api.http.get(f"/v1/incidents/{incident_id}/notifications", headers=cast.manager.headers)
    )["items"]
    updates = [item for item in deliveries if item["purpose"] == "status_update"]
    assert {item["target"] for item in updates} == {contact.email for contact in cast.contacts}


def test_internal_updates_never_reach_a_client_key_nor_a_clients_inbox(
    cast: Cast, mailbox: tuple[Mailbox, int]
) -> None:
    api, box = cast.api, mailbox[0]
    incident_id = worked_incident(cast)
    reference = api.incident(api.admin, incident_id)["reference"]
    secret = "Attacker still inside the payroll VLAN; do not tell the client yet"

    posted = ok(post(api, cast.manager, incident_id, audience="internal", body=secret))
    # The lead and the responder; the commander wrote it.
    assert posted["recipients"] == 2
    for person in (cast.lead, cast.responder):
        [mail] = eventually(partial(mail_about, box, person, reference))
        assert secret in mail["text/plain"] and "internal update" in mail["subject"]
    assert not mail_about(box, cast.manager, reference)

    # Staff see it on the timeline and in the list (so it was recorded everywhere it goes) ...
    eventually(
        lambda: any(
            e["type"] == "status_update.posted" for e in api.timeline(api.admin, incident_id)
        )
    )
    assert [item["body"] for item in listed(api, cast.manager, incident_id)] == [secret]
    # ... and a client sees none of it: not its key, not its contacts, not their inboxes.
    for caller in (cast.client, *cast.contacts):
        assert listed(api, caller, incident_id) == []
        entries = api.timeline(caller, incident_id)
        assert not [e for e in entries if e["type"] == "status_update.posted"]
        assert secret not in str(entries)
    for person in (*cast.contacts, cast.other_contact):
        assert not mail_about(box, person, reference)
        assert not any(secret in str(parts(m)) for m in box.to(person.email))


def test_only_the_comms_lead_the_commander_or_a_manager_may_post(cast: Cast) -> None:
    api = cast.api
    incident_id = worked_incident(cast)
    update = {"audience": "internal", "body": "Still investigating."}
    commander = cast.manager  # acknowledged it: its commander, and a manager anyway
    acting_commander = api.new_person("responder")
    ok(
        run(
            api,
            cast.manager,
            incident_id,
            "assign_role",
            {"role": "incident_commander", "person_id": acting_commander.person_id},
        )
    )
    for allowed in (cast.lead, acting_commander, commander, api.new_person("admin")):
        assert post(api, allowed, incident_id, **update).status_code == 201

    # A responder of the incident who holds no role: 403, saying who may.
    refused = post(api, cast.responder, incident_id, **update)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "communications lead" in refused.json()["detail"]
    # Clients must not learn the route exists: 404, whoever's incident, before the body.
    for client_caller in (cast.client, cast.contacts[0], cast.other_client):
        assert post(api, client_caller, incident_id, **update).status_code == 404
        assert post(api, client_caller, incident_id, audience="x").status_code == 404
    # Another client's incident is not there at all; nor is one outside a responder's wall.
    assert (
        api.http.get(
            f"/v1/incidents/{incident_id}/updates", headers=cast.other_client.headers
        ).status_code
        == 404
    )
    walled = api.new_person("manager", clients=[cast.other_client.id])
    assert post(api, walled, incident_id, **update).status_code == 404
    assert len(listed(api, cast.manager, incident_id)) == 4


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"audience": "internal", "body": ""}, "body"),
        ({"audience": "internal", "body": "   "}, "body"),
        ({"audience": "client", "body": "x" * 10_001}, "body"),
        ({"audience": "client", "body": "nul \x00 inside"}, "body"),
        ({"audience": "everyone", "body": "Hello"}, "audience"),
        ({"audience": "client"}, "body"),
        ({"body": "Hello"}, "audience"),
        ({"audience": "client", "body": "Hello", "cc": "x@example.com"}, "cc"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_nothing_is_sent(
    cast: Cast, body: dict[str, Any], field: str
) -> None:
    api = cast.api
    incident_id = report_triaged(api, cast.client)
    response = post(api, cast.manager, incident_id, **body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]]
    assert listed(api, cast.manager, incident_id) == []


@on_backend("sqlite", "updates_platform")
def test_a_status_update_is_progress_an_acknowledged_p1_lapses_after_it(
    cast: Cast, mailbox: tuple[Mailbox, int]
) -> None:
    api, box = cast.api, mailbox[0]
    on_call = api.new_person("responder")
    policy = {
        "name": "Acme P1",
        "client_id": cast.client.id,
        "priorities": ["P1"],
        "steps": [{"targets": [{"person_id": on_call.person_id}], "after_minutes": 30}],
    }
    ok(api.http.post("/v1/escalation-policies", json=policy, headers=api.admin.headers))
    incident_id = ok(api.report(cast.client, impact="extensive", urgency="critical"))["id"]
    eventually(lambda: box.to(on_call.email))
    ok(run(api, cast.manager, incident_id, "acknowledge"))
    eventually(lambda: "paging resumes" in str(api.timeline(api.admin, incident_id)))

    posted = ok(post(api, cast.manager, incident_id, audience="internal", body="Isolating hosts"))
    posted_at = datetime.fromisoformat(posted["posted_at"])

    # Paging resumes, but counted from the update, not from the acknowledgement before it.
    def resumed() -> dict[str, Any] | None:
        entries = api.timeline(api.admin, incident_id)
        return next((e for e in entries if "acknowledgement lapsed" in e["summary"]), None)

    step = eventually(resumed, timeout=LAPSE_SECONDS * 10)
    assert (datetime.fromisoformat(step["occurred_at"]) - posted_at).total_seconds() >= (
        LAPSE_SECONDS
    )
    eventually(lambda: len(box.to(on_call.email)) == 2 or None)
