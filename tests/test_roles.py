"""An incident's roles and responders over HTTP, on SQLite and PostgreSQL: who holds which role,
the commander's handover, the commander a P1 or P2 needs before it is contained or resolved,
who may hold a role at all, responders joining and leaving, and who may run commands.

Every refused request must answer problem+json naming the field or the unmet condition, and
write nothing: the incident's version, roles and responders stay as they were.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.gateway_client import Api, Person, Tenant, eventually
from tests.lifecycle_client import finish_containment, ok, report_triaged, run
from tests.review_client import said

UNKNOWN_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Staff:
    person: Person
    name: str

    @property
    def id(self) -> str:
        return self.person.person_id

    def summary(self) -> dict[str, str]:
        """How an incident shows this person as a role holder or responder."""
        return {"id": self.id, "name": self.name}


@dataclass(frozen=True)
class Cast:
    client: Tenant
    other_client: Tenant
    contact: Person  # a contact (role client) of `client`
    manager: Staff
    first: Staff  # responders, unwalled
    second: Staff
    third: Staff
    walled: Staff  # a responder walled off from `client`: only `other_client`


def _staff(api: Api, role: str, label: str, **fields: Any) -> Staff:
    name = f"{label} {uuid.uuid4().hex[:6]}"
    return Staff(api.new_person(role, name=name, **fields), name)


@pytest.fixture(scope="module")
def cast(api: Api) -> Cast:
    client, other = api.new_client("Roles LLP"), api.new_client("Elsewhere LLP")
    return Cast(
        client=client,
        other_client=other,
        contact=api.new_person("client", client_id=client.id),
        manager=_staff(api, "manager", "Mona Manager"),
        first=_staff(api, "responder", "Fay First"),
        second=_staff(api, "responder", "Sam Second"),
        third=_staff(api, "responder", "Tia Third"),
        walled=_staff(api, "responder", "Wes Walled", clients=[other.id]),
    )


# --- helpers ----------------------------------------------------------------------------------


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def snapshot(api: Api, incident_id: str) -> dict[str, Any]:
    """What a refused command must leave untouched, as the unwalled admin key reads it."""
    incident = api.incident(api.admin, incident_id)
    return {
        name: incident[name]
        for name in ("version", "status", "priority", "highest_priority", "roles", "responders")
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
    """A refusal with `status` naming `field` (and saying `mentions`), and nothing written."""
    problem = assert_problem(response, status)
    if field is not None:
        assert problem["errors"][0]["field"] == field, problem
    for text in mentions:
        assert text in problem["detail"], problem
    assert snapshot(api, incident_id) == before
    return problem


def assign(
    api: Api,
    caller: Tenant,
    incident_id: str,
    role: str,
    person_id: str,
    briefing: str | None = None,
) -> httpx.Response:
    body = {"role": role, "person_id": person_id}
    if briefing is not None:
        body["briefing"] = briefing
    return run(api, caller, incident_id, "assign_role", body)


def entries_of(
    api: Api, reader: Tenant, incident_id: str, kind: str, count: int
) -> list[dict[str, Any]]:
    """The timeline's entries of type `kind`, once there are `count` of them."""

    def found() -> list[dict[str, Any]] | None:
        entries = [e for e in api.timeline(reader, incident_id) if e["type"] == kind]
        return entries if len(entries) >= count else None

    entries: list[dict[str, Any]] = eventually(found)
    return entries


def refused_reason(api: Api, caller: Tenant, incident_id: str, command: str) -> str | None:
    """The reason GET /transitions gives for refusing `command`, or None when it is allowed."""
    listed = ok(api.http.get(f"/v1/incidents/{incident_id}/transitions", headers=caller.headers))
    reasons = {item["command"]: item["reason"] for item in listed["refused"]}
    assert (command in listed["allowed"]) != (command in reasons), listed
    return reasons.get(command)


def actor(staff: Staff, kind: str) -> dict[str, str]:
    return {"id": staff.id, "kind": kind, "name": staff.name}


# --- roles ------------------------------------------------------------------------------------


