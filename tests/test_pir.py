"""The post-incident review over HTTP against the real processes, on SQLite and PostgreSQL:
the whole path from resolved to closed, what a draft knows, signatures and versions, the
documents (PDF parsed back), and what a closed incident's review allows."""

from __future__ import annotations

from typing import Any

import pytest

from tests.evidence_client import submit_once_known
from tests.follow_up_client import Crew, new_crew, problem
from tests.gateway_client import Api
from tests.lifecycle_client import ok, report_triaged, run
from tests.review_client import (
    NARRATIVE,
    close,
    move_action,
    new_action,
    pdf_text,
    resolve,
    review_path,
    timeline_has,
)


@pytest.fixture(scope="module")
def crew(api: Api) -> Crew:
    return new_crew(api, "Review")


def p1_worked(api: Api, crew: Crew) -> str:
    """A P1 of the crew's client, the manager its commander, the participant a responder."""
    incident_id = report_triaged(
        api, crew.client, title="VPN concentrator down", impact="extensive", urgency="critical"
    )
    ok(run(api, crew.manager, incident_id, "acknowledge"))
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


def test_the_full_path_from_resolved_to_closed(api: Api, crew: Crew) -> None:
    incident_id = p1_worked(api, crew)
    base = f"/v1/incidents/{incident_id}"
    manager, participant = crew.manager, crew.participant
    note = ok(
        api.http.post(
            f"{base}/notes",
            json={"body": "Saw the appliance reboot loop at 09:12", "audience": "internal"},
            headers=participant.headers,
        )
    )
    ok(
        api.http.patch(
            f"{base}/timeline/{note['event_id']}",
            json={"key_event": True},
            headers=participant.headers,
        )
    )
    item = submit_once_known(api, participant, incident_id, b"config dump", filename="vpn.cfg")
    transfer = ok(
        api.http.post(
            f"/v1/evidence/{item['id']}/transfers",
            json={"to": manager.person_id, "purpose": "analysis", "location": "lab"},
            headers=participant.headers,
        )
    )
    ok(
        api.http.post(
            f"/v1/evidence/{item['id']}/transfers/{transfer['id']}/receipt",
            json={},
            headers=manager.headers,
        )
    )
    flagged = ok(api.http.post(f"{base}/flags", json={"flags": ["nis2"]}, headers=manager.headers))
    for deadline in flagged["deadlines"]:
        if deadline["rule"] == "nis2_early_warning":
            ok(
                api.http.post(
                    f"{base}/deadlines/{deadline['id']}/met",
                    json={"reference": "CSIRT-2026-77"},
                    headers=manager.headers,
                )
            )
        else:
            ok(
                api.http.post(
                    f"{base}/deadlines/{deadline['id']}/not-applicable",
                    json={"reason": "Assessed as not significant under Art. 23(3)"},
                    headers=manager.headers,
                )
            )
    resolve(api, manager, incident_id)  # resolved
    ok(
        api.http.put(
            f"{base}/analysis",
            json={
                "summary": "A firmware bug looped the appliance on reboot.",
                "root_cause": "Unpatched firmware 4.2 with a known reboot loop",
                "five_whys": ["It rebooted", "Firmware bug"],
                "contributing_factors": [
                    {"category": "technology", "description": "No configuration backup"}
                ],
            },
            headers=participant.headers,
        )
    )  # analysed
    action_id = new_action(api, participant, incident_id, participant.person_id)
    move_action(api, participant, incident_id, action_id, status="done")
    new_action(
        api,
        participant,
        incident_id,
        participant.person_id,
        kind="preventive",
        title="Subscribe to the vendor's advisories",
    )  # preventive: may run on
    timeline_has(api, incident_id, "evidence.received")
    timeline_has(api, incident_id, "deadline.marked_not_applicable", 2)

    drafted = api.http.post(review_path(incident_id), headers=participant.headers)
    assert drafted.status_code == 201, drafted.text  # the PIR
    review = drafted.json()
    assert drafted.headers["etag"] == '"1"' and review["status"] == "draft"
    _assert_the_draft_knows(review, note_id=note["event_id"], evidence_id=item["id"])

    refused = problem(close(api, manager, incident_id), 409)
    assert [gate["gate"] for gate in refused["unmet_gates"]] == ["pir_signed_off"]

    edited = ok(
        api.http.patch(review_path(incident_id), json=NARRATIVE, headers=participant.headers)
    )
    assert edited["version"] == 2 and edited["lessons_learned"] == NARRATIVE["lessons_learned"]
    attended = ok(
        api.http.post(f"{review_path(incident_id)}/sign-off", headers=participant.headers)
    )
    assert attended["status"] == "draft"  # an attendee's signature does not sign it off
    assert [s["capacity"] for s in attended["signatures"]] == ["attendee"]
    approved = ok(api.http.post(f"{review_path(incident_id)}/sign-off", headers=manager.headers))
    assert approved["status"] == "signed_off"  # signed
    assert {s["person"]["id"] for s in approved["signatures"]} == {
        participant.person_id,
        manager.person_id,
    }

    closed = ok(close(api, manager, incident_id, closure_code="resolved"))  # closed
    assert closed["status"] == "closed" and closed["milestones"]["closed_at"] is not None
    timeline_has(api, incident_id, "incident.closed")
    entries = api.timeline(api.admin, incident_id)
    closed_line = next(e for e in entries if e["type"] == "incident.closed")
    assert "resolved" in closed_line["summary"]
    client_lines = api.timeline(crew.client, incident_id)
    assert any(e["summary"] == "closed (resolved)" for e in client_lines)

    document = api.http.get(
        review_path(incident_id), headers=manager.headers | {"Accept": "application/pdf"}
    )
    assert document.status_code == 200, document.text
    assert document.headers["content-type"] == "application/pdf"
    text = pdf_text(document.content)
    for expected in (
        "Post-incident review",
        "VPN concentrator down",
        "Lessons learned",
        NARRATIVE["lessons_learned"],
        "Unpatched firmware 4.2",
        # The key event: the platform's line, then the note quoted.
        "internal note added — note: “Saw the appliance reboot loop at 09:12”",
        "vpn.cfg",
        "nis2_early_warning",
        "Page 2 of",
        "signed off",
    ):
        assert expected in text, expected

    # A closed incident's review is final, until the incident is reopened.
    problem(
        api.http.patch(review_path(incident_id), json={"summary": "x"}, headers=manager.headers),
        409,
    )
    ok(run(api, manager, incident_id, "reopen"))
    timeline_has(api, incident_id, "incident.reopened")
    ok(
        api.http.patch(
            review_path(incident_id),
            json={"summary": "Reopened: the loop came back"},
            headers=manager.headers,
        )
    )


