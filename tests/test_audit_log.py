"""The audit log: every administrative act once, with who did it to what; never a secret; read
by admins in pages; a hash chain that verifies, and names the first entry changed or removed
behind the gateway's back (in its SQLite file or PostgreSQL database)."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update

from services.gateway import audit
from services.gateway.models import audit_entries
from tests.gateway_client import Api, Person
from tests.gateway_database import on_gateway_database
from tests.test_bad_input import assert_problem

AUDIT = "/v1/audit"


def entries(api: Api, **params: Any) -> list[dict[str, Any]]:
    """Every entry the filters select, newest first, following cursors."""
    return api.pages(AUDIT, api.admin, limit=200, **params)


def verification(api: Api) -> dict[str, Any]:
    response = api.http.get(f"{AUDIT}/verify", headers=api.admin.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def test_every_administrative_act_is_recorded_once_with_its_actor_and_target(api: Api) -> None:
    admin = api.new_person("admin")
    staff = api.new_person("responder")
    as_admin = admin.headers
    acts: list[tuple[str, str, str]] = []  # (action, target kind, target id), in order

    client = ok(api.http.post("/v1/clients", json={"name": "Audited LLP"}, headers=as_admin), 201)
    acts.append(("client.created", "client", client["id"]))
    expires_at = (datetime.now().astimezone() + timedelta(days=30)).isoformat()
    system_key = ok(
        api.http.post(
            f"/v1/clients/{client['id']}/api-keys",
            json={"role": "client", "expires_at": expires_at},
            headers=as_admin,
        ),
        201,
    )
    acts.append(("api_key.issued", "api_key", system_key["id"]))
    body = {"name": "Audited Person", "email": "audited@firm.example", "role": "responder"}
    person = ok(api.http.post("/v1/people", json=body, headers=as_admin), 201)
    acts.append(("person.created", "person", person["id"]))
    personal_key = ok(api.http.post(f"/v1/people/{person['id']}/api-keys", headers=as_admin), 201)
    acts.append(("api_key.issued", "api_key", personal_key["id"]))
    ok(
        api.http.patch(
            f"/v1/people/{person['id']}",
            json={"role": "manager", "phone": "+44 20 7946 0001", "clients": [client["id"]]},
            headers=as_admin,
        )
    )
    acts.append(("person.changed", "person", person["id"]))
    ok(api.http.patch(f"/v1/people/{person['id']}", json={"active": False}, headers=as_admin))
    acts.append(("person.changed", "person", person["id"]))
    ok(api.http.delete(f"/v1/api-keys/{system_key['id']}", headers=as_admin), 204)
    acts.append(("api_key.revoked", "api_key", system_key["id"]))
    # Revoking it again changes nothing, and records nothing.
    ok(api.http.delete(f"/v1/api-keys/{system_key['id']}", headers=as_admin), 204)

    layer = {
        "participants": [staff.person_id],
        "rotation": "daily",
        "handoff_time": "09:00",
        "starts_at": "2027-01-04T09:00:00Z",
    }
    schedule_body = {"name": "Audited rota", "timezone": "Europe/London", "layers": [layer]}
    schedule = ok(api.http.post("/v1/schedules", json=schedule_body, headers=as_admin), 201)
    acts.append(("schedule.created", "schedule", schedule["id"]))
    schedule_path = f"/v1/schedules/{schedule['id']}"
    ok(api.http.patch(schedule_path, json={"name": "Audited rota 2"}, headers=as_admin))
    acts.append(("schedule.changed", "schedule", schedule["id"]))
    ok(api.http.delete(schedule_path, headers=as_admin), 204)
    acts.append(("schedule.deleted", "schedule", schedule["id"]))

    steps = [{"targets": [{"schedule_id": "default"}], "after_minutes": 1}]
    policy_body = {"name": "Audited", "steps": steps, "priorities": ["P1"]}
    policy_body["client_id"] = client["id"]
    policy = ok(api.http.post("/v1/escalation-policies", json=policy_body, headers=as_admin), 201)
    acts.append(("escalation_policy.created", "escalation_policy", policy["id"]))
    policy_path = f"/v1/escalation-policies/{policy['id']}"
    ok(api.http.patch(policy_path, json={"priorities": ["P1", "P2"]}, headers=as_admin))
    acts.append(("escalation_policy.changed", "escalation_policy", policy["id"]))
    ok(api.http.delete(policy_path, headers=as_admin), 204)
    acts.append(("escalation_policy.deleted", "escalation_policy", policy["id"]))

    rule = {"name": "inform", "priorities": ["P1"], "within_minutes": 60, "met_by": "manual"}
    rules_path = f"/v1/clients/{client['id']}/deadline-rules"
    ok(api.http.put(rules_path, json={"rules": [rule]}, headers=as_admin))
    acts.append(("deadline_rules.replaced", "deadline_rules", client["id"]))

    methods = f"/v1/people/{staff.person_id}/contact-methods"
    slack_url = f"https://hooks.slack.com/services/T000/B000/{secrets.token_hex(12)}"
    slack = ok(
        api.http.post(methods, json={"kind": "slack", "address": slack_url}, headers=as_admin), 201
    )
    acts.append(("contact_method.added", "contact_method", slack["id"]))
    webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    webhook = {
        "kind": "webhook",
        "address": "https://hooks.firm.example/a",
        "secret": webhook_secret,
    }
    hook = ok(api.http.post(methods, json=webhook, headers=as_admin), 201)
    acts.append(("contact_method.added", "contact_method", hook["id"]))
    ok(api.http.delete(f"{methods}/{slack['id']}", headers=as_admin), 204)
    acts.append(("contact_method.deleted", "contact_method", slack["id"]))

    recorded = entries(api, actor=admin.person_id)
    assert [
        (entry["action"], entry["target"]["kind"], entry["target"]["id"])
        for entry in reversed(recorded)
    ] == acts
    for entry in recorded:
        assert entry["actor"] == {
            "id": admin.person_id,
            "kind": "admin",
            "name": entry["actor"]["name"],
            "key_id": admin.key_id,
        }
    # Newest first, one chain: each entry follows the one listed after it.
    positions = [entry["position"] for entry in recorded]
    assert positions == sorted(positions, reverse=True)
    by_action = {entry["action"]: entry for entry in recorded}
    assert by_action["client.created"]["summary"] == {"name": "Audited LLP"}
    assert by_action["api_key.revoked"]["summary"] == {"owner_id": system_key["id"]}
    changes = [entry["summary"] for entry in recorded if entry["action"] == "person.changed"]
    assert changes == [
        {"changed": ["active"], "active": False},
        {"changed": ["clients", "phone", "role"], "role": "manager", "clients": [client["id"]]},
    ]
    (issued,) = [
        entry
        for entry in recorded
        if entry["target"]["id"] == system_key["id"] and entry["action"] == "api_key.issued"
    ]
    assert issued["summary"] | {"expires_at": None} == {
        "role": "client",
        "client_id": client["id"],
        "person_id": None,
        "expires_at": None,
    }
    assert datetime.fromisoformat(issued["summary"]["expires_at"]) == datetime.fromisoformat(
        expires_at
    )

    # Who created the admin: the bootstrap key, once, as the operator.
    (made,) = [
        entry for entry in entries(api, kind="person") if entry["target"]["id"] == admin.person_id
    ]
    assert made["actor"]["id"] == made["actor"]["key_id"] == "bootstrap"

    # Never a secret: no key or its prefix, no webhook secret, no Slack URL, no contact details.
    text = api.http.get(AUDIT, params={"limit": 200}, headers=api.admin.headers).text
    for secret in (
        system_key["key"],
        system_key["prefix"],
        personal_key["key"],
        personal_key["prefix"],
        webhook_secret,
        slack_url,
        "hooks.firm.example",
        "+442079460001",
        "audited@firm.example",
    ):
        assert secret not in text


def test_a_refused_act_records_nothing(api: Api) -> None:
    admin = api.new_person("admin")
    before = entries(api, actor=admin.person_id)
    taken = api.new_person("responder")
    duplicate = {"name": "Twice", "email": taken.email, "role": "responder"}
    assert_problem(api.http.post("/v1/people", json=duplicate, headers=admin.headers), 409)
    bad = {"name": "Bad", "email": "not-an-email", "role": "responder"}
    assert_problem(api.http.post("/v1/people", json=bad, headers=admin.headers), 422, "email")
    client = api.new_client("Refused LLP")
    admin_key = {"role": "admin"}  # only the operator has admin keys
    refused = api.http.post(
        f"/v1/clients/{client.id}/api-keys", json=admin_key, headers=admin.headers
    )
    assert_problem(refused, 422, "role")
    missing = api.http.delete("/v1/api-keys/" + str(uuid.uuid4()), headers=admin.headers)
    assert_problem(missing, 404)
    assert entries(api, actor=admin.person_id) == before


def test_the_log_pages_newest_first_and_filters_by_actor_kind_and_time(api: Api) -> None:
    admin = api.new_person("admin")
    started = datetime.now().astimezone()
    for number in range(3):
        ok(
            api.http.post("/v1/clients", json={"name": f"Paged {number}"}, headers=admin.headers),
            201,
        )
    person = api.new_person("responder")  # by the bootstrap key, not this admin
    mine = entries(api, actor=admin.person_id)
    assert [entry["summary"]["name"] for entry in mine] == ["Paged 2", "Paged 1", "Paged 0"]

    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"actor": admin.person_id, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = ok(api.http.get(AUDIT, params=params, headers=api.admin.headers))
        pages.append([entry["id"] for entry in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [[mine[0]["id"], mine[1]["id"]], [mine[2]["id"]]]

    people = entries(api, kind="person", since=started.isoformat())
    assert person.person_id in {entry["target"]["id"] for entry in people}
    assert {entry["target"]["kind"] for entry in people} == {"person"}
    assert all(datetime.fromisoformat(entry["at"]) >= started for entry in people)
    later = (datetime.now().astimezone() + timedelta(hours=1)).isoformat()
    assert entries(api, since=later) == []

    for params, field in (
        ({"kind": "incident"}, "kind"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"since": "yesterday"}, "since"),
        ({"actor": "no such id!"}, "actor"),
        ({"limit": "0"}, "limit"),
    ):
        response = api.http.get(AUDIT, params=params, headers=api.admin.headers)
        assert_problem(response, 422, field)


def test_only_admins_read_the_log(api: Api) -> None:
    client = api.new_client("Curious LLP")
    callers = [client, api.new_person("manager"), api.new_person("client", client_id=client.id)]
    for caller in callers:
        for path in (AUDIT, f"{AUDIT}/verify"):
            assert_problem(api.http.get(path, headers=caller.headers), 403)
    for path in (AUDIT, f"{AUDIT}/verify"):
        assert_problem(api.http.get(path), 401)
    admin = api.new_person("admin")
    assert api.http.get(AUDIT, headers=admin.headers).status_code == 200


@contextmanager
def restored_afterwards(api: Api, position: int) -> Iterator[dict[str, Any]]:
    """The stored row at `position`, put back exactly as it was however the test ends: the
    platform is shared with other tests."""
    (row,) = on_gateway_database(
        api.platform, select(audit_entries).where(audit_entries.c.position == position)
    )
    original = dict(row._mapping)
    try:
        yield original
    finally:
        on_gateway_database(
            api.platform, delete(audit_entries).where(audit_entries.c.position == position)
        )
        on_gateway_database(api.platform, insert(audit_entries).values(**original))


def newest_entry_of(api: Api, admin: Person) -> dict[str, Any]:
    entry: dict[str, Any] = entries(api, actor=admin.person_id)[0]
    return entry


def test_the_chain_verifies_and_names_the_first_entry_changed_behind_its_back(api: Api) -> None:
    admin = api.new_person("admin")
    ok(api.http.post("/v1/clients", json={"name": "Honest LLP"}, headers=admin.headers), 201)
    target = newest_entry_of(api, admin)
    ok(api.http.post("/v1/clients", json={"name": "Later LLP"}, headers=admin.headers), 201)
    intact = verification(api)
    assert intact["valid"] is True and intact["first_bad"] is None
    assert intact["entries"] >= target["position"] + 2

    position = target["position"]
    with restored_afterwards(api, position):
        # The summary rewritten, its hash left: the entry no longer matches its hash.
        on_gateway_database(
            api.platform,
            update(audit_entries)
            .where(audit_entries.c.position == position)
            .values(summary='{"name":"Dishonest LLP"}'),
        )
        changed = verification(api)
        assert changed["valid"] is False
        assert changed["entries"] == position
        assert changed["first_bad"]["position"] == position
        assert changed["first_bad"]["id"] == target["id"]
        assert "changed after it was recorded" in changed["first_bad"]["problem"]

    with restored_afterwards(api, position) as original:
        # The actor rewritten and its hash recomputed to match: now the entry after it does
        # not follow it, and is named.
        forged = audit.Entry(
            position=position,
            id=original["id"],
            at=original["at"],
            actor={
                "id": "someone-else",
                "kind": original["actor_kind"],
                "name": original["actor_name"],
                "key_id": original["actor_key_id"],
            },
            action=original["action"],
            target_kind=original["target_kind"],
            target_id=original["target_id"],
            summary=json.loads(original["summary"]),
            prev_hash=original["prev_hash"],
        )
        on_gateway_database(
            api.platform,
            update(audit_entries)
            .where(audit_entries.c.position == position)
            .values(actor_id="someone-else", entry_hash=audit.entry_hash(forged)),
        )
        relinked = verification(api)
        assert relinked["valid"] is False
        assert relinked["first_bad"]["position"] == position + 1
        assert "does not follow" in relinked["first_bad"]["problem"]

    with restored_afterwards(api, position):
        on_gateway_database(
            api.platform, delete(audit_entries).where(audit_entries.c.position == position)
        )
        removed = verification(api)
        assert removed["valid"] is False
        assert removed["first_bad"]["position"] == position + 1
        assert "removed" in removed["first_bad"]["problem"]

    assert verification(api)["valid"] is True


def test_removing_the_last_entry_shows_against_the_head(api: Api) -> None:
    admin = api.new_person("admin")
    ok(api.http.post("/v1/clients", json={"name": "Last LLP"}, headers=admin.headers), 201)
    last = newest_entry_of(api, admin)
    assert verification(api)["entries"] == last["position"] + 1  # nothing after it
    with restored_afterwards(api, last["position"]):
        on_gateway_database(
            api.platform,
            delete(audit_entries).where(audit_entries.c.position == last["position"]),
        )
        cut = verification(api)
        assert cut["valid"] is False
        assert cut["entries"] == last["position"]
        assert cut["first_bad"]["position"] is None
        assert "removed" in cut["first_bad"]["problem"]
    assert verification(api)["valid"] is True


def test_acts_at_the_same_time_form_one_chain(api: Api) -> None:
    """On PostgreSQL the gateway's requests run in transactions at once; the head's row lock
    keeps their entries in one chain, each position once."""
    admin = api.new_person("admin")

    def create(number: int) -> int:
        body = {"name": f"Concurrent {number}"}
        return api.http.post("/v1/clients", json=body, headers=admin.headers).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(create, range(24))) == {201}
    recorded = entries(api, actor=admin.person_id)
    assert sorted(entry["summary"]["name"] for entry in recorded) == sorted(
        f"Concurrent {number}" for number in range(24)
    )
    result = verification(api)
    assert result["valid"] is True, result
    assert result["entries"] > max(entry["position"] for entry in recorded)
