"""Keys expire, record when they were last used (at most once a minute), and keys, people and
clients say who created them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from services.gateway.models import api_keys
from tests.gateway_client import Api, eventually
from tests.gateway_database import on_gateway_database
from tests.test_bad_input import assert_problem


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def listed_key(api: Api, key_id: str, person_id: str) -> dict[str, Any]:
    keys = api.pages("/v1/api-keys", api.admin, person_id=person_id, limit=200)
    return next(key for key in keys if key["id"] == key_id)


def audit_length(api: Api) -> int:
    newest = api.http.get("/v1/audit", params={"limit": 1}, headers=api.admin.headers)
    assert newest.status_code == 200, newest.text
    items = newest.json()["items"]
    return items[0]["position"] + 1 if items else 0


@pytest.mark.parametrize(
    "expires_at",
    [
        (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "2020-01-01T00:00:00Z",
        "2099-01-01T00:00:00",  # no offset: which zone would it be?
        "tomorrow",
    ],
)
def test_a_key_that_would_expire_before_it_is_issued_is_a_422_naming_the_field(
    api: Api, expires_at: str
) -> None:
    person = api.new_person("responder")
    client = api.new_client("Expiry LLP")
    before = {key["id"] for key in api.pages("/v1/api-keys", api.admin, limit=200)}
    entries = audit_length(api)

    personal = api.http.post(
        f"/v1/people/{person.person_id}/api-keys",
        json={"expires_at": expires_at},
        headers=api.admin.headers,
    )
    assert_problem(personal, 422, "expires_at")
    system = api.http.post(
        f"/v1/clients/{client.id}/api-keys",
        json={"role": "client", "expires_at": expires_at},
        headers=api.admin.headers,
    )
    assert_problem(system, 422, "expires_at")

    # Nothing was written: no key, no audit entry.
    assert {key["id"] for key in api.pages("/v1/api-keys", api.admin, limit=200)} == before
    assert audit_length(api) == entries


def test_a_key_works_until_it_expires_then_is_refused_like_a_revoked_one(api: Api) -> None:
    person = api.new_person("responder")
    expires_at = datetime.now(UTC) + timedelta(hours=1)
    issued = api.http.post(
        f"/v1/people/{person.person_id}/api-keys",
        json={"expires_at": expires_at.isoformat()},
        headers=api.admin.headers,
    )
    assert issued.status_code == 201, issued.text
    key = issued.json()
    assert datetime.fromisoformat(key["expires_at"]) == expires_at
    assert api.http.get("/v1/incidents", headers=bearer(key["key"])).status_code == 200
    shown = listed_key(api, key["id"], person.person_id)
    assert datetime.fromisoformat(shown["expires_at"]) == expires_at
    assert shown["revoked_at"] is None

    # An hour on, as far as the key is concerned. Edited behind the gateway's back, which sees
    # it once its cache of who the key is lapses (FIREBREAK_PRINCIPAL_CACHE_SECONDS).
    on_gateway_database(
        api.platform,
        update(api_keys)
        .where(api_keys.c.id == key["id"])
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)),
    )
    eventually(lambda: api.http.get("/v1/incidents", headers=bearer(key["key"])).status_code == 401)
    expired = assert_problem(api.http.get("/v1/incidents", headers=bearer(key["key"])), 401)
    api.http.delete(f"/v1/api-keys/{person.key_id}", headers=api.admin.headers)
    revoked = assert_problem(api.http.get("/v1/incidents", headers=person.headers), 401)
    # Nothing tells an expired key from a revoked or unknown one.
    assert expired == revoked
    unknown = api.http.get("/v1/incidents", headers=bearer("fbk_" + "x" * 43))
    assert assert_problem(unknown, 401) == expired


def test_a_key_of_no_person_expires_by_itself(api: Api) -> None:
    client = api.new_client("Short Lived LLP")
    issued = api.http.post(
        f"/v1/clients/{client.id}/api-keys",
        json={
            "role": "client",
            "expires_at": (datetime.now(UTC) + timedelta(seconds=2)).isoformat(),
        },
        headers=api.admin.headers,
    )
    assert issued.status_code == 201, issued.text

    def refused() -> bool:
        response = api.http.get("/v1/incidents", headers=bearer(issued.json()["key"]))
        return response.status_code == 401

    eventually(refused)
    # The client's other key, without an expiry, still works.
    assert api.http.get("/v1/incidents", headers=client.headers).status_code == 200


def test_last_used_at_is_written_at_most_once_a_minute(api: Api) -> None:
    person = api.new_person("responder")

    def age(last_used_at: datetime) -> None:
        on_gateway_database(
            api.platform,
            update(api_keys)
            .where(api_keys.c.id == person.key_id)
            .values(last_used_at=last_used_at),
        )

    def stored() -> datetime:
        (row,) = on_gateway_database(
            api.platform, select(api_keys.c.last_used_at).where(api_keys.c.id == person.key_id)
        )
        moment: datetime = row.last_used_at
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    assert api.http.get("/v1/incidents", headers=person.headers).status_code == 200
    eventually(lambda: listed_key(api, person.key_id, person.person_id)["last_used_at"])

    # Used half a minute ago: this use is not written.
    recent = datetime.now(UTC) - timedelta(seconds=30)
    age(recent)
    assert api.http.get("/v1/incidents", headers=person.headers).status_code == 200
    assert stored() == recent

    # Used two minutes ago: a use is written, once the gateway reads the key again (its cache
    # of who the key is lapses: FIREBREAK_PRINCIPAL_CACHE_SECONDS).
    stale = datetime.now(UTC) - timedelta(minutes=2)
    age(stale)

    def written() -> bool:
        assert api.http.get("/v1/incidents", headers=person.headers).status_code == 200
        return stored() > stale

    eventually(written)
    shown = listed_key(api, person.key_id, person.person_id)["last_used_at"]
    assert datetime.fromisoformat(shown) == stored()


def test_keys_people_and_clients_say_who_created_them(api: Api) -> None:
    admin = api.new_person("admin")
    client = api.http.post("/v1/clients", json={"name": "Made By LLP"}, headers=admin.headers)
    assert client.status_code == 201, client.text
    assert client.json()["created_by"] == admin.person_id
    system_key = api.http.post(
        f"/v1/clients/{client.json()['id']}/api-keys",
        json={"role": "client"},
        headers=admin.headers,
    )
    assert system_key.status_code == 201, system_key.text
    assert system_key.json()["created_by"] == admin.person_id
    assert system_key.json()["expires_at"] is None

    body = {"name": "Made Person", "email": "made-person@firm.example", "role": "responder"}
    person = api.http.post("/v1/people", json=body, headers=admin.headers)
    assert person.status_code == 201, person.text
    assert person.json()["created_by"] == admin.person_id
    fetched = api.http.get(f"/v1/people/{person.json()['id']}", headers=admin.headers)
    assert fetched.json()["created_by"] == admin.person_id
    personal = api.http.post(f"/v1/people/{person.json()['id']}/api-keys", headers=admin.headers)
    assert personal.status_code == 201, personal.text

    shown = listed_key(api, personal.json()["id"], person.json()["id"])
    assert shown["created_by"] == admin.person_id
    keys = api.pages("/v1/api-keys", api.admin, client_id=client.json()["id"], limit=200)
    assert [key["created_by"] for key in keys] == [admin.person_id]
    # The admin itself was made with the bootstrap key, a key of no person: its id says so.
    assert (
        api.http.get(f"/v1/people/{admin.person_id}", headers=admin.headers).json()["created_by"]
        == "bootstrap"
    )
    # The bootstrap key is made by the gateway itself.
    bootstrap = next(
        key for key in api.pages("/v1/api-keys", api.admin, limit=200) if key["id"] == "bootstrap"
    )
    assert bootstrap["created_by"] is None
