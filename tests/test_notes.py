"""Notes and key events on an incident's timeline, over HTTP on SQLite and PostgreSQL: a note is
an entry with its author that keeps when it was written apart from when what it tells happened;
a client note reaches the client's timeline and an internal one never does; any entry can be
marked a key event and the timeline filtered to those; who may write, and bad input refused
with nothing written. Also the migration that gave every earlier entry its recorded_at."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from firebreak.database import create_engine
from firebreak.migrations import migrate, upgrade
from services.review.models import timeline_entries
from tests.follow_up_client import Crew, new_crew, problem, worked_incident
from tests.gateway_client import Api, Tenant
from tests.lifecycle_client import ok

INTERNAL_WORDS = "Internal only: suspect the vendor's patch"
CLIENT_WORDS = "We have restored access for your staff"


@pytest.fixture(scope="module")
def crew(api: Api) -> Crew:
    return new_crew(api, "Notes")


def note(api: Api, caller: Tenant, incident_id: str, **body: Any) -> Any:
    return api.http.post(
        f"/v1/incidents/{incident_id}/notes",
        json={"audience": "internal", "body": "A note"} | body,
        headers=caller.headers,
    )


def mark(api: Api, caller: Tenant, incident_id: str, entry_id: str, key: bool = True) -> Any:
    return api.http.patch(
        f"/v1/incidents/{incident_id}/timeline/{entry_id}",
        json={"key_event": key},
        headers=caller.headers,
    )


def written(api: Api, incident_id: str) -> list[tuple[str, bool]]:
    """What people wrote or marked on the timeline (the events that reach it of themselves
    keep arriving): its notes, and which entries are key events."""
    entries = timeline(api, Tenant("operator", api.admin.headers), incident_id)
    return [
        (entry["event_id"], entry["key_event"])
        for entry in entries
        if entry["type"] == "note.added" or entry["key_event"]
    ]


def timeline(api: Api, caller: Tenant, incident_id: str, **params: Any) -> list[dict[str, Any]]:
    response = api.http.get(
        f"/v1/incidents/{incident_id}/timeline", params=params, headers=caller.headers
    )
    entries: list[dict[str, Any]] = ok(response)["entries"]
    return entries


def test_a_note_keeps_its_author_and_when_it_happened_apart_from_when_it_was_written(
    api: Api, crew: Crew
) -> None:
    incident_id = worked_incident(api, crew)
    seen_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    before = datetime.now(UTC)
    written = ok(
        note(
            api,
            crew.participant,
            incident_id,
            body="09:12: the firewall dropped the VPN tunnel",
            occurred_at=seen_at.isoformat(),
        )
    )
    assert written["type"] == "note.added"
    assert written["summary"] == "internal note added"
    assert written["fields"] == [
        {"name": "note", "value": "09:12: the firewall dropped the VPN tunnel"}
    ]
    assert written["actor"]["id"] == crew.participant.person_id
    assert written["actor"]["kind"] == "responder"
    assert written["audience"] == "internal"
    assert written["key_event"] is False
    assert datetime.fromisoformat(written["occurred_at"]) == seen_at
    assert datetime.fromisoformat(written["recorded_at"]) >= before - timedelta(seconds=1)

    entries = timeline(api, crew.manager, incident_id)
    # Ordered by when things happened: the note tells of a time before the report.
    assert entries[0]["event_id"] == written["event_id"]
    assert entries[0] == written
    reported = next(entry for entry in entries if entry["type"] == "incident.reported")
    assert reported["recorded_at"] == reported["occurred_at"]

    now_note = ok(note(api, crew.manager, incident_id, body="Bridge opened"))
    assert now_note["occurred_at"] == now_note["recorded_at"]
    entries = timeline(api, crew.manager, incident_id)
    assert now_note in entries
    times = [datetime.fromisoformat(entry["occurred_at"]) for entry in entries]
    assert times == sorted(times)


def test_client_notes_reach_the_client_and_internal_ones_never(api: Api, crew: Crew) -> None:
    incident_id = worked_incident(api, crew)
    ok(note(api, crew.participant, incident_id, body=INTERNAL_WORDS))
    shared = ok(note(api, crew.manager, incident_id, body=CLIENT_WORDS, audience="client"))
    assert shared["audience"] == "client"

    staff_view = [entry["fields"] for entry in timeline(api, crew.manager, incident_id)]
    assert [{"name": "note", "value": INTERNAL_WORDS}] in staff_view
    assert [{"name": "note", "value": CLIENT_WORDS}] in staff_view
    for reader in (crew.client, crew.contact):
        response = api.http.get(f"/v1/incidents/{incident_id}/timeline", headers=reader.headers)
        assert INTERNAL_WORDS not in response.text
        entries = ok(response)["entries"]
        told = [entry for entry in entries if entry["type"] == "note.added"]
        assert [(entry["summary"], entry["fields"]) for entry in told] == [
            ("note added", [{"name": "note", "value": CLIENT_WORDS}])
        ]
        # The firm's people are "the response team" to a client.
        assert told[0]["actor"] == {"id": "", "kind": "staff", "name": "Response team"}
        assert crew.manager.person_id not in response.text


def test_any_entry_can_be_marked_a_key_event_and_the_timeline_filtered_to_them(
    api: Api, crew: Crew
) -> None:
    incident_id = worked_incident(api, crew)
    internal = ok(note(api, crew.participant, incident_id, body=INTERNAL_WORDS))
    entries = timeline(api, crew.manager, incident_id)
    triaged = next(entry for entry in entries if entry["type"] == "incident.triaged")
    assert timeline(api, crew.manager, incident_id, key_events="true") == []

    marked = ok(mark(api, crew.participant, incident_id, triaged["event_id"]))
    assert marked["key_event"] is True and marked["event_id"] == triaged["event_id"]
    ok(mark(api, crew.manager, incident_id, internal["event_id"]))
    keys = timeline(api, crew.manager, incident_id, key_events="true")
    assert [entry["event_id"] for entry in keys] == [triaged["event_id"], internal["event_id"]]
    assert all(entry["key_event"] for entry in keys)
    # A client sees only the key events meant for it.
    client_keys = timeline(api, crew.client, incident_id, key_events="true")
    assert [entry["type"] for entry in client_keys] == ["incident.triaged"]

    unmarked = ok(mark(api, crew.manager, incident_id, internal["event_id"], key=False))
    assert unmarked["key_event"] is False
    keys = timeline(api, crew.manager, incident_id, key_events="true")
    assert [entry["event_id"] for entry in keys] == [triaged["event_id"]]


def test_only_the_incidents_participants_and_managers_write_notes(api: Api, crew: Crew) -> None:
    incident_id = worked_incident(api, crew)
    first_entry = timeline(api, crew.manager, incident_id)[0]["event_id"]
    # Clients speak through their reports and read status updates: notes are the firm's.
    for caller in (crew.client, crew.contact, crew.other_client, crew.walled):
        problem(note(api, caller, incident_id), 404)
        problem(mark(api, caller, incident_id, first_entry), 404)
    refused = problem(note(api, crew.bystander, incident_id), 403)
    assert "incident_investigate" in refused["detail"]
    problem(mark(api, crew.bystander, incident_id, first_entry), 403)
    assert written(api, incident_id) == []
    ok(note(api, crew.participant, incident_id))
    ok(note(api, crew.manager, incident_id))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({"occurred_at": "2026-01-01T09:12:00"}, "occurred_at"),  # no offset: whose clock?
        ({"body": ""}, "body"),
        ({"body": "a\x00b"}, "body"),
        ({"body": "x" * 20_001}, "body"),
        ({"audience": "everyone"}, "audience"),
        ({"author": "someone else"}, "author"),
    ],
)
def test_bad_notes_are_refused_naming_the_field_and_write_nothing(
    api: Api, crew: Crew, body: dict[str, Any], field: str
) -> None:
    incident_id = worked_incident(api, crew)
    problem(note(api, crew.manager, incident_id, **body), 422, field=field)
    assert written(api, incident_id) == []


def test_marking_an_entry_of_another_incident_or_none_is_a_404(api: Api, crew: Crew) -> None:
    incident_id, elsewhere = worked_incident(api, crew), worked_incident(api, crew)
    foreign = timeline(api, crew.manager, elsewhere)[0]["event_id"]
    for entry_id in (foreign, "00000000-0000-0000-0000-000000000000", "not an id"):
        problem(mark(api, crew.manager, incident_id, entry_id), 404)
    assert not timeline(api, crew.manager, elsewhere)[0]["key_event"]
    problem(
        api.http.patch(
            f"/v1/incidents/{incident_id}/timeline/{foreign}",
            json={"key_event": "yes please"},
            headers=crew.manager.headers,
        ),
        422,
        field="key_event",
    )


async def test_entries_written_before_notes_existed_were_recorded_when_they_happened(
    new_database: Callable[[str], str],
) -> None:
    engine = create_engine(new_database("review"))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade, "review", "0002")
            await connection.exec_driver_sql(
                "INSERT INTO timeline_entries (event_id, incident_id, client_id, type, producer,"
                " occurred_at, summary) VALUES ('e-1', 'i-1', 'c-1', 'incident.reported',"
                " 'intake', '2026-01-02 03:04:05', 'reported')"
            )
        await migrate(engine, "review")
        async with engine.connect() as connection:
            row = (await connection.execute(select(timeline_entries))).one()
        assert row.recorded_at == row.occurred_at
        assert row.key_event is False
    finally:
        await engine.dispose()
