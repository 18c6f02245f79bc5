"""An incident's tasks over HTTP, on SQLite and PostgreSQL: its playbook's tasks, the required
containment tasks that hold back /contain, moving, skipping, assigning and noting a task, ad-hoc
tasks, the tasks of an ended incident, and their place on the staff timeline only.

Every refused request must answer problem+json naming the field or the unmet condition, and
write nothing: the incident's version and its tasks stay as they were.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.triage.playbooks import INCIDENT_TYPES, load_playbooks
from tests.gateway_client import Api, Person, Tenant, eventually
from tests.lifecycle_client import bring_to, finish_containment, ok, report_triaged, run, tasks
from tests.review_client import said

UNKNOWN_ID = "00000000-0000-0000-0000-000000000000"
PLAYBOOKS = load_playbooks(None)


@dataclass(frozen=True)
class Cast:
    client: Tenant
    contact: Person  # a contact (role client) of `client`
    manager: Person
    manager_name: str
    responder: Person
    responder_name: str
    walled: Person  # a responder walled off from `client`


@pytest.fixture(scope="module")
def cast(api: Api) -> Cast:
    client, other = api.new_client("Tasks LLP"), api.new_client("Elsewhere LLP")
    tag = uuid.uuid4().hex[:6]
    manager_name, responder_name = f"Mo Manager {tag}", f"Ray Responder {tag}"
    return Cast(
        client=client,
        contact=api.new_person("client", client_id=client.id),
        manager=api.new_person("manager", name=manager_name),
        manager_name=manager_name,
        responder=api.new_person("responder", name=responder_name),
        responder_name=responder_name,
        walled=api.new_person("responder", clients=[other.id]),
    )


# --- helpers ----------------------------------------------------------------------------------


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def snapshot(api: Api, incident_id: str) -> dict[str, Any]:
    """What a refused request must leave untouched: the incident's version and status, and
    every task as it was."""
    incident = api.incident(api.admin, incident_id)
    return {
        "version": incident["version"],
        "status": incident["status"],
        "tasks": tasks(api, api.admin, incident_id),
    }


def assert_refused(
    api: Api,
    response: httpx.Response,
    status: int,
    incident_id: str,
    before: dict[str, Any],
    *,
    field: str | None = None,
    mentions: tuple[str, ...] = (),
) -> dict[str, Any]:
    problem = assert_problem(response, status)
    if field is not None:
        assert problem["errors"][0]["field"] == field, problem
    for text in mentions:
        assert text in problem["detail"], problem
    assert snapshot(api, incident_id) == before
    return problem


def patch(
    api: Api, caller: Tenant, incident_id: str, task_id: str, body: dict[str, Any]
) -> httpx.Response:
    return api.http.patch(
        f"/v1/incidents/{incident_id}/tasks/{task_id}", json=body, headers=caller.headers
    )


def add(api: Api, caller: Tenant, incident_id: str, body: dict[str, Any]) -> httpx.Response:
    return api.http.post(f"/v1/incidents/{incident_id}/tasks", json=body, headers=caller.headers)


def titled(items: list[dict[str, Any]], title: str) -> dict[str, Any]:
    (task,) = [task for task in items if task["title"] == title]
    return task


def required_containment(incident_type: str) -> list[str]:
    return [
        task.title
        for task in PLAYBOOKS[incident_type]
        if task.required and task.phase == "containment"
    ]


def contain_refusal(api: Api, caller: Tenant, incident_id: str) -> str | None:
    """Why GET /transitions says /contain is refused, or None when it is allowed."""
    listed = ok(api.http.get(f"/v1/incidents/{incident_id}/transitions", headers=caller.headers))
    reasons = {item["command"]: item["reason"] for item in listed["refused"]}
    return reasons.get("contain")


def open_tasks_reason(titles: list[str]) -> str:
    return f"required containment tasks are still open: {'; '.join(titles)}"


# --- the playbook -----------------------------------------------------------------------------


def test_a_triaged_incident_has_its_types_playbook_tasks_in_order(api: Api, cast: Cast) -> None:
    reported = {kind: report_triaged(api, cast.client, type=kind) for kind in INCIDENT_TYPES}
    for kind, incident_id in reported.items():
        listed = tasks(api, cast.manager, incident_id)
        assert [
            (t["title"], t["description"], t["required"], t["phase"], t["owner_role"])
            for t in listed
        ] == [
            (t.title, t.description, t.required, t.phase, t.owner_role) for t in PLAYBOOKS[kind]
        ], kind
        assert {t["status"] for t in listed} == {"open"}
        assert {t["source"] for t in listed} == {f"playbook:{kind}"}
        assert all(t["assignee"] is None and t["note"] == "" for t in listed)
        assert len({t["id"] for t in listed}) == len(listed)


# --- the containment gate ---------------------------------------------------------------------


def test_open_required_containment_tasks_hold_back_containment_and_are_named(
    api: Api, cast: Cast
) -> None:
    # A P3, so the commander rule is out of the way (the manager becomes commander anyway).
    incident_id = report_triaged(
        api, cast.client, type="service_outage", impact="moderate", urgency="medium"
    )
    ok(run(api, cast.manager, incident_id, "acknowledge"))
    gate = required_containment("service_outage")
    assert len(gate) == 3
    by_title = {t["title"]: t for t in tasks(api, cast.manager, incident_id)}

    def refused_naming(titles: list[str]) -> None:
        before = snapshot(api, incident_id)
        problem = assert_refused(
            api,
            run(api, cast.manager, incident_id, "contain"),
            409,
            incident_id,
            before,
            mentions=(open_tasks_reason(titles),),
        )
        assert problem["incident_status"] == "acknowledged"
        assert "contain" not in problem["allowed"]
        for done in set(gate) - set(titles):
            assert done not in problem["detail"]
        assert contain_refusal(api, cast.manager, incident_id) == open_tasks_reason(titles)

    refused_naming(gate)
    ok(patch(api, cast.manager, incident_id, by_title[gate[0]]["id"], {"status": "done"}))
    moving = ok(
        patch(api, cast.manager, incident_id, by_title[gate[1]]["id"], {"status": "in_progress"})
    )
    assert moving["status"] == "in_progress"
    refused_naming(gate[1:])  # in progress still holds it back
    skipped = ok(
        patch(
            api,
            cast.manager,
            incident_id,
            by_title[gate[2]]["id"],
            {"status": "skipped", "reason": "The client's status page is down too"},
        )
    )
    assert skipped["status"] == "skipped"
    refused_naming(gate[1:2])
    ok(patch(api, cast.manager, incident_id, by_title[gate[1]]["id"], {"status": "done"}))

    # Optional tasks and required tasks of later phases are still open: they hold nothing back.
    still_open = [t for t in tasks(api, cast.manager, incident_id) if t["status"] == "open"]
    assert any(t["required"] and t["phase"] != "containment" for t in still_open)
    assert any(not t["required"] for t in still_open)
    assert contain_refusal(api, cast.manager, incident_id) is None
    assert ok(run(api, cast.manager, incident_id, "contain"))["status"] == "contained"


def test_an_optional_containment_task_left_open_does_not_hold_back_containment(
    api: Api, cast: Cast
) -> None:
    incident_id = report_triaged(
        api, cast.client, type="service_degradation", impact="moderate", urgency="medium"
    )
    ok(run(api, cast.manager, incident_id, "acknowledge"))
    finish_containment(api, cast.manager, incident_id)
    optional = [
        t
        for t in tasks(api, cast.manager, incident_id)
        if t["phase"] == "containment" and not t["required"]
    ]
    assert optional and all(t["status"] == "open" for t in optional)
    assert ok(run(api, cast.manager, incident_id, "contain"))["status"] == "contained"


# --- changing a task --------------------------------------------------------------------------


def test_skipping_needs_a_reason_and_a_bad_change_is_422_naming_the_field(
    api: Api, cast: Cast
) -> None:
    incident_id = report_triaged(api, cast.client, impact="moderate", urgency="medium")
    task = tasks(api, cast.manager, incident_id)[0]
    before = snapshot(api, incident_id)
    task_id = task["id"]

    def refused(body: dict[str, Any], field: str, *mentions: str) -> None:
        response = patch(api, cast.manager, incident_id, task_id, body)
        assert_refused(api, response, 422, incident_id, before, field=field, mentions=mentions)

    refused({"status": "skipped"}, "reason", "required to skip")
    refused({"status": "skipped", "reason": "   "}, "reason", "required to skip")
    refused({"status": "skipped", "note": "Not needed"}, "reason", "required to skip")
    refused({"status": "finished"}, "status")
    refused({"status": None, "reason": "Just because"}, "reason", "goes with a new status")
    refused({}, "status", "nothing to change")
    refused({"stauts": "done"}, "stauts")
    refused({"note": "x" * 20_001}, "note")
    for stranger, why in (
        (cast.contact.person_id, "a client's contact, not staff"),
        (cast.walled.person_id, "may not work on this client's incidents"),
        (UNKNOWN_ID, f"no person {UNKNOWN_ID}"),
    ):
        refused({"assignee_id": stranger}, "assignee_id", why)
    for absent in (UNKNOWN_ID, "not-a-task"):
        gone = patch(api, cast.manager, incident_id, absent, {"status": "done"})
        assert_refused(api, gone, 404, incident_id, before, mentions=(f"task {absent} not found",))

    skipped = ok(
        patch(
            api,
            cast.manager,
            incident_id,
            task_id,
            {"status": "skipped", "reason": "Failover already happened on its own"},
        )
    )
    assert skipped["status"] == "skipped"
    assert "Failover already happened on its own" in skipped["note"]
    assert titled(tasks(api, cast.manager, incident_id), task["title"]) == skipped
    # Task changes are not commands on the incident: its version stays.
    assert api.incident(api.admin, incident_id)["version"] == before["version"]


def test_a_task_is_assigned_unassigned_and_its_notes_grow(api: Api, cast: Cast) -> None:
    incident_id = report_triaged(api, cast.client, impact="moderate", urgency="medium")
    task_id = tasks(api, cast.manager, incident_id)[1]["id"]

    assigned = ok(
        patch(api, cast.manager, incident_id, task_id, {"assignee_id": cast.responder.person_id})
    )
    assert assigned["assignee"] == {"id": cast.responder.person_id, "name": cast.responder_name}
    assert assigned["status"] == "open"
    # Leaving assignee_id out leaves the assignee; a note is appended, never replaced.
    first = ok(patch(api, cast.manager, incident_id, task_id, {"note": "Paged the on-call DBA"}))
    assert first["assignee"] == assigned["assignee"]
    assert first["note"] == "Paged the on-call DBA"
    second = ok(
        patch(
            api,
            cast.manager,
            incident_id,
            task_id,
            {"status": "in_progress", "note": "DBA joined the bridge"},
        )
    )
    assert second["status"] == "in_progress"
    assert second["note"] == "Paged the on-call DBA\nDBA joined the bridge"
    unassigned = ok(patch(api, cast.manager, incident_id, task_id, {"assignee_id": None}))
    assert unassigned["assignee"] is None
    assert unassigned["note"] == second["note"]
    assert titled(tasks(api, cast.manager, incident_id), second["title"]) == unassigned


# --- ad-hoc tasks -----------------------------------------------------------------------------


def test_an_ad_hoc_task_comes_last_and_a_required_containment_one_holds_back_containment(
    api: Api, cast: Cast
) -> None:
    incident_id = report_triaged(api, cast.client, impact="moderate", urgency="medium")
    ok(run(api, cast.manager, incident_id, "acknowledge"))
    finish_containment(api, cast.manager, incident_id)
    playbook_tasks = tasks(api, cast.manager, incident_id)

    title = "Call the hosting provider's emergency line"
    created = add(
        api,
        cast.manager,
        incident_id,
        {"title": f"  {title} ", "required": True, "phase": "containment"},
    )
    assert created.status_code == 201, created.text
    task = created.json()
    assert (task["title"], task["required"], task["phase"]) == (title, True, "containment")
    assert (task["status"], task["source"], task["assignee"]) == ("open", "ad hoc", None)
    assert task["owner_role"] == "responder"
    # Neither an optional containment task nor a required later one holds containment back.
    optional = ok(add(api, cast.manager, incident_id, {"title": "Warn the other clients"}))
    assert (optional["required"], optional["phase"]) == (False, "containment")
    later = ok(
        add(
            api,
            cast.manager,
            incident_id,
            {
                "title": "Review the provider's SLA",
                "required": True,
                "phase": "investigation",
                "owner_role": "incident_commander",
                "description": "What they owe us for this",
            },
        )
    )
    listed = tasks(api, cast.manager, incident_id)
    assert listed == [*playbook_tasks, task, optional, later]

    before = snapshot(api, incident_id)
    problem = assert_refused(
        api,
        run(api, cast.manager, incident_id, "contain"),
        409,
        incident_id,
        before,
        mentions=(open_tasks_reason([title]),),
    )
    assert "contain" not in problem["allowed"]
    assert contain_refusal(api, cast.manager, incident_id) == open_tasks_reason([title])
    ok(patch(api, cast.manager, incident_id, task["id"], {"status": "done"}))
    assert ok(run(api, cast.manager, incident_id, "contain"))["status"] == "contained"

    # Tasks can still be added to a contained incident; at most 200 characters of title.
    longest = ok(add(api, cast.manager, incident_id, {"title": "t" * 200}))
    assert longest["title"] == "t" * 200
    before = snapshot(api, incident_id)
    for bad in ("", "   ", "t" * 201):
        response = add(api, cast.manager, incident_id, {"title": bad, "required": True})
        assert_refused(api, response, 422, incident_id, before, field="title")
    for body, field in (
        ({"required": True}, "title"),
        ({"title": "Phase?", "phase": "aftermath"}, "phase"),
        ({"title": "Owner?", "owner_role": "king"}, "owner_role"),
    ):
        response = add(api, cast.manager, incident_id, body)
        assert_refused(api, response, 422, incident_id, before, field=field)


# --- ended incidents --------------------------------------------------------------------------


@pytest.mark.parametrize("ended", ["declined", "merged"])
def test_the_tasks_of_an_ended_incident_cannot_change(api: Api, cast: Cast, ended: str) -> None:
    survivor = report_triaged(api, cast.client)
    incident_id = report_triaged(api, cast.client)
    task_id = tasks(api, cast.manager, incident_id)[0]["id"]
    bring_to(api, cast.manager, incident_id, ended, merge_into=survivor)
    before = snapshot(api, incident_id)
    assert before["status"] == ended

    for response in (
        patch(api, cast.manager, incident_id, task_id, {"status": "done"}),
        patch(api, cast.manager, incident_id, task_id, {"note": "Too late"}),
        add(api, cast.manager, incident_id, {"title": "One more thing", "required": True}),
    ):
        problem = assert_refused(
            api,
            response,
            409,
            incident_id,
            before,
            mentions=(f"cannot change tasks: the incident is {ended}",),
        )
        assert problem["incident_status"] == ended
        assert problem["allowed"] == []


# --- the timeline -----------------------------------------------------------------------------


def test_task_events_are_on_the_staff_timeline_with_the_actor_and_not_the_clients(
    api: Api, cast: Cast
) -> None:
    incident_id = report_triaged(api, cast.client, impact="moderate", urgency="medium")
    title = "Snapshot the load balancer config"
    added = ok(add(api, cast.manager, incident_id, {"title": title, "required": True}))
    ok(patch(api, cast.manager, incident_id, added["id"], {"status": "in_progress"}))
    ok(patch(api, cast.manager, incident_id, added["id"], {"note": "Half of it saved"}))

    def task_entries() -> list[dict[str, Any]] | None:
        entries = [
            entry
            for entry in api.timeline(cast.manager, incident_id)
            if entry["type"].startswith("task.")
        ]
        return entries if len(entries) >= 3 else None

    entries: list[dict[str, Any]] = eventually(task_entries)
    manager = {"id": cast.manager.person_id, "kind": "manager", "name": cast.manager_name}
    said_title = [("title", title)]
    assert [(e["type"], e["summary"], said(e), e["actor"], e["audience"]) for e in entries] == [
        ("task.added", "required containment task added", said_title, manager, "internal"),
        ("task.updated", "task open → in_progress", said_title, manager, "internal"),
        ("task.updated", "task updated", said_title, manager, "internal"),
    ]
    # Review has recorded them all; a client's keys still see none.
    for client_key in (cast.client, cast.contact):
        seen = api.timeline(client_key, incident_id)
        assert [e["type"] for e in seen][:2] == ["incident.reported", "incident.triaged"]
        assert not [e for e in seen if e["type"].startswith("task.")], seen
        assert all(title not in str(e) for e in seen)


def test_a_patch_that_changes_nothing_is_422_and_records_nothing(api: Api, cast: Cast) -> None:
    incident_id = report_triaged(api, cast.client)
    task = tasks(api, cast.manager, incident_id)[0]
    ok(patch(api, cast.manager, incident_id, task["id"], {"assignee_id": cast.responder.person_id}))
    before = snapshot(api, incident_id)
    for body in (
        {"status": "open"},
        {"note": "   "},
        {"assignee_id": cast.responder.person_id},
    ):
        response = patch(api, cast.manager, incident_id, task["id"], body)
        assert_refused(api, response, 422, incident_id, before, mentions=("nothing to change",))


def test_notes_added_at_the_same_moment_are_all_kept(api: Api, cast: Cast) -> None:
    incident_id = report_triaged(api, cast.client)
    task = tasks(api, cast.manager, incident_id)[0]
    notes = [f"note {n} {uuid.uuid4().hex[:6]}" for n in range(4)]
    barrier = threading.Barrier(len(notes))

    def add_note(note: str) -> int:
        with httpx.Client(base_url=api.platform.gateway_url, timeout=10) as http:
            barrier.wait()
            return http.patch(
                f"/v1/incidents/{incident_id}/tasks/{task['id']}",
                json={"note": note},
                headers=cast.manager.headers,
            ).status_code

    with ThreadPoolExecutor(len(notes)) as pool:
        assert list(pool.map(add_note, notes)) == [200] * len(notes)
    kept = titled(tasks(api, cast.manager, incident_id), task["title"])["note"]
    assert all(note in kept for note in notes), kept
