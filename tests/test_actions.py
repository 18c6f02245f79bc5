"""Remediation, recovery, corrective and preventive actions over HTTP, on SQLite and PostgreSQL:
open → in_progress → done → verified (not by the owner), wont_do only with a manager's approval,
refused moves saying why, owners who must be active staff inside the client's wall, every
change on the timeline, who may act (the owner too), bad input refused with nothing written,
and the effectiveness check of a corrective action (its alarms: tests/test_action_alarms.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.follow_up_client import Crew, new_crew, problem, worked_incident
from tests.gateway_client import Api, Person, Tenant, eventually
from tests.lifecycle_client import ok
from tests.review_client import said


@pytest.fixture(scope="module")
def crew(api: Api) -> Crew:
    return new_crew(api, "Actions")


def due(hours: float = 48) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def add(api: Api, caller: Tenant, incident_id: str, owner: Person, **body: Any) -> httpx.Response:
    action = {
        "kind": "corrective",
        "title": "Monitor certificate expiry",
        "description": "Alert 30 days before any certificate expires",
        "owner_id": owner.person_id,
        "due_at": due(),
    } | body
    return api.http.post(
        f"/v1/incidents/{incident_id}/actions", json=action, headers=caller.headers
    )


def change(
    api: Api, caller: Tenant, incident_id: str, action_id: str, **body: Any
) -> httpx.Response:
    return api.http.patch(
        f"/v1/incidents/{incident_id}/actions/{action_id}", json=body, headers=caller.headers
    )


def confirm(
    api: Api, caller: Tenant, incident_id: str, action_id: str, *, effective: bool
) -> httpx.Response:
    return api.http.post(
        f"/v1/incidents/{incident_id}/actions/{action_id}/effectiveness",
        json={"effective": effective, "note": "Checked the monitoring dashboard"},
        headers=caller.headers,
    )


def actions_of(api: Api, caller: Tenant, incident_id: str) -> list[dict[str, Any]]:
    response = api.http.get(f"/v1/incidents/{incident_id}/actions", headers=caller.headers)
    items: list[dict[str, Any]] = ok(response)["items"]
    return items


def test_an_action_is_worked_to_verified_by_someone_other_than_its_owner(
    api: Api, crew: Crew
) -> None:
    incident_id = worked_incident(api, crew)
    # The owner need not take part in the incident: they may move their own action.
    owner = crew.bystander
    added = ok(add(api, crew.participant, incident_id, owner, verification_required=True))
    assert added["status"] == "open" and added["overdue"] is False
    assert added["owner"] == {"id": owner.person_id, "name": added["owner"]["name"]}
    assert added["created_by"]["id"] == crew.participant.person_id
    assert added["effectiveness"] is None
    action_id = added["id"]

    assert ok(change(api, owner, incident_id, action_id, status="in_progress"))["status"] == (
        "in_progress"
    )
    done = ok(change(api, owner, incident_id, action_id, status="done"))
    assert done["status"] == "done" and done["done_at"] is not None
    # A corrective action's effectiveness is checked some time after it is done.
    assert done["effectiveness"]["status"] == "scheduled"
    assert done["effectiveness"]["due_at"] > done["done_at"]

    refused = problem(change(api, owner, incident_id, action_id, status="verified"), 403)
    assert "other than its owner" in refused["detail"]
    verified = ok(change(api, crew.manager, incident_id, action_id, status="verified"))
    assert verified["status"] == "verified"
    assert verified["verified_by"]["id"] == crew.manager.person_id
    assert actions_of(api, crew.bystander, incident_id) == [verified]

    def moves() -> list[dict[str, Any]] | None:
        entries = api.timeline(crew.manager, incident_id)
        moved = [e for e in entries if e["type"].startswith("action.")]
        return moved if len(moved) == 4 else None

    moved = eventually(moves)
    assert moved[0]["summary"].startswith("added corrective action")
    assert ("title", "Monitor certificate expiry") in said(moved[0])
    assert [e["summary"].rsplit(": ", 1)[-1] for e in moved[1:]] == [
        "open → in_progress",
        "in_progress → done",
        "done → verified",
    ]
    client_view = api.http.get(f"/v1/incidents/{incident_id}/timeline", headers=crew.client.headers)
    assert "action." not in client_view.text and "Monitor certificate" not in client_view.text


def test_a_refused_move_says_why(api: Api, crew: Crew) -> None:
    incident_id = worked_incident(api, crew)
    action_id = ok(add(api, crew.manager, incident_id, crew.participant, kind="recovery"))["id"]
    refused = problem(change(api, crew.manager, incident_id, action_id, status="verified"), 409)
    assert "cannot go from open to verified" in refused["detail"]
    assert "in_progress, done" in refused["detail"]
    ok(change(api, crew.manager, incident_id, action_id, status="done"))
    # It asked for no verification: done is as far as it goes.
    refused = problem(change(api, crew.manager, incident_id, action_id, status="verified"), 409)
    assert "needs no verification" in refused["detail"]
    refused = problem(change(api, crew.manager, incident_id, action_id, status="done"), 409)
    assert "done already" in refused["detail"]
    # Back to open only with a reason: it was not done after all.
    problem(change(api, crew.manager, incident_id, action_id, status="open"), 422, field="reason")
    reopened = ok(
        change(api, crew.manager, incident_id, action_id, status="open", reason="Not deployed")
    )
    assert reopened["status"] == "open" and reopened["done_at"] is None


def test_wont_do_needs_a_managers_approval(api: Api, crew: Crew) -> None:
    incident_id = worked_incident(api, crew)
    owner = crew.participant
    action_id = ok(add(api, crew.manager, incident_id, owner, kind="preventive"))["id"]
    refused = problem(
        change(api, owner, incident_id, action_id, status="wont_do", reason="Too costly"), 403
    )
    assert "manager's approval" in refused["detail"] and "wont_do_requested" in refused["detail"]
    problem(
        change(api, owner, incident_id, action_id, status="wont_do_requested"), 422, field="reason"
    )
    asked = ok(
        change(api, owner, incident_id, action_id, status="wont_do_requested", reason="Too costly")
    )
    assert asked["status"] == "wont_do_requested" and asked["wont_do_reason"] == "Too costly"
    problem(change(api, owner, incident_id, action_id, status="wont_do"), 403)
    approved = ok(change(api, crew.manager, incident_id, action_id, status="wont_do"))
    assert approved["status"] == "wont_do" and approved["wont_do_reason"] == "Too costly"
    assert approved["approved_by"]["id"] == crew.manager.person_id
    refused = problem(change(api, crew.manager, incident_id, action_id, status="open"), 409)
    assert "final" in refused["detail"]

    # A manager decides at once, with a reason; a request may also be withdrawn.
    direct = ok(add(api, crew.manager, incident_id, owner, kind="remediation"))["id"]
    problem(change(api, crew.manager, incident_id, direct, status="wont_do"), 422, field="reason")
    decided = ok(
        change(api, crew.manager, incident_id, direct, status="wont_do", reason="Superseded")
    )
    assert decided["approved_by"]["id"] == crew.manager.person_id
    withdrawn = ok(add(api, crew.manager, incident_id, owner, kind="remediation"))["id"]
    ok(change(api, owner, incident_id, withdrawn, status="wont_do_requested", reason="Maybe"))
    back = ok(change(api, owner, incident_id, withdrawn, status="open"))
    assert back["status"] == "open" and back["wont_do_reason"] is None


def test_an_action_is_given_to_another_owner_or_another_due_time(api: Api, crew: Crew) -> None:
    incident_id = worked_incident(api, crew)
    action_id = ok(add(api, crew.manager, incident_id, crew.participant))["id"]
    later = due(hours=96)
    moved = ok(
        change(
            api,
            crew.participant,
            incident_id,
            action_id,
            owner_id=crew.bystander.person_id,
            due_at=later,
        )
    )
    assert moved["owner"]["id"] == crew.bystander.person_id
    assert datetime.fromisoformat(moved["due_at"]) == datetime.fromisoformat(later)
    assert moved["status"] == "open"
    problem(change(api, crew.manager, incident_id, action_id), 422, field="status")
    problem(change(api, crew.manager, incident_id, action_id, due_at=due(-1)), 422, field="due_at")


def test_an_owner_is_active_staff_inside_the_clients_wall(api: Api, crew: Crew) -> None:
    incident_id = worked_incident(api, crew)
    gone = api.new_person("responder")
    deactivated = api.http.patch(
        f"/v1/people/{gone.person_id}", json={"active": False}, headers=api.admin.headers
    )
    assert deactivated.status_code == 200, deactivated.text
    for owner_id in (
        crew.contact.person_id,  # a client's contact
        crew.walled.person_id,  # walled off from this client
        gone.person_id,
        "00000000-0000-0000-0000-000000000000",
        "not an id",
    ):
        body = {"owner_id": owner_id}
        problem(add(api, crew.manager, incident_id, crew.manager, **body), 422, field="owner_id")
    assert actions_of(api, crew.manager, incident_id) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "cosmetic"}, "kind"),
        ({"title": ""}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"description": "a\x00b"}, "description"),
        ({"due_at": "2020-01-01T00:00:00Z"}, "due_at"),
        ({"due_at": "2030-01-01T00:00:00"}, "due_at"),
        ({"due_at": None}, "due_at"),
        ({"verification_required": "maybe"}, "verification_required"),
        ({"status": "done"}, "status"),
    ],
)
def test_bad_actions_are_refused_naming_the_field_and_write_nothing(
    api: Api, crew: Crew, body: dict[str, Any], field: str
) -> None:
    incident_id = worked_incident(api, crew)
    problem(add(api, crew.manager, incident_id, crew.participant, **body), 422, field=field)
    assert actions_of(api, crew.manager, incident_id) == []


def test_who_may_add_move_and_read_actions(api: Api, crew: Crew) -> None:
    incident_id = worked_incident(api, crew)
    action_id = ok(add(api, crew.manager, incident_id, crew.participant))["id"]
    base = f"/v1/incidents/{incident_id}/actions"
    for caller in (crew.client, crew.contact, crew.other_client, crew.walled):
        problem(add(api, caller, incident_id, crew.participant), 404)
        problem(api.http.get(base, headers=caller.headers), 404)
        problem(change(api, caller, incident_id, action_id, status="in_progress"), 404)
        problem(confirm(api, caller, incident_id, action_id, effective=False), 404)
    # A responder who neither takes part nor owns it reads it, and changes nothing.
    assert [item["id"] for item in actions_of(api, crew.bystander, incident_id)] == [action_id]
    problem(add(api, crew.bystander, incident_id, crew.participant), 403)
    problem(change(api, crew.bystander, incident_id, action_id, status="in_progress"), 403)
    problem(confirm(api, crew.bystander, incident_id, action_id, effective=False), 403)
    unknown = "00000000-0000-0000-0000-000000000000"
    problem(change(api, crew.manager, incident_id, unknown, status="in_progress"), 404)
    elsewhere = worked_incident(api, crew)
    problem(change(api, crew.manager, elsewhere, action_id, status="in_progress"), 404)
    assert actions_of(api, crew.manager, incident_id)[0]["status"] == "open"


def test_a_done_corrective_action_can_be_found_not_effective_at_once_and_reopens(
    api: Api, crew: Crew
) -> None:
    incident_id = worked_incident(api, crew)
    owner = crew.participant
    action_id = ok(add(api, crew.manager, incident_id, owner))["id"]
    refused = problem(confirm(api, crew.manager, incident_id, action_id, effective=True), 409)
    assert "not scheduled until the action is done" in refused["detail"]
    ok(change(api, owner, incident_id, action_id, status="done"))
    # Effective is confirmed once the check is due (30 days here): the problem stayed away.
    refused = problem(confirm(api, crew.manager, incident_id, action_id, effective=True), 409)
    assert "due at" in refused["detail"]
    # Not effective can be said at any time: the problem came back.
    reopened = ok(confirm(api, crew.manager, incident_id, action_id, effective=False))
    assert reopened["status"] == "open" and reopened["done_at"] is None
    check = reopened["effectiveness"]
    assert check["status"] == "not_effective"
    assert check["checked_by"]["id"] == crew.manager.person_id
    assert check["note"] == "Checked the monitoring dashboard"
    redone = ok(change(api, owner, incident_id, action_id, status="done"))
    assert redone["effectiveness"]["status"] == "scheduled"
    assert redone["effectiveness"]["checked_by"] is None

    other = ok(add(api, crew.manager, incident_id, owner, kind="recovery"))["id"]
    ok(change(api, owner, incident_id, other, status="done"))
    refused = problem(confirm(api, crew.manager, incident_id, other, effective=False), 409)
    assert "a recovery action has no effectiveness check" in refused["detail"]
    problem(
        api.http.post(
            f"/v1/incidents/{incident_id}/actions/{action_id}/effectiveness",
            json={"effective": False},
            headers=crew.manager.headers,
        ),
        422,
        field="note",
    )
