"""What a client sees of an incident its firm works on: the milestones, never the work.

A client's keys (its system's key and a contact's personal key) read the incident, the list and
the timeline. They must see the status, the priority and the milestones, and nothing of how the
firm works the incident: who holds which role, who responds, task notes, containment and
resolution summaries, reasons, or any trace of the firm's people (name, email, phone, id). A
manager reads the same incident alongside, to prove all of that exists and is being withheld.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.gateway_client import Api, Person, Tenant, eventually
from tests.lifecycle_client import finish_containment, ok, report_triaged, run, tasks

# The milestones a client follows, in the order they happened, and the internal events that
# must never reach its timeline.
CLIENT_TIMELINE = [
    "incident.reported",
    "incident.triaged",
    "incident.acknowledged",
    "incident.contained",
    "incident.resolved",
    "incident.reopened",
    "incident.reclassified",
]
INTERNAL_EVENTS = {
    "incident.role_assigned",
    "incident.responder_added",
    "incident.responder_removed",
    "task.added",
    "task.updated",
    "notification.sent",
    "evidence.collected",
}
# Who a client may be told did something: itself, the platform, or "the firm" as a whole.
CLIENT_ACTOR_KINDS = {"client_system", "client_contact", "system"}
# What a client tries to write into a task; it must not land anywhere.
CLIENT_WORDS = "Written by the client"


@dataclass(frozen=True)
class StaffMember:
    person: Person
    name: str
    phone: str  # as the API stores it (E.164)

    def traces(self) -> list[str]:
        """Every string that would identify this person in a response."""
        return [self.name, self.person.email, self.phone, self.person.person_id, self.person.key_id]


@dataclass(frozen=True)
class WorkedIncident:
    incident_id: str
    client: Tenant
    contact: Person
    manager: StaffMember
    staff: list[StaffMember]
    secrets: list[str]
    task_id: str


def _staff(api: Api, role: str, label: str, phone: str) -> StaffMember:
    tag = uuid.uuid4().hex[:8]
    name = f"{label} Staffer-{tag}"
    person = api.new_person(
        role, name=name, email=f"{label.lower()}-{tag}@firm.example", phone=phone
    )
    stored = api.http.get(f"/v1/people/{person.person_id}", headers=api.admin.headers)
    assert stored.status_code == 200, stored.text
    assert stored.json()["phone"], stored.text
    return StaffMember(person, name, stored.json()["phone"])


@pytest.fixture(scope="module")
def worked(api: Api) -> WorkedIncident:
    """An incident of client A taken through every kind of internal work, by known staff."""
    tag = uuid.uuid4().hex[:8]
    secret = {
        word: f"{word}-SECRET-{tag}"
        for word in ("NOTE", "TASK", "BRIEF", "CONTAIN", "RESOLVE", "REOPEN", "RECLASS")
    }
    client = api.new_client(f"Client A {tag}")
    contact = api.new_person("client", client_id=client.id, name=f"Client Contact {tag}")
    manager = _staff(api, "manager", "Commander", "+44 20 7946 0101")
    comms = _staff(api, "responder", "Comms", "+44 20 7946 0102")
    scribe = _staff(api, "responder", "Scribe", "+44 20 7946 0103")
    responder = _staff(api, "responder", "Responder", "+44 20 7946 0104")

    # A P2 (significant, high); reclassified to P1 at the end.
    incident_id = report_triaged(api, client)
    who = manager.person
    acknowledged = ok(run(api, who, incident_id, "acknowledge"))
    assert acknowledged["roles"]["incident_commander"]["id"] == who.person_id
    for role, holder in (("communications_lead", comms), ("scribe", scribe)):
        ok(
            run(
                api,
                who,
                incident_id,
                "assign_role",
                {"role": role, "person_id": holder.person.person_id, "briefing": secret["BRIEF"]},
            )
        )
    ok(run(api, who, incident_id, "add_responder", {"person_id": responder.person.person_id}))

    first = tasks(api, who, incident_id)[0]
    ok(
        api.http.patch(
            f"/v1/incidents/{incident_id}/tasks/{first['id']}",
            json={
                "status": "in_progress",
                "note": secret["NOTE"],
                "assignee_id": responder.person.person_id,
            },
            headers=who.headers,
        )
    )
    ok(
        api.http.post(
            f"/v1/incidents/{incident_id}/tasks",
            json={"title": secret["TASK"], "description": secret["TASK"], "phase": "recovery"},
            headers=who.headers,
        )
    )
    finish_containment(api, who, incident_id)
    ok(run(api, who, incident_id, "contain", {"summary": secret["CONTAIN"]}))
    ok(run(api, who, incident_id, "resolve", {"summary": secret["RESOLVE"]}))
    resolved = api.incident(client, incident_id)
    # A client follows the milestones as they happen.
    assert resolved["status"] == "resolved"
    assert resolved["milestones"]["resolved_at"] is not None
    ok(run(api, who, incident_id, "reopen", {"reason": secret["REOPEN"]}))
    ok(
        run(
            api,
            who,
            incident_id,
            "reclassify",
            {"impact": "extensive", "urgency": "critical", "reason": secret["RECLASS"]},
        )
    )
    return WorkedIncident(
        incident_id=incident_id,
        client=client,
        contact=contact,
        manager=manager,
        staff=[manager, comms, scribe, responder],
        secrets=list(secret.values()),
        task_id=first["id"],
    )


def _staff_timeline(api: Api, worked: WorkedIncident) -> list[dict[str, Any]]:
    """The whole timeline as staff read it, once every event of the work has reached review."""

    def complete() -> list[dict[str, Any]] | None:
        entries = api.timeline(worked.manager.person, worked.incident_id)
        types = [entry["type"] for entry in entries]
        done = "incident.reclassified" in types and "notification.sent" in types
        return entries if done else None

    entries: list[dict[str, Any]] = eventually(complete)
    return entries


def _current(api: Api, worked: WorkedIncident) -> dict[str, Any]:
    """The incident as the manager reads it, once intake's registry has caught up as well
    (the list is intake's copy alone)."""
    incident = api.incident(worked.manager.person, worked.incident_id)

    def listed() -> bool:
        items = api.pages("/v1/incidents", worked.client)
        mine = [item for item in items if item["id"] == worked.incident_id]
        return bool(mine) and mine[0]["version"] == incident["version"]

    eventually(listed)
    return incident


def _reader(worked: WorkedIncident, kind: str) -> Tenant:
    """The client's system key, or its contact's personal key."""
    return worked.client if kind == "client_system" else worked.contact


def _client_reads(api: Api, worked: WorkedIncident, reader: Tenant) -> dict[str, httpx.Response]:
    """Every GET a client key may call that shows the incident, by name."""
    incident_id = worked.incident_id
    paths = {
        "list": "/v1/incidents",
        "list by status": "/v1/incidents?status=acknowledged",
        "list by priority": "/v1/incidents?priority=P1",
        "incident": f"/v1/incidents/{incident_id}",
        "timeline": f"/v1/incidents/{incident_id}/timeline",
    }
    reads = {name: api.http.get(path, headers=reader.headers) for name, path in paths.items()}
    for name, response in reads.items():
        assert response.status_code == 200, (name, response.text)
    return reads


@pytest.mark.parametrize("reader_kind", ["client_system", "client_contact"])
def test_a_client_reads_no_secret_and_nothing_of_the_firms_people(
    api: Api, worked: WorkedIncident, reader_kind: str
) -> None:
    _staff_timeline(api, worked)
    _current(api, worked)
    reader = _reader(worked, reader_kind)
    for name, response in _client_reads(api, worked, reader).items():
        assert worked.incident_id in response.text, name  # it is there, and it is this one
        for secret in worked.secrets:
            assert secret not in response.text, (name, secret)
        for member in worked.staff:
            for trace in member.traces():
                assert trace not in response.text, (name, member.name, trace)
        # Digits alone too, in case a phone were reformatted on the way out.
        for member in worked.staff:
            assert member.phone.lstrip("+") not in response.text, (name, member.phone)


@pytest.mark.parametrize("reader_kind", ["client_system", "client_contact"])
def test_a_client_sees_status_priority_and_milestones_but_no_roles(
    api: Api, worked: WorkedIncident, reader_kind: str
) -> None:
    staff_view = _current(api, worked)
    reader = _reader(worked, reader_kind)
    reads = _client_reads(api, worked, reader)
    incident = reads["incident"].json()
    assert reads["incident"].headers["ETag"] == f'"{staff_view["version"]}"'

    # Reopened (so acknowledged again, its resolution undone) and reclassified up to P1.
    assert incident["status"] == "acknowledged"
    assert incident["priority"] == "P1"
    assert incident["highest_priority"] == "P1"
    milestones = incident["milestones"]
    for moment in ("reported_at", "triaged_at", "acknowledged_at", "contained_at"):
        assert milestones[moment] is not None, moment
    assert milestones["resolved_at"] is None  # cleared by the reopen
    assert incident["roles"] is None
    assert incident["responders"] is None
    assert incident["targets"] is None  # the firm's internal response targets
    assert staff_view["targets"] is not None
    # Everything else is exactly what staff see: the client is told the truth, less the people.
    hidden = {"roles", "responders", "targets"}
    assert {k: v for k, v in incident.items() if k not in hidden} == {
        k: v for k, v in staff_view.items() if k not in hidden
    }

    for name in ("list", "list by status", "list by priority"):
        items = reads[name].json()["items"]
        assert {item["client_id"] for item in items} == {worked.client.id}, name
        listed = [item for item in items if item["id"] == worked.incident_id]
        assert len(listed) == 1, name
        assert listed[0]["roles"] is None, name
        assert listed[0]["responders"] is None, name
        assert listed[0]["status"] == "acknowledged", name
        assert listed[0]["priority"] == "P1", name
        assert listed[0]["milestones"] == milestones, name


@pytest.mark.parametrize("reader_kind", ["client_system", "client_contact"])
def test_a_clients_timeline_lists_the_milestones_by_an_anonymous_response_team(
    api: Api, worked: WorkedIncident, reader_kind: str
) -> None:
    staff_entries = _staff_timeline(api, worked)
    reader = _reader(worked, reader_kind)
    entries = api.timeline(reader, worked.incident_id)

    assert [entry["type"] for entry in entries] == CLIENT_TIMELINE
    assert not {entry["type"] for entry in entries} & INTERNAL_EVENTS
    assert {entry["audience"] for entry in entries} == {"client"}
    # The client's entries are the staff timeline's client entries, in the same order.
    assert [entry["event_id"] for entry in entries] == [
        entry["event_id"] for entry in staff_entries if entry["audience"] == "client"
    ]
    staff_ids = {member.person.person_id for member in worked.staff}
    staff_names = {member.name for member in worked.staff}
    for entry in entries:
        actor = entry["actor"]
        if entry["type"] in ("incident.reported", "incident.triaged"):
            assert actor["kind"] in CLIENT_ACTOR_KINDS, entry
            continue
        # Done by the manager: the client is told the response team did it, not who.
        assert actor["kind"] == "staff", entry
        assert actor["id"] == "", entry
        assert actor["id"] not in staff_ids, entry
        assert actor["name"] not in staff_names, entry
    by_type = {entry["type"]: entry for entry in entries}
    assert by_type["incident.triaged"]["actor"]["kind"] == "system"
    assert by_type["incident.reported"]["actor"]["kind"] == "client_system"
    assert "P2" in by_type["incident.reclassified"]["summary"]
    assert "P1" in by_type["incident.reclassified"]["summary"]


def test_staff_see_the_work_the_client_does_not(api: Api, worked: WorkedIncident) -> None:
    """The data withheld from the client exists: the manager reads all of it."""
    manager = worked.manager.person
    entries = _staff_timeline(api, worked)
    incident = _current(api, worked)
    types = {entry["type"] for entry in entries}
    assert set(CLIENT_TIMELINE) <= types
    assert {
        "incident.role_assigned",
        "incident.responder_added",
        "task.added",
        "task.updated",
        "notification.sent",
    } <= types
    assert {entry["audience"] for entry in entries} == {"client", "internal"}

    work = [
        api.http.get(f"/v1/incidents/{worked.incident_id}{path}", headers=manager.headers)
        for path in ("", "/timeline", "/tasks")
    ]
    for response in work:
        assert response.status_code == 200, response.text
    seen = "\n".join(response.text for response in work)
    for secret in worked.secrets:
        assert secret in seen, secret
    for member in worked.staff:
        assert member.name in seen, member.name
        assert member.person.person_id in seen, member.name
        person = api.http.get(f"/v1/people/{member.person.person_id}", headers=manager.headers)
        assert person.status_code == 200, person.text
        assert (person.json()["email"], person.json()["phone"]) == (
            member.person.email,
            member.phone,
        )

    roles = incident["roles"]
    assert roles["incident_commander"]["id"] == manager.person_id
    assert {roles["communications_lead"]["name"], roles["scribe"]["name"]} == {
        worked.staff[1].name,
        worked.staff[2].name,
    }
    assert [responder["name"] for responder in incident["responders"]] == [worked.staff[3].name]
    by_type = {entry["type"]: entry for entry in entries}
    assert by_type["incident.acknowledged"]["actor"] == {
        "id": manager.person_id,
        "kind": "manager",
        "name": worked.manager.name,
    }


def _client_calls(worked: WorkedIncident, incident_id: str) -> list[tuple[str, str, Any]]:
    """Every command and internal read on an incident, with a body valid for it, so that a
    refusal cannot be a validation error."""
    base = f"/v1/incidents/{incident_id}"
    someone = worked.staff[3].person.person_id
    return [
        ("GET", f"{base}/tasks", None),
        ("GET", f"{base}/transitions", None),
        ("POST", f"{base}/acknowledge", None),
        ("POST", f"{base}/contain", {"summary": "Contained by the client"}),
        ("POST", f"{base}/resolve", {"summary": "Resolved by the client"}),
        ("POST", f"{base}/reopen", {"reason": "Reopened by the client"}),
        ("POST", f"{base}/decline", {"reason": "Declined by the client"}),
        ("POST", f"{base}/merge", {"into": str(uuid.uuid4())}),
        ("POST", f"{base}/reclassify", {"urgency": "low", "reason": "By the client"}),
        ("PUT", f"{base}/roles/incident_commander", {"person_id": someone}),
        ("PUT", f"{base}/roles/communications_lead", {"person_id": someone}),
        ("PUT", f"{base}/roles/scribe", {"person_id": someone}),
        ("POST", f"{base}/responders", {"person_id": someone}),
        ("DELETE", f"{base}/responders/{someone}", None),
        ("POST", f"{base}/tasks", {"title": CLIENT_WORDS}),
        ("PATCH", f"{base}/tasks/{worked.task_id}", {"note": CLIENT_WORDS}),
    ]


@pytest.mark.parametrize("reader_kind", ["client_system", "client_contact"])
def test_tasks_transitions_and_every_command_are_404_for_a_client(
    api: Api, worked: WorkedIncident, reader_kind: str
) -> None:
    reader = _reader(worked, reader_kind)
    before = _current(api, worked)
    missing = str(uuid.uuid4())
    for (method, path, body), (_, missing_path, _) in zip(
        _client_calls(worked, worked.incident_id), _client_calls(worked, missing), strict=True
    ):
        response = api.http.request(method, path, json=body, headers=reader.headers)
        assert response.status_code == 404, (method, path, response.text)
        # Word for word what an incident that does not exist answers: nothing to learn.
        absent = api.http.request(method, missing_path, json=body, headers=reader.headers)
        assert absent.status_code == 404, (method, missing_path, absent.text)
        assert response.text.replace(worked.incident_id, missing) == absent.text, (method, path)
        for secret in worked.secrets:
            assert secret not in response.text
    # None of it changed anything.
    after = api.incident(worked.manager.person, worked.incident_id)
    assert after["version"] == before["version"]
    work = api.http.get(
        f"/v1/incidents/{worked.incident_id}/tasks", headers=worked.manager.person.headers
    )
    assert work.status_code == 200, work.text
    assert CLIENT_WORDS not in work.text


@pytest.mark.parametrize("reader_kind", ["client_system", "client_contact"])
def test_a_clients_invalid_command_is_404_not_a_validation_error(
    api: Api, worked: WorkedIncident, reader_kind: str
) -> None:
    """A 422 would tell a client which commands exist and what they take."""
    reader = _reader(worked, reader_kind)
    base = f"/v1/incidents/{worked.incident_id}"
    for method, path, body in (
        ("POST", f"{base}/contain", {}),
        ("POST", f"{base}/reclassify", {"urgency": "whenever"}),
        ("PUT", f"{base}/roles/king", {"person_id": ""}),
        ("PATCH", f"{base}/tasks/{worked.task_id}", {"status": "someday"}),
    ):
        response = api.http.request(method, path, json=body, headers=reader.headers)
        assert response.status_code == 404, (method, path, response.text)
