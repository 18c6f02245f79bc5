"""Contractual deadlines against the real processes and a real SMTP server: a client's rules,
set and read by managers and admins; a deadline started when an incident of a listed priority
is triaged (or reclassified into one); met by the first status update to the client, or
recorded met by hand; missed, paging the firm's managers; cancelled when the incident is
declined, while its regulatory deadlines stay."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest

from firebreak.launcher import Platform
from tests.conftest import on_backend
from tests.gateway_client import Api, Tenant, eventually
from tests.lifecycle_client import ok, run
from tests.mail import Mailbox
from tests.review_client import said
from tests.test_bad_input import assert_problem


@pytest.fixture
def api(mail_platform: Platform) -> Api:
    return Api(mail_platform)


def rules_path(client_id: str) -> str:
    return f"/v1/clients/{client_id}/deadline-rules"


def rule(name: str = "inform-p1", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "Inform the client within the agreed time of a P1 being declared",
        "priorities": ["P1"],
        "within_minutes": 60,
        "met_by": "client_update",
    } | fields


def put_rules(api: Api, caller: Tenant, client_id: str, *rules: dict[str, Any]) -> httpx.Response:
    return api.http.put(rules_path(client_id), json={"rules": list(rules)}, headers=caller.headers)


def report(api: Api, client: Tenant, **classification: str) -> dict[str, Any]:
    """An incident with a title of its own (references repeat across clients), once triaged."""
    incident: dict[str, Any] = ok(
        api.report(client, title=f"Data leak {uuid4()}", **classification)
    )
    return eventually(lambda: _triaged(api, incident["id"]))


def _triaged(api: Api, incident_id: str) -> dict[str, Any] | None:
    incident = api.incident(api.admin, incident_id)
    return incident if incident["status"] == "triaged" else None


P1 = {"impact": "extensive", "urgency": "critical"}
P3 = {"impact": "moderate", "urgency": "medium"}


def deadlines(api: Api, incident_id: str) -> list[dict[str, Any]]:
    response = api.http.get(f"/v1/incidents/{incident_id}/deadlines", headers=api.admin.headers)
    items: list[dict[str, Any]] = ok(response)["items"]
    return items


def contractual(api: Api, incident_id: str, **wanted: Any) -> dict[str, Any] | None:
    """The incident's contractual deadline once it has all of `wanted`; None until then."""
    for item in deadlines(api, incident_id):
        if item["kind"] == "contractual" and all(item[k] == v for k, v in wanted.items()):
            return item
    return None


def post_update(api: Api, caller: Tenant, incident_id: str, audience: str) -> dict[str, Any]:
    response = api.http.post(
        f"/v1/incidents/{incident_id}/updates",
        json={"audience": audience, "body": f"An {audience} update on the leak."},
        headers=caller.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# --- The rules ------------------------------------------------------------------------------


def test_managers_and_admins_set_and_read_a_clients_rules(api: Api) -> None:
    client, other = api.new_client(), api.new_client("Other LLP")
    manager, admin = api.new_person("manager"), api.new_person("admin")
    assert ok(api.http.get(rules_path(client.id), headers=manager.headers)) == {
        "client_id": client.id,
        "rules": [],
        "updated_at": None,
    }
    two = [rule(), rule("report-p2", priorities=["P2", "P1"], within_minutes=0.5, met_by="manual")]
    written = ok(put_rules(api, manager, client.id, *two))
    assert written["rules"] == two and written["updated_at"]
    assert ok(api.http.get(rules_path(client.id), headers=admin.headers)) == written
    assert ok(put_rules(api, admin, client.id))["rules"] == []

    walled = api.new_person("manager", clients=[other.id])
    for caller, status in (
        (api.new_person("responder"), 403),
        (client, 403),
        (api.new_person("client", client_id=client.id), 403),
        (walled, 404),  # outside the wall: as if the client did not exist
    ):
        assert_problem(api.http.get(rules_path(client.id), headers=caller.headers), status)
        assert_problem(put_rules(api, caller, client.id, rule()), status)
    unknown = "00000000-0000-0000-0000-000000000000"
    assert_problem(put_rules(api, manager, unknown, rule()), 404)
    assert ok(api.http.get(rules_path(client.id), headers=manager.headers))["rules"] == []


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ([rule(priorities=["P5"])], "rules.0.priorities.0"),
        ([rule(priorities=[])], "rules.0.priorities"),
        ([rule(within_minutes=0)], "rules.0.within_minutes"),
        ([rule(within_minutes="60")], "rules.0.within_minutes"),
        ([rule(within_minutes=10**9)], "rules.0.within_minutes"),
        ([rule(met_by="email")], "rules.0.met_by"),
        ([rule(name="")], "rules.0.name"),
        ([rule(), rule(colour="red")], "rules.1.colour"),
        ([rule(), rule()], "rules"),  # the same name twice
    ],
)
def test_bad_rules_are_refused_naming_the_field_and_change_nothing(
    api: Api, rules: list[dict[str, Any]], field: str
) -> None:
    client = api.new_client()
    ok(put_rules(api, api.admin, client.id, rule("kept")))
    assert_problem(put_rules(api, api.admin, client.id, *rules), 422, field)
    kept = ok(api.http.get(rules_path(client.id), headers=api.admin.headers))["rules"]
    assert [item["name"] for item in kept] == ["kept"]


