"""Closing an incident against the real processes, on SQLite and PostgreSQL: every closure gate
refusing with its reason (named in one 409, machine-readable), who may close, reopening after
closure, deadlines set aside as not applicable, and the firm's own gate settings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from firebreak.api.events.v1 import events_pb2
from firebreak.launcher import Platform
from firebreak.settings import Settings, SettingsError
from services.review.closure_gates import ClosurePolicy, Situation, gates_for, unmet_gates
from tests.conftest import start_platform
from tests.evidence_client import submit_once_known
from tests.follow_up_client import Crew, new_crew, problem
from tests.gateway_client import Api
from tests.lifecycle_client import ok, report_triaged, run
from tests.review_client import (
    close,
    move_action,
    new_action,
    resolve,
    signed_off,
    timeline_has,
)


@pytest.fixture(scope="module")
def crew(api: Api) -> Crew:
    return new_crew(api, "Closure")


def commanded(api: Api, crew: Crew, *, commander: str = "manager", **report: str) -> str:
    """A triaged incident, acknowledged by its commander, the participant among its
    responders."""
    incident_id = report_triaged(api, crew.client, **report)
    ok(run(api, getattr(crew, commander), incident_id, "acknowledge"))
    if commander != "participant":
        ok(
            run(
                api,
                crew.manager,
                incident_id,
                "add_responder",
                {"person_id": crew.participant.person_id},
            )
        )
    return incident_id


def gates(response_body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {gate["gate"]: gate for gate in response_body["unmet_gates"]}


def test_every_gate_refuses_with_its_reason_until_each_is_met(api: Api, crew: Crew) -> None:
    manager, participant = crew.manager, crew.participant
    incident_id = commanded(api, crew, impact="extensive", urgency="medium")  # a P2
    base = f"/v1/incidents/{incident_id}"
    fix = new_action(api, participant, incident_id, participant.person_id, title="Patch it")
    skip = new_action(
        api,
        participant,
        incident_id,
        participant.person_id,
        kind="recovery",
        title="Rebuild the spare",
    )
    move_action(
        api,
        participant,
        incident_id,
        skip,
        status="wont_do_requested",
        reason="The spare is being retired",
    )
    item = submit_once_known(api, participant, incident_id, b"disk image", filename="disk.img")
    transfer = ok(
        api.http.post(
            f"/v1/evidence/{item['id']}/transfers",
            json={"to": manager.person_id, "purpose": "imaging", "location": "lab"},
            headers=participant.headers,
        )
    )
    flagged = ok(
        api.http.post(f"{base}/flags", json={"flags": ["personal_data"]}, headers=manager.headers)
    )
    deadline = flagged["deadlines"][0]
    timeline_has(api, incident_id, "evidence.transferred")
    timeline_has(api, incident_id, "deadline.started")

    refused = problem(close(api, manager, incident_id), 409)
    unmet = gates(refused)
    assert list(unmet) == [
        "resolved",
        "pir_signed_off",
        "actions_finished",
        "evidence_checked_in",
        "deadlines_settled",
    ]
    assert refused["incident_status"] == "acknowledged" and "close" not in refused["allowed"]
    assert "acknowledged, not resolved" in unmet["resolved"]["reason"]
    assert "P2" in unmet["pir_signed_off"]["reason"]
    assert "none is drafted" in unmet["pir_signed_off"]["reason"]
    assert set(unmet["actions_finished"]["items"]) == {fix, skip}
    assert "“Patch it” (open)" in unmet["actions_finished"]["reason"]
    assert unmet["evidence_checked_in"]["items"] == [item["id"]]
    assert "disk.img" in unmet["evidence_checked_in"]["reason"]
    assert unmet["deadlines_settled"]["items"] == [deadline["id"]]
    assert "gdpr_supervisory_authority" in unmet["deadlines_settled"]["reason"]
    assert api.incident(manager, incident_id)["status"] == "acknowledged"

    resolve(api, manager, incident_id)
    move_action(api, participant, incident_id, fix, status="done")
    assert "resolved" not in gates(problem(close(api, manager, incident_id), 409))
    move_action(api, manager, incident_id, skip, status="wont_do")  # the manager approves
    still = gates(problem(close(api, manager, incident_id), 409))
    assert list(still) == ["pir_signed_off", "evidence_checked_in", "deadlines_settled"]

    ok(
        api.http.post(
            f"/v1/evidence/{item['id']}/transfers/{transfer['id']}/receipt",
            json={},
            headers=manager.headers,
        )
    )
    timeline_has(api, incident_id, "evidence.received")
    problem(
        api.http.post(
            f"{base}/deadlines/{deadline['id']}/not-applicable", json={}, headers=manager.headers
        ),
        422,
        field="reason",
    )
    marked = ok(
        api.http.post(
            f"{base}/deadlines/{deadline['id']}/not-applicable",
            json={"reason": "Encrypted laptop: no risk to individuals"},
            headers=manager.headers,
        )
    )
    assert marked["status"] == "not_applicable"
    assert marked["not_applicable_reason"] == "Encrypted laptop: no risk to individuals"
    problem(
        api.http.post(
            f"{base}/deadlines/{deadline['id']}/met",
            json={"reference": "x"},
            headers=manager.headers,
        ),
        409,
    )
    timeline_has(api, incident_id, "deadline.marked_not_applicable")
    assert list(gates(problem(close(api, manager, incident_id), 409))) == ["pir_signed_off"]

    signed_off(api, crew, incident_id)
    closed = ok(close(api, manager, incident_id, closure_code="risk_accepted"))
    assert closed["status"] == "closed"


def test_reopening_undoes_the_closure_and_the_review_must_be_signed_again(
    api: Api, crew: Crew
) -> None:
    manager = crew.manager
    incident_id = commanded(api, crew, impact="extensive", urgency="critical")  # a P1
    resolve(api, manager, incident_id)
    signed_off(api, crew, incident_id)
    ok(close(api, manager, incident_id))
    ok(run(api, manager, incident_id, "reopen"))
    reopened = api.incident(manager, incident_id)
    assert reopened["status"] == "acknowledged" and reopened["milestones"]["closed_at"] is None
    resolve(api, manager, incident_id)
    stale = gates(problem(close(api, manager, incident_id), 409))
    assert list(stale) == ["pir_signed_off"]
    assert "latest resolution" in stale["pir_signed_off"]["reason"]
    signed_off(api, crew, incident_id)  # drafted again: the facts of the new resolution
    ok(close(api, manager, incident_id, closure_code="duplicate"))


def test_who_may_close_and_bad_input(api: Api, crew: Crew) -> None:
    incident_id = commanded(
        api, crew, commander="participant", impact="moderate", urgency="medium"
    )  # a P3: no review needed
    resolve(api, crew.participant, incident_id)
    # The commander may not close unless the firm allows it; nor may another responder.
    refused = problem(close(api, crew.participant, incident_id), 403)
    assert "manager" in refused["detail"]
    problem(close(api, crew.bystander, incident_id), 403)
    problem(close(api, crew.walled, incident_id), 404)
    problem(close(api, crew.client, incident_id), 404)
    problem(close(api, crew.manager, incident_id, closure_code="fixed"), 422, field="closure_code")
    problem(close(api, crew.manager, incident_id, summary=" "), 422, field="summary")
    no_summary = api.http.post(
        f"/v1/incidents/{incident_id}/close",
        json={"closure_code": "resolved"},
        headers=crew.manager.headers,
    )
    problem(no_summary, 422, field="summary")
    stale = api.http.post(
        f"/v1/incidents/{incident_id}/close",
        json={"closure_code": "resolved", "summary": "done"},
        headers=crew.manager.headers | {"If-Match": '"1"'},
    )
    problem(stale, 412)
    assert api.incident(crew.manager, incident_id)["status"] == "resolved"
    ok(close(api, crew.manager, incident_id, closure_code="false_positive"))
    transitions = ok(
        api.http.get(f"/v1/incidents/{incident_id}/transitions", headers=crew.manager.headers)
    )
    assert transitions["allowed"] == ["reopen"]


# --- The firm's settings --------------------------------------------------------------------


@pytest.fixture(scope="module")
def lenient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A firm whose commanders may close and that checks only its actions."""
    platform = start_platform(
        tmp_path_factory.mktemp("lenient"),
        extra_env={
            "FIREBREAK_COMMANDER_MAY_CLOSE": "true",
            "FIREBREAK_CLOSURE_GATES": "actions_finished",
        },
    )
    yield platform
    platform.stop()