def _assert_the_draft_knows(review: dict[str, Any], *, note_id: str, evidence_id: str) -> None:
    incident = review["incident"]
    assert incident["priority"] == "P1" and incident["status"] == "resolved"
    assert review["summary"] == "A firmware bug looped the appliance on reboot."
    reached = {item["name"]: item for item in review["milestones"]}
    for name in ("reported", "triaged", "acknowledged", "contained", "resolved"):
        assert reached[name]["at"] is not None, name
    assert reached["acknowledged"]["due"] is not None and reached["closed"]["at"] is None
    durations = {item["name"]: item["seconds"] for item in review["durations"]}
    assert set(durations) >= {"time_to_acknowledge", "time_to_contain", "time_to_resolve"}
    assert durations["time_to_acknowledge"] <= durations["time_to_resolve"]
    assert {holder["role"] for holder in review["roles"]} >= {"incident_commander", "responder"}
    assert [entry["event_id"] for entry in review["key_events"]] == [note_id]
    assert review["key_events"][0]["summary"] == "internal note added"
    assert review["key_events"][0]["fields"] == [
        {"name": "note", "value": "Saw the appliance reboot loop at 09:12"}
    ]
    assert review["analysis"]["root_cause"] == "Unpatched firmware 4.2 with a known reboot loop"
    assert [action["kind"] for action in review["actions"]] == ["corrective", "preventive"]
    assert [item["evidence_id"] for item in review["evidence"]] == [evidence_id]
    assert review["evidence"][0]["checked_out"] is False
    outcomes = {item["rule"]: item["status"] for item in review["deadlines"]}
    assert outcomes["nis2_early_warning"] == "met"
    assert set(outcomes.values()) == {"met", "not_applicable"}
    assert any(entry["type"] == "notification.sent" for entry in review["notifications"])