# --- Deadlines from the rules ---------------------------------------------------------------


def test_the_first_client_update_meets_a_contractual_deadline(api: Api) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    ok(put_rules(api, manager, client.id, rule(within_minutes=0.5)))
    incident = report(api, client, **P1)

    started = eventually(lambda: contractual(api, incident["id"], status="pending"))
    assert started["rule"] == "inform-p1" and started["flag"] is None
    assert started["source"].startswith("Inform the client")
    assert started["met_by"] == "client_update"
    counted_from = datetime.fromisoformat(incident["triaged_at"])
    due = datetime.fromisoformat(started["due_at"])
    assert abs(due - counted_from - timedelta(seconds=30)) < timedelta(seconds=1)

    post_update(api, manager, incident["id"], "internal")  # not the client: meets nothing
    update = post_update(api, manager, incident["id"], "client")
    met = eventually(lambda: contractual(api, incident["id"], status="met"))
    assert met["reference"] == update["id"] and met["late"] is False
    line = eventually(
        lambda: [e for e in api.timeline(api.admin, incident["id"]) if e["type"] == "deadline.met"]
    )[0]
    assert ("rule", "inform-p1") in said(line)
    # Internal: the client's view of the timeline has no deadline in it.
    assert not [e for e in api.timeline(client, incident["id"]) if "deadline" in e["type"]]


@on_backend("postgresql", "mail_platform")
def test_a_contractual_deadline_no_update_meets_is_missed_and_pages_the_managers(
    api: Api, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    client = api.new_client()
    manager = api.new_person("manager")
    ok(put_rules(api, manager, client.id, rule(within_minutes=0.1)))
    incident = report(api, client, **P1)

    eventually(lambda: contractual(api, incident["id"], status="missed"), timeout=30)

    def missed_pages() -> list[str]:
        subjects = [" ".join(str(m["Subject"]).split()) for m in box.to(manager.email)]
        return [s for s in subjects if incident["title"] in s and "MISSED" in s]

    assert "inform-p1" in eventually(missed_pages)[0]


def test_a_manual_rule_is_recorded_met_and_only_listed_priorities_start_one(api: Api) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    ok(put_rules(api, manager, client.id, rule("report-p1", met_by="manual")))
    minor = report(api, client, **P3)
    major = report(api, client, **P1)

    pending = eventually(lambda: contractual(api, major["id"], status="pending"))
    recorded = api.http.post(
        f"/v1/incidents/{major['id']}/deadlines/{pending['id']}/met",
        json={"reference": "Phoned the client's CISO"},
        headers=manager.headers,
    )
    assert ok(recorded)["status"] == "met" and ok(recorded)["late"] is False
    # Notify has handled the P3's triage (its notification is out), and started nothing for it.
    eventually(lambda: api.incident(api.admin, minor["id"])["notified_at"])
    assert deadlines(api, minor["id"]) == []


def test_reclassifying_into_a_listed_priority_starts_the_rule(api: Api) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    ok(put_rules(api, manager, client.id, rule(within_minutes=120, met_by="manual")))
    incident = report(api, client, **P3)
    eventually(lambda: api.incident(api.admin, incident["id"])["notified_at"])
    assert deadlines(api, incident["id"]) == []

    ok(run(api, manager, incident["id"], "reclassify", {**P1, "reason": "Customer data is out"}))
    started = eventually(lambda: contractual(api, incident["id"]))
    # Counted from the reclassification: due two hours after it, not after the triage.
    assert datetime.fromisoformat(started["due_at"]) > datetime.fromisoformat(
        incident["triaged_at"]
    ) + timedelta(minutes=120)
    # Changing the rules later does not rewrite a deadline already started.
    ok(put_rules(api, manager, client.id, rule(within_minutes=5, met_by="manual")))
    assert contractual(api, incident["id"]) == started


def test_declining_cancels_contractual_deadlines_and_keeps_regulatory_ones(api: Api) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    ok(put_rules(api, manager, client.id, rule("ack-p3", priorities=["P3"], met_by="manual")))
    incident = report(api, client, **P3)
    pending = eventually(lambda: contractual(api, incident["id"], status="pending"))
    flagged = api.http.post(
        f"/v1/incidents/{incident['id']}/flags",
        json={"flags": ["personal_data"]},
        headers=manager.headers,
    )
    assert ok(flagged)["flagged"] == ["personal_data"]

    ok(run(api, manager, incident["id"], "decline"))
    cancelled = eventually(lambda: contractual(api, incident["id"], status="cancelled"))
    assert cancelled["cancelled_because"] == "declined"
    regulatory = [item for item in deadlines(api, incident["id"]) if item["kind"] == "regulatory"]
    assert [item["status"] for item in regulatory] == ["pending"]
    refused = api.http.post(
        f"/v1/incidents/{incident['id']}/deadlines/{pending['id']}/met",
        json={"reference": "too late"},
        headers=manager.headers,
    )
    assert_problem(refused, 409)