def test_a_firm_may_let_commanders_close_and_choose_its_gates(lenient: Platform) -> None:
    api = Api(lenient)
    crew = new_crew(api, "Lenient")
    incident_id = commanded(
        api, crew, commander="participant", impact="extensive", urgency="critical"
    )  # a P1, yet no review is required here
    resolve(api, crew.participant, incident_id)
    action = new_action(api, crew.participant, incident_id, crew.participant.person_id)
    refused = problem(close(api, crew.participant, incident_id), 409)
    assert list(gates(refused)) == ["actions_finished"] and refused["gates"] == [
        "resolved",
        "actions_finished",
    ]
    problem(close(api, crew.bystander, incident_id), 403)  # not its commander
    move_action(api, crew.participant, incident_id, action, status="done")
    assert ok(close(api, crew.participant, incident_id))["status"] == "closed"


def test_the_gate_settings_are_checked_when_read() -> None:
    with pytest.raises(SettingsError, match="FIREBREAK_CLOSURE_GATES"):
        Settings.from_environment({"FIREBREAK_CLOSURE_GATES": "resolved,pir_signed"})
    with pytest.raises(SettingsError, match="FIREBREAK_CLOSURE_PIR_PRIORITIES"):
        Settings.from_environment({"FIREBREAK_CLOSURE_PIR_PRIORITIES": "P1,high"})
    defaults = Settings.from_environment({})
    assert defaults.closure_pir_priority_set == {"P1", "P2"}
    assert defaults.closure_gate_set == {
        "pir_signed_off",
        "actions_finished",
        "evidence_checked_in",
        "deadlines_settled",
    }
    assert defaults.commander_may_close is False