def test_signatures_are_of_one_version_and_an_edit_clears_them(api: Api, crew: Crew) -> None:
    incident_id = p1_worked(api, crew)
    resolve(api, crew.manager, incident_id)
    path = review_path(incident_id)
    ok(api.http.post(path, headers=crew.manager.headers))
    unfinished = problem(api.http.post(f"{path}/sign-off", headers=crew.manager.headers), 409)
    assert "lessons learned" in unfinished["detail"]
    ok(api.http.patch(path, json=NARRATIVE, headers=crew.manager.headers))
    signed = ok(api.http.post(f"{path}/sign-off", headers=crew.manager.headers))
    assert signed["status"] == "signed_off" and signed["version"] == 2
    problem(api.http.post(f"{path}/sign-off", headers=crew.manager.headers), 409)  # twice

    stale = api.http.patch(
        path, json={"impact": "x"}, headers=crew.manager.headers | {"If-Match": '"1"'}
    )
    problem(stale, 412)
    edited = ok(
        api.http.patch(
            path,
            json={"impact": "Remote staff could not connect."},
            headers=crew.manager.headers | {"If-Match": '"2"'},
        )
    )
    assert edited["version"] == 3 and edited["status"] == "draft" and edited["signatures"] == []
    redrafted = api.http.post(path, headers=crew.manager.headers)
    assert redrafted.status_code == 200, redrafted.text
    assert redrafted.json()["version"] == 4
    assert redrafted.json()["impact"] == "Remote staff could not connect."  # narrative kept
    # Signing the version one read, after it changed, is refused.
    problem(
        api.http.post(f"{path}/sign-off", headers=crew.manager.headers | {"If-Match": '"3"'}), 412
    )
    timeline_has(api, incident_id, "pir.signed")
    edits = [
        e["summary"] for e in api.timeline(api.admin, incident_id) if e["type"] == "pir.edited"
    ]
    assert "signatures no longer apply" not in edits[0]  # it was not signed yet
    assert "signatures no longer apply" in edits[1]


def test_who_may_do_what_to_a_review_and_bad_input(api: Api, crew: Crew) -> None:
    incident_id = p1_worked(api, crew)
    path = review_path(incident_id)
    not_yet = problem(api.http.post(path, headers=crew.manager.headers), 409)
    assert "resolved" in not_yet["detail"]
    problem(api.http.get(path, headers=crew.manager.headers), 404)
    resolve(api, crew.manager, incident_id)
    ok(api.http.post(path, headers=crew.manager.headers))
    problem(api.http.post(path, headers=crew.bystander.headers), 403)
    problem(api.http.get(path, headers=crew.walled.headers), 404)
    problem(api.http.get(path, headers=crew.client.headers), 404)
    problem(api.http.get(path, headers=crew.contact.headers), 404)
    problem(
        api.http.patch(path, json={"lessons": "typo"}, headers=crew.manager.headers),
        422,
        field="lessons",
    )
    problem(api.http.patch(path, json={}, headers=crew.manager.headers), 422, field="summary")
    problem(
        api.http.patch(path, json={"summary": "a\x00b"}, headers=crew.manager.headers),
        422,
        field="summary",
    )
    problem(api.http.get(path, headers=crew.manager.headers | {"Accept": "image/png"}), 406)
    markdown = api.http.get(path, headers=crew.manager.headers | {"Accept": "text/markdown"})
    assert markdown.status_code == 200, markdown.text
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.text.startswith("# Post-incident review: ")
    assert "## Milestones and response targets" in markdown.text
    # A bystander may read it (staff inside the wall), not sign it.
    ok(api.http.get(path, headers=crew.bystander.headers))
    problem(api.http.post(f"{path}/sign-off", headers=crew.bystander.headers), 403)
    # An admin key of no person cannot sign.
    problem(api.http.post(f"{path}/sign-off", headers=api.admin.headers), 403)
