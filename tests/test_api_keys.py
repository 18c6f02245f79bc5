"""API keys: personal keys issued once, listed without secrets, revoked for good."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from tests.gateway_client import Api, Tenant, eventually
from tests.test_bad_input import assert_problem


def listed(api: Api, tenant: Tenant, **params: Any) -> dict[str, dict[str, Any]]:
    """Every key `tenant` may list, by id."""
    return {key["id"]: key for key in api.pages("/v1/api-keys", tenant, limit=200, **params)}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_a_personal_key_is_shown_once_and_acts_as_its_person(api: Api) -> None:
    client = api.new_client("Alpha LLP")
    person = api.http.post(
        "/v1/people",
        json={"name": "Ada", "email": "ada-keys@alpha.example", "role": "client"}
        | {"client_id": client.id},
        headers=api.admin.headers,
    ).json()
    issued = api.http.post(f"/v1/people/{person['id']}/api-keys", headers=api.admin.headers)
    assert issued.status_code == 201, issued.text
    key = issued.json()
    assert set(key) == {
        "id",
        "person_id",
        "client_id",
        "role",
        "prefix",
        "key",
        "created_at",
        "expires_at",
        "created_by",
    }
    assert key["expires_at"] is None and key["created_by"] == "bootstrap"
    assert key["person_id"] == person["id"] and key["client_id"] == client.id
    assert key["role"] == "client"
    assert key["key"].startswith("fbk_") and key["prefix"] == key["key"][:12]
    # A contact's key reports into, and reads, its own client.
    incident = api.http.post(
        "/v1/incidents",
        json={
            "title": "Laptop stolen",
            "description": "From a car",
            "type": "security_breach",
            "impact": "moderate",
            "urgency": "high",
            "reporter": {"name": "Ada", "email": "ada-keys@alpha.example"},
        },
        headers=bearer(key["key"]),
    )
    assert incident.status_code == 201, incident.text
    assert incident.json()["client_id"] == client.id
    assert incident.json()["id"] in api.list_ids(client)


def test_the_list_never_shows_a_key_or_its_hash(api: Api) -> None:
    client = api.new_client("Alpha LLP")
    person = api.new_person("responder")
    secret = person.headers["Authorization"].removeprefix("Bearer ")
    response = api.http.get("/v1/api-keys", params={"limit": 200}, headers=api.admin.headers)
    assert response.status_code == 200
    everything = listed(api, api.admin)
    mine = everything[person.key_id]
    assert set(mine) == {
        "id",
        "owner",
        "client_id",
        "role",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
        "expires_at",
        "created_by",
    }
    assert mine["owner"] == {
        "kind": "person",
        "id": person.person_id,
        "name": mine["owner"]["name"],
    }
    assert mine["prefix"] == secret[:12] and mine["role"] == "responder"
    assert mine["client_id"] == "operator"
    system_key = next(k for k in everything.values() if k["client_id"] == client.id)
    assert system_key["owner"] == {
        "kind": "client_system",
        "id": system_key["id"],
        "name": "Alpha LLP system",
    }
    assert everything["bootstrap"]["owner"] == {
        "kind": "operator",
        "id": "bootstrap",
        "name": "operator admin key",
    }
    text = api.http.get("/v1/api-keys", params={"limit": 200}, headers=api.admin.headers).text
    assert secret not in text
    assert hashlib.sha256(secret.encode()).hexdigest() not in text
    assert "key_hash" not in text


def test_people_and_client_systems_list_only_their_own_keys(api: Api) -> None:
    alpha, beta = api.new_client("Alpha LLP"), api.new_client("Beta LLP")
    person = api.new_person("manager")
    second = api.issue_key(person.person_id)
    other = api.new_person("responder")

    assert set(listed(api, person)) == {person.key_id, second["id"]}
    assert set(listed(api, person, person_id=other.person_id)) == set()  # filters narrow only
    (only_itself,) = listed(api, alpha).values()
    assert only_itself["client_id"] == alpha.id
    assert only_itself["owner"]["kind"] == "client_system"
    assert set(listed(api, alpha, client_id=beta.id)) == set()
    assert set(listed(api, beta)).isdisjoint(listed(api, alpha))
    everything = listed(api, api.admin)
    assert {person.key_id, second["id"], other.key_id} <= set(everything)
    assert set(listed(api, api.admin, person_id=person.person_id)) == {
        person.key_id,
        second["id"],
    }


def test_a_revoked_key_is_refused_from_the_next_request_on(api: Api) -> None:
    person = api.new_person("responder")
    spare = api.issue_key(person.person_id)
    assert api.http.get("/v1/incidents", headers=person.headers).status_code == 200

    revoked = api.http.delete(f"/v1/api-keys/{person.key_id}", headers=person.headers)
    assert revoked.status_code == 204, revoked.text
    assert_problem(api.http.get("/v1/incidents", headers=person.headers), 401)
    # Their other key still works, and shows the revocation.
    assert api.http.get("/v1/incidents", headers=bearer(spare["key"])).status_code == 200
    assert listed(api, api.admin)[person.key_id]["revoked_at"] is not None
    # Again: nothing changes.
    again = api.http.delete(f"/v1/api-keys/{person.key_id}", headers=bearer(spare["key"]))
    assert again.status_code == 204


def test_only_admins_revoke_other_peoples_keys(api: Api) -> None:
    client = api.new_client()
    person, other = api.new_person("manager"), api.new_person("responder")
    system_key_id = next(iter(listed(api, client)))
    for caller, key_id in [
        (person, other.key_id),
        (client, other.key_id),
        (other, system_key_id),
        (person, "bootstrap"),
    ]:
        # Someone else's key is as absent as a key that never existed: 404, as for no-such-key.
        assert_problem(api.http.delete(f"/v1/api-keys/{key_id}", headers=caller.headers), 404)
    assert_problem(api.http.delete("/v1/api-keys/no-such-key", headers=person.headers), 404)
    assert api.http.get("/v1/incidents", headers=other.headers).status_code == 200
    assert_problem(api.http.delete("/v1/api-keys/no-such-key", headers=api.admin.headers), 404)

    # A client system may revoke itself; an admin anyone.
    by_admin = api.http.delete(f"/v1/api-keys/{other.key_id}", headers=api.admin.headers)
    assert by_admin.status_code == 204
    assert_problem(api.http.get("/v1/incidents", headers=other.headers), 401)
    gone = api.http.delete(f"/v1/api-keys/{system_key_id}", headers=client.headers)
    assert gone.status_code == 204
    assert_problem(api.http.get("/v1/incidents", headers=client.headers), 401)


def test_last_used_at_records_use(api: Api) -> None:
    person = api.new_person("responder")
    before = listed(api, api.admin, person_id=person.person_id)[person.key_id]
    assert before["last_used_at"] is None
    for _ in range(3):
        assert api.http.get("/v1/incidents", headers=person.headers).status_code == 200

    def recorded() -> str | None:
        used: str | None = listed(api, person)[person.key_id]["last_used_at"]
        return used

    first = eventually(recorded)
    assert datetime.fromisoformat(first) >= datetime.fromisoformat(before["created_at"])
    # Within the minute further use writes nothing.
    api.http.get("/v1/incidents", headers=person.headers)
    assert listed(api, person)[person.key_id]["last_used_at"] == first


def test_only_admins_issue_keys_and_admin_keys_are_the_operators(api: Api) -> None:
    client = api.new_client()
    person = api.new_person("manager")
    for caller in (client, person):
        response = api.http.post(f"/v1/people/{person.person_id}/api-keys", headers=caller.headers)
        assert_problem(response, 403)
    admin = api.new_person("admin")
    # A personal admin key may do what the bootstrap key does.
    created = api.http.post("/v1/clients", json={"name": "Gamma LLP"}, headers=admin.headers)
    assert created.status_code == 201
    key = api.http.post(
        f"/v1/clients/{created.json()['id']}/api-keys",
        json={"role": "client"},
        headers=admin.headers,
    )
    assert key.status_code == 201
    assert key.json()["person_id"] is None and key.json()["prefix"] == key.json()["key"][:12]