def test_each_role_shows_its_holder_and_a_new_commander_takes_over_with_a_briefing(
    api: Api, cast: Cast
) -> None:
    incident_id = report_triaged(api, cast.client)
    triaged = api.incident(cast.manager.person, incident_id)
    assert triaged["roles"] == {
        "incident_commander": None,
        "communications_lead": None,
        "scribe": None,
    }
    version = triaged["version"]
    holders = {
        "incident_commander": cast.first,
        "communications_lead": cast.second,
        "scribe": cast.third,
    }
    for role, holder in holders.items():
        answer = ok(assign(api, cast.manager.person, incident_id, role, holder.id))
        version += 1
        assert answer["version"] == version
        assert answer["roles"][role] == holder.summary()
    shown = api.incident(cast.manager.person, incident_id)
    assert shown["roles"] == {role: holder.summary() for role, holder in holders.items()}
    assert shown["status"] == "triaged"  # roles change no state

    briefing = "Failover half done; the client's CTO is on the bridge"
    handed = ok(
        assign(api, cast.first.person, incident_id, "incident_commander", cast.manager.id, briefing)
    )
    assert handed["roles"] == {
        "incident_commander": cast.manager.summary(),
        "communications_lead": cast.second.summary(),
        "scribe": cast.third.summary(),
    }
    assert handed["version"] == version + 1
    # A handover of another role without a briefing names both too, and no briefing.
    ok(assign(api, cast.manager.person, incident_id, "scribe", cast.first.id))

    entries = entries_of(api, cast.manager.person, incident_id, "incident.role_assigned", 5)
    assert [(entry["summary"], said(entry)) for entry in entries] == [
        ("incident commander named", [("person", cast.first.name)]),
        ("communications lead named", [("person", cast.second.name)]),
        ("scribe named", [("person", cast.third.name)]),
        (
            "incident commander named",
            [
                ("person", cast.manager.name),
                ("taking_over_from", cast.first.name),
                ("briefing", briefing),
            ],
        ),
        ("scribe named", [("person", cast.first.name), ("taking_over_from", cast.third.name)]),
    ]
    assert [entry["actor"] for entry in entries] == [
        *[actor(cast.manager, "manager")] * 3,
        actor(cast.first, "responder"),
        actor(cast.manager, "manager"),
    ]
    assert all(entry["audience"] == "internal" for entry in entries)


def test_whoever_acknowledges_becomes_commander_only_when_there_is_none(
    api: Api, cast: Cast
) -> None:
    # A responder (a person) acknowledging an incident without a commander becomes it.
    taken = report_triaged(api, cast.client)
    acknowledged = ok(run(api, cast.first.person, taken, "acknowledge"))
    assert acknowledged["status"] == "acknowledged"
    assert acknowledged["roles"]["incident_commander"] == cast.first.summary()
    assert api.incident(api.admin, taken)["roles"]["incident_commander"] == cast.first.summary()
    (entry,) = entries_of(api, cast.manager.person, taken, "incident.acknowledged", 1)
    assert entry["summary"] == "acknowledged, with an incident commander"
    assert said(entry) == [("by", cast.first.name), ("incident_commander", cast.first.name)]

    # With a commander already named, acknowledging leaves them in command.
    commanded = report_triaged(api, cast.client)
    ok(assign(api, cast.manager.person, commanded, "incident_commander", cast.second.id))
    acknowledged = ok(run(api, cast.first.person, commanded, "acknowledge"))
    assert acknowledged["status"] == "acknowledged"
    assert acknowledged["roles"]["incident_commander"] == cast.second.summary()
    assert acknowledged["responders"] == []

    # A key of no person (the bootstrap admin key) acknowledges, and nobody is in command.
    nobody = report_triaged(api, cast.client)
    acknowledged = ok(run(api, api.admin, nobody, "acknowledge"))
    assert acknowledged["status"] == "acknowledged"
    assert acknowledged["roles"]["incident_commander"] is None
    assert api.incident(api.admin, nobody)["roles"]["incident_commander"] is None


@pytest.mark.parametrize(
    ("impact", "urgency", "priority"),
    [("extensive", "critical", "P1"), ("significant", "high", "P2")],
)
def test_a_paging_incident_cannot_be_contained_without_a_commander(
    api: Api, cast: Cast, impact: str, urgency: str, priority: str
) -> None:
    incident_id = report_triaged(api, cast.client, impact=impact, urgency=urgency)
    assert api.incident(api.admin, incident_id)["priority"] == priority
    ok(run(api, api.admin, incident_id, "acknowledge"))  # no person: no commander
    finish_containment(api, api.admin, incident_id)
    before = snapshot(api, incident_id)
    assert before["roles"]["incident_commander"] is None

    problem = assert_refused(
        api,
        run(api, api.admin, incident_id, "contain"),
        409,
        incident_id,
        before,
        mentions=(f"a {priority} incident needs an incident commander first",),
    )
    assert problem["incident_status"] == "acknowledged"
    assert "contain" not in problem["allowed"]
    reason = refused_reason(api, cast.manager.person, incident_id, "contain")
    assert reason == f"a {priority} incident needs an incident commander first"

    ok(assign(api, api.admin, incident_id, "incident_commander", cast.manager.id))
    assert refused_reason(api, cast.manager.person, incident_id, "contain") is None
    contained = ok(run(api, api.admin, incident_id, "contain"))
    assert contained["status"] == "contained"
    assert contained["roles"]["incident_commander"] == cast.manager.summary()


