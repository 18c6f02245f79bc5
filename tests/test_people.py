"""People: the firm's staff and clients' contacts, their validation, walls and deactivation."""

from __future__ import annotations

import uuid
from typing import Any

import nats
import pytest
from nats.js.api import DeliverPolicy

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.events import SUBJECT_PREFIX, parse_event
from tests.gateway_client import Api, Tenant
from tests.test_bad_input import assert_problem


def unique_email(stem: str = "person") -> str:
    return f"{stem}-{uuid.uuid4().hex[:12]}@firm.example"


def person_body(**overrides: Any) -> dict[str, Any]:
    return {"name": "Ada Lovelace", "email": unique_email(), "role": "responder"} | overrides


def emails(api: Api) -> set[str]:
    return {person["email"] for person in api.pages("/v1/people", api.admin, limit=200)}


def test_an_admin_adds_reads_lists_and_changes_a_person(api: Api) -> None:
    alpha = api.new_client("Alpha LLP")
    body = person_body(
        name="Grace Hopper",
        phone="+44 20 7946 0000",
        timezone="Europe/London",
        clients=[alpha.id, alpha.id],
    )
    created = api.http.post("/v1/people", json=body, headers=api.admin.headers)
    assert created.status_code == 201, created.text
    person = created.json()
    assert person | {"id": "", "created_at": "", "updated_at": ""} == {
        "id": "",
        "name": "Grace Hopper",
        "email": body["email"],
        "role": "responder",
        "client_id": "operator",  # staff belong to the firm
        "phone": "+442079460000",
        "timezone": "Europe/London",
        "clients": [alpha.id],
        "active": True,
        "created_at": "",
        "updated_at": "",
        "created_by": "bootstrap",  # the bootstrap admin key, a key of no person
    }
    assert api.http.get(f"/v1/people/{person['id']}", headers=api.admin.headers).json() == person

    changed = api.http.patch(
        f"/v1/people/{person['id']}",
        json={"role": "manager", "phone": None, "clients": None, "name": "Grace B. Hopper"},
        headers=api.admin.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() | {"updated_at": ""} == person | {
        "role": "manager",
        "phone": None,
        "clients": None,  # every client
        "name": "Grace B. Hopper",
        "updated_at": "",
    }
    assert changed.json()["updated_at"] > person["updated_at"]
    assert api.http.get(f"/v1/people/{person['id']}", headers=api.admin.headers).json() == (
        changed.json()
    )


def test_a_client_contact_belongs_to_an_existing_client(api: Api) -> None:
    alpha = api.new_client("Alpha LLP")
    body = person_body(role="client", client_id=alpha.id)
    created = api.http.post("/v1/people", json=body, headers=api.admin.headers)
    assert created.status_code == 201, created.text
    assert created.json()["client_id"] == alpha.id
    assert created.json()["clients"] is None
    listed = api.pages("/v1/people", api.admin, client_id=alpha.id)
    assert [person["id"] for person in listed] == [created.json()["id"]]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"email": "not-an-email"}, "email"),
        ({"role": "overlord"}, "role"),
        ({"role": "client"}, "client_id"),  # a contact needs its client
        ({"role": "client", "client_id": "no-such-client"}, "client_id"),
        ({"role": "client", "client_id": "operator"}, "client_id"),  # the firm's are staff
        ({"phone": "020 7946 0000"}, "phone"),  # no country code
        ({"phone": "+44 abc"}, "phone"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "../etc/passwd"}, "timezone"),
        ({"clients": "everyone"}, "clients"),
        ({"clients": ["bad id!"]}, "clients.0"),
        ({"nickname": "Ada"}, "nickname"),  # a misspelt field is not silently dropped
    ],
)
def test_invalid_people_are_422_naming_the_field_and_write_nothing(
    api: Api, overrides: dict[str, Any], field: str
) -> None:
    body = person_body(**overrides)
    response = api.http.post("/v1/people", json=body, headers=api.admin.headers)
    assert_problem(response, 422, field)
    assert body["email"] not in emails(api)


def test_wall_and_client_mistakes_are_422_naming_the_field(api: Api) -> None:
    alpha = api.new_client("Alpha LLP")
    for body, field in [
        (person_body(clients=[alpha.id, "no-such-client"]), "clients.1"),
        (person_body(client_id=alpha.id), "client_id"),  # staff belong to the operator
        (person_body(role="client", client_id=alpha.id, clients=[alpha.id]), "clients"),
    ]:
        response = api.http.post("/v1/people", json=body, headers=api.admin.headers)
        assert_problem(response, 422, field)
        assert body["email"] not in emails(api)


def test_emails_are_unique_whatever_their_case(api: Api) -> None:
    email = unique_email("Ada")
    first = api.http.post("/v1/people", json=person_body(email=email), headers=api.admin.headers)
    assert first.status_code == 201
    again = api.http.post(
        "/v1/people", json=person_body(email=email.upper()), headers=api.admin.headers
    )
    assert_problem(again, 409)
    other = api.new_person("manager")
    taken = api.http.patch(
        f"/v1/people/{other.person_id}", json={"email": email}, headers=api.admin.headers
    )
    assert_problem(taken, 409)
    assert api.http.get(f"/v1/people/{other.person_id}", headers=api.admin.headers).json()[
        "email"
    ] == (other.email)