def test_which_gates_apply_follows_the_highest_priority() -> None:
    policy = ClosurePolicy(gates=frozenset({"pir_signed_off"}), pir_priorities=frozenset({"P1"}))
    downgraded = events_pb2.ResponseState(status="resolved", priority="P3", highest_priority="P1")
    assert gates_for(policy, downgraded) == ["resolved", "pir_signed_off"]
    always_p3 = events_pb2.ResponseState(status="resolved", priority="P3", highest_priority="P3")
    assert gates_for(policy, always_p3) == ["resolved"]
    nothing = Situation(state=always_p3, review=None, actions=[], evidence=[], deadlines=[])
    assert unmet_gates(policy, nothing) == []


def test_the_gates_are_shown_before_anyone_tries_to_close(api: Api, crew: Crew) -> None:
    """GET …/closure-gates judges as closing would: the same unmet gates as the 409, none
    once they are met (what the console's closing form shows first)."""
    incident_id = commanded(api, crew, impact="extensive", urgency="medium")  # a P2
    path = f"/v1/incidents/{incident_id}/closure-gates"
    shown = ok(api.http.get(path, headers=crew.manager.headers))
    refused = gates(problem(close(api, crew.manager, incident_id), 409))
    assert (
        [gate["gate"] for gate in shown["unmet"]]
        == list(refused)
        == [
            "resolved",
            "pir_signed_off",
        ]
    )
    assert "pir_signed_off" in shown["gates"]
    resolve(api, crew.manager, incident_id)
    signed_off(api, crew, incident_id)
    assert ok(api.http.get(path, headers=crew.manager.headers))["unmet"] == []
    problem(api.http.get(path, headers=crew.client.headers), 404)  # staff only