def test_a_contained_incident_raised_to_p1_cannot_be_resolved_without_a_commander(
    api: Api, cast: Cast
) -> None:
    """A P3 is contained without a commander; reclassified to P1, it needs one to resolve."""
    incident_id = report_triaged(api, cast.client, impact="moderate", urgency="medium")
    ok(run(api, api.admin, incident_id, "acknowledge"))
    finish_containment(api, api.admin, incident_id)
    contained = ok(run(api, api.admin, incident_id, "contain"))
    assert (contained["status"], contained["priority"]) == ("contained", "P3")
    assert contained["roles"]["incident_commander"] is None
    raised = ok(
        run(
            api,
            api.admin,
            incident_id,
            "reclassify",
            {"impact": "extensive", "urgency": "critical", "reason": "Every branch is down"},
        )
    )
    assert raised["priority"] == "P1"
    before = snapshot(api, incident_id)

    assert_refused(
        api,
        run(api, api.admin, incident_id, "resolve"),
        409,
        incident_id,
        before,
        mentions=("a P1 incident needs an incident commander first",),
    )
    reason = refused_reason(api, api.admin, incident_id, "resolve")
    assert reason == "a P1 incident needs an incident commander first"
    ok(assign(api, api.admin, incident_id, "incident_commander", cast.first.id))
    assert ok(run(api, api.admin, incident_id, "resolve"))["status"] == "resolved"


def test_a_p3_is_contained_and_resolved_without_a_commander(api: Api, cast: Cast) -> None:
    incident_id = report_triaged(api, cast.client, impact="moderate", urgency="medium")
    ok(run(api, api.admin, incident_id, "acknowledge"))
    finish_containment(api, api.admin, incident_id)
    assert api.incident(api.admin, incident_id)["priority"] == "P3"
    assert refused_reason(api, api.admin, incident_id, "contain") is None
    contained = ok(run(api, api.admin, incident_id, "contain"))
    assert contained["status"] == "contained"
    assert contained["roles"]["incident_commander"] is None
    assert ok(run(api, api.admin, incident_id, "resolve"))["status"] == "resolved"


# --- who may hold a role ----------------------------------------------------------------------


def test_who_cannot_hold_a_role_is_422_naming_person_id_and_nothing_is_written(
    api: Api, cast: Cast
) -> None:
    incident_id = report_triaged(api, cast.client)
    ok(assign(api, cast.manager.person, incident_id, "incident_commander", cast.first.id))
    ok(run(api, cast.manager.person, incident_id, "add_responder", {"person_id": cast.second.id}))
    deactivated = _staff(api, "responder", "Dee Deactivated")
    off = api.http.patch(
        f"/v1/people/{deactivated.id}", json={"active": False}, headers=api.admin.headers
    )
    assert off.status_code == 200 and off.json()["active"] is False, off.text
    before = snapshot(api, incident_id)

    cases = [
        (UNKNOWN_ID, f"no person {UNKNOWN_ID}"),
        (cast.contact.person_id, "a client's contact, not staff"),
        (deactivated.id, f"{deactivated.name} is deactivated"),
        (cast.walled.id, f"{cast.walled.name} may not work on this client's incidents"),
    ]
    for person_id, why in cases:
        for role in ("incident_commander", "scribe"):
            response = assign(api, cast.manager.person, incident_id, role, person_id)
            assert_refused(
                api, response, 422, incident_id, before, field="person_id", mentions=(why,)
            )
        # The same check guards who may join as a responder.
        response = run(
            api, cast.manager.person, incident_id, "add_responder", {"person_id": person_id}
        )
        assert_refused(api, response, 422, incident_id, before, field="person_id", mentions=(why,))

    # The role they already hold.
    response = assign(api, cast.manager.person, incident_id, "incident_commander", cast.first.id)
    assert_refused(
        api,
        response,
        422,
        incident_id,
        before,
        field="person_id",
        mentions=(f"{cast.first.name} already is incident_commander",),
    )
    # No such role.
    response = assign(api, cast.manager.person, incident_id, "king", cast.third.id)
    assert_refused(api, response, 422, incident_id, before, field="role")
    # No person at all, and a misspelt field.
    base = f"/v1/incidents/{incident_id}/roles/scribe"
    for body in ({}, {"briefing": "Take notes"}, {"person": cast.third.id}):
        response = api.http.put(base, json=body, headers=cast.manager.person.headers)
        problem = assert_refused(api, response, 422, incident_id, before)
        assert "person_id" in {error["field"] for error in problem["errors"]}, problem
    response = api.http.put(base, json={"person_id": "  "}, headers=cast.manager.person.headers)
    assert_refused(api, response, 422, incident_id, before, field="person_id")