@pytest.mark.parametrize(
    ("role", "changes", "field"),
    [
        ("responder", {"role": "client"}, "role"),  # staff never become a client's contact
        ("client", {"role": "admin"}, "role"),  # nor a contact staff
        ("client", {"clients": []}, "clients"),  # a contact has no wall
        ("responder", {"name": None}, "name"),
        ("responder", {"active": None}, "active"),
        ("responder", {"timezone": "Nowhere/Special"}, "timezone"),
        ("responder", {"clients": ["no-such-client"]}, "clients.0"),
        ("responder", {"client_id": "operator"}, "client_id"),  # not changeable
    ],
)
def test_invalid_changes_are_422_naming_the_field_and_change_nothing(
    api: Api, role: str, changes: dict[str, Any], field: str
) -> None:
    client = api.new_client() if role == "client" else None
    person = api.new_person(role, client_id=client.id if client else None)
    before = api.http.get(f"/v1/people/{person.person_id}", headers=api.admin.headers).json()
    response = api.http.patch(
        f"/v1/people/{person.person_id}", json=changes, headers=api.admin.headers
    )
    assert_problem(response, 422, field)
    after = api.http.get(f"/v1/people/{person.person_id}", headers=api.admin.headers)
    assert after.json() == before


def test_unknown_people_are_404(api: Api) -> None:
    for response in (
        api.http.get("/v1/people/no-such-person", headers=api.admin.headers),
        api.http.get("/v1/people/%00", headers=api.admin.headers),
        api.http.patch("/v1/people/no-such-person", json={}, headers=api.admin.headers),
        api.http.post("/v1/people/no-such-person/api-keys", headers=api.admin.headers),
    ):
        assert_problem(response, 404)


def test_staff_read_people_and_only_admins_change_them(api: Api) -> None:
    client = api.new_client()
    contact = api.new_person("client", client_id=client.id)
    responder, manager = api.new_person("responder"), api.new_person("manager")
    for reader in (responder, manager):
        assert api.http.get("/v1/people", headers=reader.headers).status_code == 200
        mine = api.http.get(f"/v1/people/{reader.person_id}", headers=reader.headers)
        assert mine.status_code == 200
    for outsider in (client, contact):
        assert_problem(api.http.get("/v1/people", headers=outsider.headers), 403)
        path = f"/v1/people/{responder.person_id}"
        assert_problem(api.http.get(path, headers=outsider.headers), 403)
    for caller in (client, contact, responder, manager):
        created = api.http.post("/v1/people", json=person_body(), headers=caller.headers)
        assert_problem(created, 403)
        changed = api.http.patch(
            f"/v1/people/{responder.person_id}", json={"role": "admin"}, headers=caller.headers
        )
        assert_problem(changed, 403)
        issued = api.http.post(f"/v1/people/{responder.person_id}/api-keys", headers=caller.headers)
        assert_problem(issued, 403)
    got = api.http.get(f"/v1/people/{responder.person_id}", headers=api.admin.headers)
    assert got.json()["role"] == "responder"


def test_people_are_listed_in_pages_and_filtered(api: Api) -> None:
    client = api.new_client()
    contacts = [api.new_person("client", client_id=client.id) for _ in range(3)]
    api.http.patch(
        f"/v1/people/{contacts[0].person_id}", json={"active": False}, headers=api.admin.headers
    )
    ids = [p["id"] for p in api.pages("/v1/people", api.admin, client_id=client.id, limit=1)]
    assert ids == [contact.person_id for contact in reversed(contacts)]  # newest first
    active = api.pages("/v1/people", api.admin, client_id=client.id, active=True)
    assert {p["id"] for p in active} == {c.person_id for c in contacts[1:]}
    managers = api.pages("/v1/people", api.admin, role="manager")
    assert managers and all(p["role"] == "manager" for p in managers)
    bad = api.http.get("/v1/people", params={"cursor": "nonsense"}, headers=api.admin.headers)
    assert_problem(bad, 422, "cursor")
    assert_problem(
        api.http.get("/v1/people", params={"role": "overlord"}, headers=api.admin.headers),
        422,
        "role",
    )


def test_a_deactivated_persons_keys_stop_working_at_once(api: Api) -> None:
    person = api.new_person("responder")
    assert api.http.get("/v1/incidents", headers=person.headers).status_code == 200
    path = f"/v1/people/{person.person_id}"
    off = api.http.patch(path, json={"active": False}, headers=api.admin.headers)
    assert off.status_code == 200 and off.json()["active"] is False
    assert_problem(api.http.get("/v1/incidents", headers=person.headers), 401)
    refused = api.http.post(f"{path}/api-keys", headers=api.admin.headers)
    assert_problem(refused, 409)
    on = api.http.patch(path, json={"active": True}, headers=api.admin.headers)
    assert on.status_code == 200
    assert api.http.get("/v1/incidents", headers=person.headers).status_code == 200


