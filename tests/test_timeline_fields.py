"""The timeline keeps the platform's words apart from what people wrote (issue 13 §4), over HTTP
on SQLite and PostgreSQL: text that mimics a platform line, in a report's title and description,
notes and a reason, never reaches an entry's summary, for staff or for the client; it is in the
entry's fields (the client's only where a client may read it), and documents quote it after the
line. Also: entries written before the fields existed keep their summaries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from firebreak.api.review.v1 import review_pb2
from firebreak.database import create_engine
from firebreak.migrations import migrate, upgrade
from services.review.documents import entry_text, markdown
from services.review.models import timeline_entries
from services.review.pdf_documents import pdf
from services.review.review_document import review_document
from tests.follow_up_client import Crew, new_crew, worked_incident
from tests.gateway_client import Api
from tests.lifecycle_client import ok, run
from tests.review_client import pdf_text, said, timeline_has

# Each reads as the platform's own statement, were it spliced into a line.
TITLE = "resolved by the incident commander; evidence verified"
DESCRIPTION = "closed (resolved) by the firm; no further action"
INTERNAL_NOTE = "acknowledged by the response team; legal hold released"
CLIENT_NOTE = "contained; escalation stopped: resolved"
REASON = "declined as not an incident by the commander"
PLANTED = (TITLE, DESCRIPTION, INTERNAL_NOTE, CLIENT_NOTE, REASON)


@pytest.fixture(scope="module")
def crew(api: Api) -> Crew:
    return new_crew(api, "Fields")


@pytest.fixture(scope="module")
def incident_id(api: Api, crew: Crew) -> str:
    """An incident whose reporter and staff wrote lines that mimic the platform's."""
    incident_id = worked_incident(api, crew, title=TITLE, description=DESCRIPTION)
    for body, audience in ((INTERNAL_NOTE, "internal"), (CLIENT_NOTE, "client")):
        ok(
            api.http.post(
                f"/v1/incidents/{incident_id}/notes",
                json={"body": body, "audience": audience},
                headers=crew.manager.headers,
            )
        )
    ok(run(api, crew.manager, incident_id, "reclassify", {"urgency": "low", "reason": REASON}))
    timeline_has(api, incident_id, "incident.reclassified")
    return incident_id


def by_type(entries: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [entry for entry in entries if entry["type"] == kind]


def test_staff_read_what_people_wrote_in_fields_never_in_a_summary(
    api: Api, crew: Crew, incident_id: str
) -> None:
    entries = api.timeline(crew.manager, incident_id)
    for entry in entries:
        for planted in PLANTED:
            assert planted not in entry["summary"], entry
    (reported,) = by_type(entries, "incident.reported")
    assert reported["summary"].endswith(
        " reported (service_outage, impact significant, urgency high)"
    )
    assert said(reported) == [("reporter", "Grace Hopper"), ("title", TITLE)]
    notes = by_type(entries, "note.added")
    assert [(entry["summary"], said(entry)) for entry in notes] == [
        ("internal note added", [("note", INTERNAL_NOTE)]),
        ("client note added", [("note", CLIENT_NOTE)]),
    ]
    (reclassified,) = by_type(entries, "incident.reclassified")
    assert said(reclassified) == [("reason", REASON)]
    # The description is not on the timeline at all.
    assert DESCRIPTION not in str(entries)


def test_a_client_reads_only_its_own_fields_and_no_planted_line(
    api: Api, crew: Crew, incident_id: str
) -> None:
    for reader in (crew.client, crew.contact):
        entries = api.timeline(reader, incident_id)
        for entry in entries:
            for planted in PLANTED:
                assert planted not in entry["summary"], entry
        (reported,) = by_type(entries, "incident.reported")
        assert said(reported) == [("reporter", "Grace Hopper"), ("title", TITLE)]
        (note,) = by_type(entries, "note.added")
        assert (note["summary"], said(note)) == ("note added", [("note", CLIENT_NOTE)])
        # Why it was reclassified is the firm's, and so is its internal note.
        (reclassified,) = by_type(entries, "incident.reclassified")
        assert said(reclassified) == []
        assert INTERNAL_NOTE not in str(entries) and REASON not in str(entries)


def test_the_client_report_quotes_what_people_wrote_after_the_line(
    api: Api, crew: Crew, incident_id: str
) -> None:
    report = api.http.get(
        f"/v1/incidents/{incident_id}/report",
        headers=crew.client.headers | {"Accept": "text/markdown"},
    )
    assert report.status_code == 200, report.text
    assert f"note added — note: “{CLIENT_NOTE}”" in report.text
    assert f"reporter: “Grace Hopper”; title: “{TITLE}”" in report.text
    assert INTERNAL_NOTE not in report.text and REASON not in report.text


def test_a_document_shows_the_line_then_each_value_quoted() -> None:
    entry = review_pb2.TimelineEntry(
        summary="internal note added",
        fields=[
            # A value's own curly quotes cannot close the platform's.
            review_pb2.TimelineField(name="note", value="it said “closed”; by: “Ann"),
            review_pb2.TimelineField(name="incident_commander", value="Bo"),
        ],
    )
    expected = 'internal note added — note: “it said "closed"; by: "Ann”; incident commander: “Bo”'
    assert entry_text(entry) == expected
    assert entry_text(review_pb2.TimelineEntry(summary="contained")) == "contained"

    review = review_pb2.PostIncidentReview(
        incident=review_pb2.ReviewIncident(reference="INC-1", title="VPN down"),
        key_events=[entry],
    )
    document = review_document(review, firm="Firm LLP", client_name="Client Ltd")
    assert f"| {expected} |" in markdown(document)
    assert expected in pdf_text(pdf(document))


async def test_entries_written_before_the_fields_keep_their_summaries(
    new_database: Callable[[str], str],
) -> None:
    engine = create_engine(new_database("review"))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade, "review", "0005")
            await connection.exec_driver_sql(
                "INSERT INTO timeline_entries (event_id, incident_id, client_id, type, producer,"
                " occurred_at, recorded_at, summary, client_summary) VALUES ('e-1', 'i-1', 'c-1',"
                " 'note.added', 'review', '2026-01-02 03:04:05', '2026-01-02 03:04:05',"
                " 'The words as written', 'The words as written')"
            )
        await migrate(engine, "review")
        async with engine.connect() as connection:
            row = (await connection.execute(select(timeline_entries))).one()
        assert (row.summary, row.client_summary) == ("The words as written",) * 2
        assert (row.fields, row.client_fields) == ([], [])
    finally:
        await engine.dispose()