# --- responders -------------------------------------------------------------------------------


def test_responders_join_and_leave_and_the_timeline_says_who_did_it(api: Api, cast: Cast) -> None:
    incident_id = report_triaged(api, cast.client)
    manager = cast.manager.person
    version = api.incident(manager, incident_id)["version"]

    joined = ok(run(api, manager, incident_id, "add_responder", {"person_id": cast.first.id}))
    assert joined["responders"] == [cast.first.summary()]
    assert joined["version"] == version + 1
    joined = ok(run(api, manager, incident_id, "add_responder", {"person_id": cast.second.id}))
    assert joined["responders"] == [cast.first.summary(), cast.second.summary()]
    assert api.incident(manager, incident_id)["responders"] == joined["responders"]
    before = snapshot(api, incident_id)

    again = run(api, manager, incident_id, "add_responder", {"person_id": cast.first.id})
    assert_refused(
        api,
        again,
        422,
        incident_id,
        before,
        field="person_id",
        mentions=(f"{cast.first.name} already is a responder",),
    )

    # A responder may leave by their own hand.
    left = ok(
        run(api, cast.first.person, incident_id, "remove_responder", {"person_id": cast.first.id})
    )
    assert left["responders"] == [cast.second.summary()]
    assert left["version"] == before["version"] + 1
    before = snapshot(api, incident_id)
    for absent in (cast.first.id, cast.third.id, UNKNOWN_ID):
        gone = run(api, manager, incident_id, "remove_responder", {"person_id": absent})
        assert_refused(
            api, gone, 404, incident_id, before, mentions=(f"{absent} is not a responder",)
        )

    added = entries_of(api, manager, incident_id, "incident.responder_added", 2)
    assert [(e["summary"], said(e), e["actor"]) for e in added] == [
        ("responder joined", [("person", cast.first.name)], actor(cast.manager, "manager")),
        ("responder joined", [("person", cast.second.name)], actor(cast.manager, "manager")),
    ]
    (removed,) = entries_of(api, manager, incident_id, "incident.responder_removed", 1)
    assert (removed["summary"], said(removed)) == ("responder left", [("person", cast.first.name)])
    assert removed["actor"] == actor(cast.first, "responder")
    # The firm's people are not the client's business.
    client_types = {entry["type"] for entry in api.timeline(cast.client, incident_id)}
    assert not client_types & {"incident.responder_added", "incident.responder_removed"}


# --- who may act ------------------------------------------------------------------------------


def test_only_participants_among_responders_may_run_commands(api: Api, cast: Cast) -> None:
    incident_id = report_triaged(api, cast.client, impact="moderate", urgency="medium")
    ok(run(api, api.admin, incident_id, "acknowledge"))  # no commander: nobody takes part
    finish_containment(api, api.admin, incident_id)
    outsider = cast.first.person  # a responder inside the wall, but no participant
    before = snapshot(api, incident_id)

    attempts = [
        ("contain", None),
        ("assign_role", {"role": "scribe", "person_id": cast.first.id}),
        ("assign_role", {"role": "incident_commander", "person_id": cast.second.id}),
        ("add_responder", {"person_id": cast.first.id}),
        ("remove_responder", {"person_id": cast.second.id}),
    ]
    for command, body in attempts:
        refused = run(api, outsider, incident_id, command, body)
        assert_refused(
            api,
            refused,
            403,
            incident_id,
            before,
            mentions=("only the incident's commander, its responders or a manager or admin",),
        )
    assert "commander" in (refused_reason(api, outsider, incident_id, "contain") or "")
    # Acknowledging needs no part in the incident; it is refused here for its state only.
    assert "acknowledged" in (refused_reason(api, outsider, incident_id, "acknowledge") or "")

    # Client keys are told the incident does not exist.
    for client_key in (cast.client, cast.contact):
        for command, body in attempts[:2]:
            hidden = run(api, client_key, incident_id, command, body)
            assert_refused(api, hidden, 404, incident_id, before, mentions=("not found",))

    # Made scribe by a manager, the responder may run commands: add another responder...
    ok(assign(api, cast.manager.person, incident_id, "scribe", cast.first.id))
    ok(run(api, outsider, incident_id, "add_responder", {"person_id": cast.second.id}))
    # ...who, as a responder, may now run them too.
    newcomer = cast.second.person
    assert refused_reason(api, newcomer, incident_id, "contain") is None
    lead = ok(assign(api, newcomer, incident_id, "communications_lead", cast.third.id))
    assert lead["roles"]["communications_lead"] == cast.third.summary()
    assert ok(run(api, newcomer, incident_id, "contain"))["status"] == "contained"
    # A manager may whether or not they take part.
    assert ok(run(api, cast.manager.person, incident_id, "resolve"))["status"] == "resolved"