# --- Walls ------------------------------------------------------------------------------------


def _incident_of(api: Api, tenant: Tenant) -> str:
    created = api.report(tenant)
    assert created.status_code == 201, created.text
    incident_id: str = created.json()["id"]
    return incident_id


def test_a_walled_responder_sees_only_clients_inside_the_wall(api: Api) -> None:
    alpha, beta = api.new_client("Alpha LLP"), api.new_client("Beta LLP")
    inside, outside = _incident_of(api, alpha), _incident_of(api, beta)
    walled = api.new_person("responder", clients=[alpha.id])

    assert api.incident(walled, inside)["client_id"] == alpha.id
    api.wait_for_timeline(walled, inside, 1)
    not_found = api.http.get(f"/v1/incidents/{outside}", headers=walled.headers)
    missing_id = str(uuid.uuid4())
    missing = api.http.get(f"/v1/incidents/{missing_id}", headers=walled.headers)
    # Word for word what a missing incident gets.
    assert assert_problem(missing, 404)["detail"] == f"incident {missing_id} not found"
    assert assert_problem(not_found, 404)["detail"] == f"incident {outside} not found"
    assert "Beta" not in not_found.text
    assert_problem(api.http.get(f"/v1/incidents/{outside}/timeline", headers=walled.headers), 404)
    listed = api.list_ids(walled, limit=200)
    assert inside in listed and outside not in listed
    assert {api.incident(api.admin, i)["client_id"] for i in listed} <= {alpha.id, "operator"}

    # Moving the wall moves what they see, from the next request on.
    api.http.patch(
        f"/v1/people/{walled.person_id}", json={"clients": [beta.id]}, headers=api.admin.headers
    )
    assert api.incident(walled, outside)["client_id"] == beta.id
    assert_problem(api.http.get(f"/v1/incidents/{inside}", headers=walled.headers), 404)


def test_a_wall_around_no_client_shows_only_the_firms_own(api: Api) -> None:
    alpha = api.new_client("Alpha LLP")
    incident = _incident_of(api, alpha)
    contact = api.new_person("client", client_id=alpha.id)
    nobody = api.new_person("manager", clients=[])
    # The firm's own incidents (reported by staff into operator) stay visible behind any wall.
    own = api.report(nobody).json()["id"]
    listed = api.list_ids(nobody)
    assert incident not in listed and own in listed
    assert {api.incident(nobody, i)["client_id"] for i in listed} == {"operator"}
    assert_problem(api.http.get(f"/v1/incidents/{incident}", headers=nobody.headers), 404)
    # Nor does the wall show a client's contacts; the firm's staff it does.
    people = api.pages("/v1/people", nobody)
    assert {person["client_id"] for person in people} == {"operator"}
    assert_problem(api.http.get(f"/v1/people/{contact.person_id}", headers=nobody.headers), 404)
    assert api.http.get(f"/v1/people/{nobody.person_id}", headers=nobody.headers).status_code == 200


def test_unwalled_staff_see_every_client(api: Api) -> None:
    alpha = api.new_client("Alpha LLP")
    incident = _incident_of(api, alpha)
    responder = api.new_person("responder")
    assert api.incident(responder, incident)["client_id"] == alpha.id
    assert incident in api.list_ids(responder, limit=200)


async def test_people_reach_the_bus_for_services_that_keep_a_copy(api: Api) -> None:
    """person.registered and person.changed carry the person whole (notify will keep how to
    reach people from them), with the admin who did it as the actor."""
    person = api.new_person("responder", phone="+44 20 7946 0000", timezone="Europe/London")
    changed = api.http.patch(
        f"/v1/people/{person.person_id}",
        json={"active": False, "clients": []},
        headers=api.admin.headers,
    )
    assert changed.status_code == 200, changed.text

    client = await nats.connect(api.platform.admin_nats_url)
    try:
        js = client.jetstream()
        subscription = await js.subscribe(
            f"{SUBJECT_PREFIX}person.*", ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        seen: dict[str, EventEnvelope] = {}
        while len(seen) < 2:
            message = await subscription.next_msg(timeout=10)
            envelope = parse_event(message.data, subject=message.subject)
            if envelope.WhichOneof("payload") == "person_registered":
                details = envelope.person_registered.person
            else:
                details = envelope.person_changed.person
            if details.id == person.person_id:
                seen[envelope.type] = envelope
    finally:
        await client.close()

    registered = seen["person.registered"].person_registered.person
    assert (registered.email, registered.phone) == (person.email, "+442079460000")
    assert (registered.role, registered.client_id, registered.active) == (
        "responder",
        "operator",
        True,
    )
    assert not registered.walled
    now = seen["person.changed"]
    assert not now.person_changed.person.active
    assert now.person_changed.person.walled and list(now.person_changed.person.clients) == []
    assert now.incident_id == "" and now.client_id == "operator"
    assert now.actor.kind == "admin"
