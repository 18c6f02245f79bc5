"""Reclassifying an incident over HTTP, on SQLite and PostgreSQL: what a reclassification needs,
the priority derived again from the firm's matrix (and the highest one kept), the new type's
playbook tasks, the response targets moving with the priority, the timeline line, and intake's
list filters following.

Every refused request must answer problem+json naming the field or the unmet condition, and
write nothing: the incident's version, classification and tasks stay as they were.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest

from services.triage.playbooks import load_playbooks
from services.triage.policy import load_response_policy
from tests.gateway_client import Api, Person, Tenant, eventually
from tests.lifecycle_client import finish_containment, ok, report_triaged, run, tasks
from tests.review_client import said

PLAYBOOKS = load_playbooks(None)
POLICY = load_response_policy(None)
STAGES = {"acknowledge_by": "acknowledge", "contain_by": "contain", "resolve_by": "resolve"}


@dataclass(frozen=True)
class Cast:
    client: Tenant
    manager: Person
    manager_name: str


@pytest.fixture(scope="module")
def cast(api: Api) -> Cast:
    name = f"Max Manager {uuid.uuid4().hex[:6]}"
    return Cast(
        client=api.new_client("Reclassify LLP"),
        manager=api.new_person("manager", name=name),
        manager_name=name,
    )


# --- helpers ----------------------------------------------------------------------------------


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def snapshot(api: Api, incident_id: str) -> dict[str, Any]:
    incident = api.incident(api.admin, incident_id)
    fields = ("version", "status", "type", "impact", "urgency", "priority", "highest_priority")
    return {
        **{name: incident[name] for name in fields},
        "targets": incident["targets"],
        "tasks": tasks(api, api.admin, incident_id),
    }


def reclassify(api: Api, caller: Tenant, incident_id: str, **body: Any) -> httpx.Response:
    return run(api, caller, incident_id, "reclassify", body)


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


def reclassified_lines(
    api: Api, reader: Tenant, incident_id: str, count: int
) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]] | None:
        entries = [
            entry
            for entry in api.timeline(reader, incident_id)
            if entry["type"] == "incident.reclassified"
        ]
        return entries if len(entries) >= count else None

    entries: list[dict[str, Any]] = eventually(found)
    return entries


# --- what a reclassification needs ------------------------------------------------------------


def test_a_reclassification_needs_a_reason_a_change_and_known_values(api: Api, cast: Cast) -> None:
    incident_id = report_triaged(api, cast.client, impact="significant", urgency="high")
    before = snapshot(api, incident_id)
    assert before["priority"] == "P2"

    def refused(body: dict[str, Any], field: str | None, *mentions: str) -> None:
        response = api.http.post(
            f"/v1/incidents/{incident_id}/reclassify", json=body, headers=cast.manager.headers
        )
        problem = assert_problem(response, 422)
        if field is not None:
            assert problem["errors"][0]["field"] == field, problem
        for text in mentions:
            assert text in problem["detail"], problem
        assert snapshot(api, incident_id) == before

    refused({"urgency": "critical"}, "reason")
    refused({"urgency": "critical", "reason": "   "}, "reason")
    refused({"urgency": "critical", "reason": None}, "reason")
    refused({"reason": "Looks worse"}, None, "nothing to change")
    same = {"type": "service_outage", "impact": "significant", "urgency": "high"}
    refused({**same, "reason": "Looks the same"}, None, "nothing to change")
    refused({"urgency": "apocalyptic", "reason": "Looks worse"}, "urgency")
    refused({"impact": "total", "reason": "Looks worse"}, "impact")
    refused({"type": "alien_invasion", "reason": "Looks worse"}, "type")
    refused({"urgency": "critical", "reason": "Looks worse", "priority": "P1"}, "priority")
    refused({"urgency": "critical", "reason": "x" * 20_001}, "reason")


# --- the priority -----------------------------------------------------------------------------


def test_the_priority_is_derived_again_and_the_highest_so_far_is_kept(api: Api, cast: Cast) -> None:
    incident_id = report_triaged(api, cast.client, impact="significant", urgency="high")
    triaged = api.incident(cast.manager, incident_id)
    assert (triaged["priority"], triaged["highest_priority"]) == ("P2", "P2")

    raised = ok(reclassify(api, cast.manager, incident_id, urgency="critical", reason="Spreading"))
    assert (raised["urgency"], raised["impact"]) == ("critical", "significant")
    assert (raised["priority"], raised["highest_priority"]) == ("P1", "P1")
    assert raised["version"] == triaged["version"] + 1
    assert raised["status"] == "triaged"  # the state stays
    eventually(lambda: incident_id in api.list_ids(cast.client, priority="P1"))

    lowered = ok(reclassify(api, cast.manager, incident_id, urgency="low", reason="Workaround"))
    assert (lowered["urgency"], lowered["priority"]) == ("low", "P3")
    assert lowered["highest_priority"] == "P1"  # the highest it has had
    assert lowered["version"] == raised["version"] + 1
    shown = api.incident(cast.manager, incident_id)
    assert (shown["priority"], shown["highest_priority"]) == ("P3", "P1")
    # Intake's registry learns of it from the bus: its list filter catches up.
    eventually(lambda: incident_id in api.list_ids(cast.client, priority="P3"))
    assert incident_id not in api.list_ids(cast.client, priority="P1")
    assert incident_id not in api.list_ids(cast.client, priority="P2")
    listed = next(i for i in api.pages("/v1/incidents", cast.manager) if i["id"] == incident_id)
    assert (listed["priority"], listed["highest_priority"]) == ("P3", "P1")

    entries = reclassified_lines(api, cast.manager, incident_id, 2)
    manager = {"id": cast.manager.person_id, "kind": "manager", "name": cast.manager_name}
    assert [(entry["summary"], said(entry), entry["actor"]) for entry in entries] == [
        (
            "reclassified (urgency high → critical, priority P2 → P1)",
            [("reason", "Spreading")],
            manager,
        ),
        (
            "reclassified (urgency critical → low, priority P1 → P3)",
            [("reason", "Workaround")],
            manager,
        ),
    ]
    # A client reads that the priority changed, not why.
    client_lines = [
        (entry["summary"], said(entry))
        for entry in api.timeline(cast.client, incident_id)
        if entry["type"] == "incident.reclassified"
    ]
    assert client_lines == [
        ("priority changed from P2 to P1", []),
        ("priority changed from P1 to P3", []),
    ]


# --- the type's playbook ----------------------------------------------------------------------


def test_reclassifying_to_another_type_adds_that_types_playbook(api: Api, cast: Cast) -> None:
    incident_id = report_triaged(api, cast.client, type="service_outage", impact="moderate")
    original = tasks(api, cast.manager, incident_id)
    assert len(original) == len(PLAYBOOKS["service_outage"])

    retyped = ok(
        reclassify(
            api, cast.manager, incident_id, type="security_breach", reason="An intruder did it"
        )
    )
    assert retyped["type"] == "security_breach"
    assert (retyped["impact"], retyped["priority"]) == ("moderate", "P3")  # as they were
    grown = tasks(api, cast.manager, incident_id)
    breach = PLAYBOOKS["security_breach"]
    assert len(grown) == len(original) + len(breach)
    assert grown[: len(original)] == original  # the earlier tasks stay as they were
    added = grown[len(original) :]
    assert [(t["title"], t["required"], t["phase"]) for t in added] == [
        (t.title, t.required, t.phase) for t in breach
    ]
    assert {(t["source"], t["status"]) for t in added} == {("playbook:security_breach", "open")}

    # Keeping the type (named or not) adds none.
    ok(
        reclassify(
            api,
            cast.manager,
            incident_id,
            type="security_breach",
            urgency="critical",
            reason="Data is leaving",
        )
    )
    ok(reclassify(api, cast.manager, incident_id, impact="extensive", reason="All offices"))
    assert tasks(api, cast.manager, incident_id) == grown

    (retype, *_) = reclassified_lines(api, cast.manager, incident_id, 3)
    assert retype["summary"] == (
        f"reclassified (type service_outage → security_breach); {len(breach)} tasks added"
    )
    assert said(retype) == [("reason", "An intruder did it")]

    # The new playbook's required containment tasks hold back containment too.
    ok(run(api, cast.manager, incident_id, "acknowledge"))
    gate = next(t["title"] for t in added if t["required"] and t["phase"] == "containment")
    assert gate in problem_detail(run(api, cast.manager, incident_id, "contain"))
    finish_containment(api, cast.manager, incident_id)
    assert ok(run(api, cast.manager, incident_id, "contain"))["status"] == "contained"


def problem_detail(response: httpx.Response) -> str:
    detail: str = assert_problem(response, 409)["detail"]
    return detail


def test_the_list_filter_by_type_follows_a_reclassification(api: Api, cast: Cast) -> None:
    """The list shows the new type, so its `type` filter must find the incident by it."""
    incident_id = report_triaged(api, cast.client, type="service_outage")
    ok(reclassify(api, cast.manager, incident_id, type="data_loss", reason="Rows were dropped"))
    # Intake's registry learns of the reclassification from the bus (its priority filter
    # follows it, and so does the listed item's own type).
    eventually(
        lambda: next(
            item["type"] == "data_loss"
            for item in api.pages("/v1/incidents", cast.client)
            if item["id"] == incident_id
        )
    )
    # The filter must agree with what the list shows. BUG (intake): it does not; intake's
    # record_response updates status and priority from the event's state but never the `type`
    # (nor impact or urgency) column the filter queries, so the incident stays listed under
    # type=service_outage for good.
    eventually(lambda: incident_id in api.list_ids(cast.client, type="data_loss"), timeout=5)
    assert incident_id not in api.list_ids(cast.client, type="service_outage")


# --- the response targets ---------------------------------------------------------------------


def test_the_response_targets_move_with_the_priority(api: Api, cast: Cast) -> None:
    incident_id = report_triaged(api, cast.client, impact="moderate", urgency="medium")
    p3 = api.incident(cast.manager, incident_id)
    assert p3["priority"] == "P3"

    p1 = ok(
        reclassify(
            api,
            cast.manager,
            incident_id,
            impact="extensive",
            urgency="critical",
            reason="Every office is down",
        )
    )
    assert p1["priority"] == "P1"
    for field, stage in STAGES.items():
        earlier, later = moment(p1["targets"][field]), moment(p3["targets"][field])
        assert earlier < later, field
        # Both count from the same report: they lie the policy's difference apart.
        difference = getattr(POLICY.targets["P3"], stage) - getattr(POLICY.targets["P1"], stage)
        assert later - earlier == difference, field
    # And they count from the report: a P1 is to be acknowledged 15 minutes after it.
    since_report = moment(p1["targets"]["acknowledge_by"]) - moment(p3["milestones"]["reported_at"])
    assert abs((since_report - POLICY.targets["P1"].acknowledge).total_seconds()) < 1

    back = ok(
        reclassify(
            api,
            cast.manager,
            incident_id,
            impact="moderate",
            urgency="medium",
            reason="Only one office after all",
        )
    )
    assert back["priority"] == "P3"
    assert back["targets"] == p3["targets"]
    assert api.incident(cast.manager, incident_id)["targets"] == p3["targets"]


def test_going_back_to_an_earlier_type_does_not_add_its_tasks_again(api: Api, cast: Cast) -> None:
    incident_id = report_triaged(api, cast.client, type="security_breach", impact="moderate")
    finish_containment(api, cast.manager, incident_id)
    before = tasks(api, cast.manager, incident_id)
    ok(reclassify(api, cast.manager, incident_id, type="data_loss", reason="Only data lost"))
    ok(reclassify(api, cast.manager, incident_id, type="security_breach", reason="An intruder"))
    after = tasks(api, cast.manager, incident_id)
    assert len(after) == len(before) + len(PLAYBOOKS["data_loss"])
    assert after[: len(before)] == before  # the breach's tasks, done ones included, as they were
    *_, back = reclassified_lines(api, cast.manager, incident_id, 2)
    assert "tasks added" not in back["summary"]
