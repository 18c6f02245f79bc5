"""An incident's analysis over HTTP, on SQLite and PostgreSQL: every change is a version kept
whole with who made it and when, GET shows the newest with its version as the ETag, a stale
If-Match is refused and writes nothing, the timeline records each change for staff only, and
bad input and callers who may not write are refused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.follow_up_client import Crew, new_crew, problem, worked_incident
from tests.gateway_client import Api, Tenant, eventually
from tests.lifecycle_client import ok

ROOT_CAUSE = "An expired certificate on the VPN concentrator"
FIRST = {
    "summary": "Remote staff could not connect for two hours.",
    "root_cause": ROOT_CAUSE,
    "five_whys": [
        "Why did the VPN refuse connections? Its certificate had expired.",
        "Why had it expired? Nobody renewed it.",
        "Why not? Renewal was a manual calendar reminder.",
    ],
    "contributing_factors": [
        {"category": "process", "description": "Renewal depended on one person"},
        {"category": "technology", "description": "No expiry monitoring"},
    ],
}


@pytest.fixture(scope="module")
def crew(api: Api) -> Crew:
    return new_crew(api, "Analysis")


def put(
    api: Api, caller: Tenant, incident_id: str, body: dict[str, Any], if_match: str | None = None
) -> httpx.Response:
    headers = caller.headers | ({"If-Match": if_match} if if_match is not None else {})
    return api.http.put(f"/v1/incidents/{incident_id}/analysis", json=body, headers=headers)


def get(api: Api, caller: Tenant, incident_id: str, suffix: str = "") -> httpx.Response:
    return api.http.get(f"/v1/incidents/{incident_id}/analysis{suffix}", headers=caller.headers)


def test_every_change_is_a_version_and_the_newest_is_shown(api: Api, crew: Crew) -> None:
    incident_id = worked_incident(api, crew)
    empty = get(api, crew.bystander, incident_id)
    assert ok(empty)["version"] == 0 and ok(empty)["updated_by"] is None
    assert empty.headers["ETag"] == '"0"'

    first = put(api, crew.participant, incident_id, FIRST, if_match='"0"')
    assert ok(first)["version"] == 1 and first.headers["ETag"] == '"1"'
    assert ok(first)["updated_by"]["id"] == crew.participant.person_id
    second_body = FIRST | {"root_cause": ROOT_CAUSE + ", renewed by hand until now"}
    second = ok(put(api, crew.manager, incident_id, second_body, if_match='"1"'))
    assert second["version"] == 2

    shown = get(api, crew.bystander, incident_id)  # any staff inside the wall reads it
    assert shown.headers["ETag"] == '"2"'
    assert {key: ok(shown)[key] for key in FIRST} == second_body
    assert ok(shown)["updated_by"]["id"] == crew.manager.person_id

    history = ok(get(api, crew.manager, incident_id, "/history"))["items"]
    assert [item["version"] for item in history] == [2, 1]
    assert history[1]["root_cause"] == ROOT_CAUSE
    assert history[1]["updated_by"]["id"] == crew.participant.person_id
    assert history[0]["updated_at"] > history[1]["updated_at"]

    # Without If-Match a change simply becomes the next version.
    assert ok(put(api, crew.manager, incident_id, {"summary": "Shorter"}))["version"] == 3


def test_a_stale_if_match_is_refused_and_nothing_is_lost(api: Api, crew: Crew) -> None:
    incident_id = worked_incident(api, crew)
    ok(put(api, crew.participant, incident_id, FIRST, if_match='"0"'))
    ok(put(api, crew.manager, incident_id, FIRST | {"summary": "The manager's words"}))
    stale = put(api, crew.participant, incident_id, FIRST | {"summary": "Mine"}, if_match='"1"')
    refused = problem(stale, 412)
    assert "version 2" in refused["detail"]
    assert stale.headers["ETag"] == '"2"'
    problem(put(api, crew.participant, incident_id, FIRST, if_match='"0"'), 412)
    problem(put(api, crew.participant, incident_id, FIRST, if_match="W/2"), 400)
    shown = ok(get(api, crew.manager, incident_id))
    assert shown["version"] == 2 and shown["summary"] == "The manager's words"


def test_each_change_is_on_the_timeline_for_staff_only(api: Api, crew: Crew) -> None:
    incident_id = worked_incident(api, crew)
    ok(put(api, crew.participant, incident_id, FIRST))

    def analysed() -> list[dict[str, Any]]:
        entries = api.timeline(crew.manager, incident_id)
        return [entry for entry in entries if entry["type"] == "analysis.updated"]

    entry = eventually(analysed)[0]
    assert entry["summary"] == "analysis updated to version 1"
    assert entry["fields"] == [{"name": "root_cause", "value": ROOT_CAUSE}]
    assert entry["actor"]["id"] == crew.participant.person_id
    for client_side in (crew.client, crew.contact):
        response = api.http.get(
            f"/v1/incidents/{incident_id}/timeline", headers=client_side.headers
        )
        assert ROOT_CAUSE not in response.text and "analysis.updated" not in response.text
        problem(get(api, client_side, incident_id), 404)
        problem(get(api, client_side, incident_id, "/history"), 404)


def test_only_participants_and_managers_write_it(api: Api, crew: Crew) -> None:
    incident_id = worked_incident(api, crew)
    for caller in (crew.client, crew.contact, crew.other_client, crew.walled):
        problem(put(api, caller, incident_id, FIRST), 404)
    problem(get(api, crew.walled, incident_id), 404)
    refused = problem(put(api, crew.bystander, incident_id, FIRST), 403)
    assert "incident_investigate" in refused["detail"]
    assert ok(get(api, crew.manager, incident_id))["version"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"contributing_factors": [{"category": "luck", "description": "x"}]},
            "contributing_factors.0.category",
        ),
        (
            {"contributing_factors": [{"category": "people", "description": ""}]},
            "contributing_factors.0.description",
        ),
        ({"contributing_factors": [{"category": "people"}]}, "contributing_factors.0.description"),
        ({"five_whys": ["why?"] * 11}, "five_whys"),
        ({"five_whys": ["why?", ""]}, "five_whys.1"),
        ({"five_whys": "why?"}, "five_whys"),
        ({"summary": "x" * 20_001}, "summary"),
        ({"root_cause": "a\x00b"}, "root_cause"),
        ({"lessons": "later, in the review"}, "lessons"),
    ],
)
def test_bad_analyses_are_refused_naming_the_field(
    api: Api, crew: Crew, body: dict[str, Any], field: str
) -> None:
    incident_id = worked_incident(api, crew)
    problem(put(api, crew.manager, incident_id, body), 422, field=field)
    assert ok(get(api, crew.manager, incident_id))["version"] == 0
