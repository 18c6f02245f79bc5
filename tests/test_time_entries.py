"""Time spent on incidents, over HTTP on SQLite and PostgreSQL: people log it, it is listed per
incident, and totalled per client, person and role for billing as JSON and as CSV (parsed back
here); managers see the clients inside their wall, a responder only their own time; clients
see none of it; bad input is refused naming the field, with nothing written."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.follow_up_client import Crew, new_crew, problem, worked_incident
from tests.gateway_client import Api, Tenant
from tests.lifecycle_client import ok


@pytest.fixture(scope="module")
def crew(api: Api) -> Crew:
    return new_crew(api, "Billing")


def log(api: Api, caller: Tenant, incident_id: str, **body: Any) -> httpx.Response:
    entry = {"minutes": 30, "role": "responder", "activity": "Log review"} | body
    return api.http.post(f"/v1/incidents/{incident_id}/time", json=entry, headers=caller.headers)


def listed(api: Api, caller: Tenant, incident_id: str) -> dict[str, Any]:
    response = api.http.get(f"/v1/incidents/{incident_id}/time", headers=caller.headers)
    body: dict[str, Any] = ok(response)
    return body


def report(api: Api, caller: Tenant, **params: Any) -> httpx.Response:
    return api.http.get("/v1/reports/time", params=params, headers=caller.headers)


def test_time_is_logged_listed_and_totalled_per_client_person_and_role(
    api: Api, crew: Crew
) -> None:
    first, second = worked_incident(api, crew), worked_incident(api, crew)
    day = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    entry = ok(log(api, crew.participant, first, minutes=90, at=day.isoformat()))
    assert entry["person"]["id"] == crew.participant.person_id
    assert entry["minutes"] == 90 and entry["role"] == "responder"
    assert datetime.fromisoformat(entry["at"]) == day
    ok(log(api, crew.participant, second, minutes=15, role="scribe", activity="Minutes"))
    ok(log(api, crew.participant, second, minutes=45, activity="Containment"))
    ok(log(api, crew.manager, first, minutes=60, role="incident_commander", activity="Bridge"))

    on_first = listed(api, crew.manager, first)
    assert on_first["total_minutes"] == 150
    assert [item["minutes"] for item in on_first["items"]] == [90, 60]  # by when it was done

    totals = ok(report(api, crew.manager, client_id=crew.client.id))
    rows = {(item["person"]["id"], item["role"]): item for item in totals["items"]}
    assert {key: (row["minutes"], row["entries"]) for key, row in rows.items()} == {
        (crew.participant.person_id, "responder"): (135, 2),
        (crew.participant.person_id, "scribe"): (15, 1),
        (crew.manager.person_id, "incident_commander"): (60, 1),
    }
    assert totals["total_minutes"] == 210
    assert {row["client_id"] for row in rows.values()} == {crew.client.id}
    assert {row["client_name"] for row in rows.values()} == {"Billing LLP"}
    assert rows[crew.participant.person_id, "responder"]["hours"] == 2.25

    # A period: only the work done in it.
    since = (day + timedelta(hours=1)).isoformat()
    recent = ok(report(api, crew.manager, client_id=crew.client.id, **{"from": since}))
    assert recent["total_minutes"] == 120


def test_the_csv_export_parses_back_to_the_same_totals(api: Api, crew: Crew) -> None:
    incident_id = worked_incident(api, crew)
    client = api.new_client("=HYPERLINK(evil) LLP")  # a name a spreadsheet would run
    other_incident = worked_incident(api, Crew(**(vars(crew) | {"client": client})))
    ok(log(api, crew.participant, incident_id, minutes=20))
    ok(log(api, crew.participant, other_incident, minutes=40, role="communications_lead"))

    for how in ({"format": "csv"}, {"Accept": "text/csv"}):
        params = {key: value for key, value in how.items() if key == "format"}
        headers = crew.manager.headers | {
            key: value for key, value in how.items() if key != "format"
        }
        response = api.http.get("/v1/reports/time", params=params, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert set(rows[0]) == {
            "client_id",
            "client_name",
            "person_id",
            "person_name",
            "role",
            "entries",
            "minutes",
            "hours",
        }
        json_rows = ok(report(api, crew.manager))["items"]
        assert [
            (row["client_id"], row["person_id"], row["role"], int(row["minutes"])) for row in rows
        ] == [
            (row["client_id"], row["person"]["id"], row["role"], row["minutes"])
            for row in json_rows
        ]
        evil = next(row for row in rows if row["client_id"] == client.id)
        assert evil["client_name"] == "'=HYPERLINK(evil) LLP"  # never a formula
        assert evil["role"] == "communications_lead" and evil["hours"] == "0.67"


def test_a_responder_reports_only_their_own_time_and_managers_only_inside_their_wall(
    api: Api, crew: Crew
) -> None:
    incident_id = worked_incident(api, crew)
    ok(log(api, crew.participant, incident_id, minutes=10))
    ok(log(api, crew.manager, incident_id, minutes=20, role="incident_commander"))

    own = ok(report(api, crew.participant))["items"]
    assert own and {item["person"]["id"] for item in own} == {crew.participant.person_id}

    walled_manager = api.new_person("manager", clients=[crew.other_client.id])
    assert ok(report(api, walled_manager))["items"] == []  # none of its clients' time yet
    problem(report(api, walled_manager, client_id=crew.client.id), 404)
    problem(report(api, crew.manager, client_id="00000000-0000-0000-0000-000000000000"), 404)
    for client_side in (crew.client, crew.contact):
        problem(report(api, client_side), 403)
        problem(log(api, client_side, incident_id), 404)
        problem(api.http.get(f"/v1/incidents/{incident_id}/time", headers=client_side.headers), 404)
    problem(log(api, crew.other_client, incident_id), 404)
    problem(log(api, crew.walled, incident_id), 404)
    problem(log(api, crew.bystander, incident_id), 403)
    # The bootstrap admin key belongs to no person: it has no time to log.
    refused = problem(log(api, api.admin, incident_id), 403)
    assert "person" in refused["detail"]
    assert listed(api, crew.manager, incident_id)["total_minutes"] == 30


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"minutes": 0}, "minutes"),
        ({"minutes": 24 * 60 + 1}, "minutes"),
        ({"minutes": 1.5}, "minutes"),
        ({"minutes": "30"}, "minutes"),
        ({"role": "bystander"}, "role"),
        ({"activity": ""}, "activity"),
        ({"at": "2999-01-01T00:00:00Z"}, "at"),
        ({"at": "yesterday"}, "at"),
        ({"person_id": "00000000-0000-0000-0000-000000000000"}, "person_id"),
    ],
)
def test_bad_time_is_refused_naming_the_field_and_writes_nothing(
    api: Api, crew: Crew, body: dict[str, Any], field: str
) -> None:
    incident_id = worked_incident(api, crew)
    problem(log(api, crew.manager, incident_id, **body), 422, field=field)
    assert listed(api, crew.manager, incident_id)["items"] == []


def test_a_bad_report_period_is_refused_naming_it(api: Api, crew: Crew) -> None:
    now = datetime.now(UTC)
    later = now + timedelta(hours=1)
    problem(
        report(api, crew.manager, **{"from": later.isoformat(), "to": now.isoformat()}),
        422,
        field="to",
    )
    problem(report(api, crew.manager, **{"from": "last week"}), 422, field="from")
    problem(report(api, crew.manager, format="xlsx"), 422, field="format")
