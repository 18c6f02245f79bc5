"""Follow-up reporting over HTTP against the real processes, on SQLite and PostgreSQL: the
client report holds nothing internal (distinctive internal text is planted and searched for in
the PDF's extracted text), who may read which report, and the monthly client summary; plus the
PDF layout on its own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.review.documents import Document, Facts, Heading, Paragraph, Table, markdown
from services.review.pdf_documents import pdf
from tests.follow_up_client import Crew, new_crew, problem
from tests.gateway_client import Api
from tests.lifecycle_client import finish_containment, ok, report_triaged, run
from tests.review_client import close, new_action, pdf_text, resolve, signed_off, timeline_has

# Distinctive words planted in the firm's internal work: none may reach a client's report.
INTERNAL = {
    "note": "ZEBRAFINCH internal note about the admin password",
    "analysis": "QUOKKA root cause: an engineer skipped the change review",
    "update": "WOMBAT internal update: blame the vendor",
    "contain": "NARWHAL isolated the host from the core switch",
    "resolve": "PANGOLIN restored from last night's backup",
    "lessons": "AXOLOTL lesson learned for the team only",
    "closure": "OKAPI closure summary for the firm",
}


@pytest.fixture(scope="module")
def crew(api: Api) -> Crew:
    return new_crew(api, "Reports")


@pytest.fixture(scope="module")
def reported(api: Api, crew: Crew) -> str:
    """A P2 worked to closure, with internal text planted everywhere the firm writes."""
    manager = crew.manager
    incident_id = report_triaged(
        api, crew.client, title="Payroll export failed", impact="extensive", urgency="medium"
    )
    base = f"/v1/incidents/{incident_id}"
    ok(run(api, manager, incident_id, "acknowledge"))
    for body, audience in ((INTERNAL["note"], "internal"), ("We are on it.", "client")):
        ok(
            api.http.post(
                f"{base}/notes", json={"body": body, "audience": audience}, headers=manager.headers
            )
        )
    ok(
        api.http.post(
            f"{base}/updates",
            json={"audience": "internal", "body": INTERNAL["update"]},
            headers=manager.headers,
        )
    )
    ok(
        api.http.post(
            f"{base}/updates",
            json={"audience": "client", "body": "Payroll exports work again."},
            headers=manager.headers,
        )
    )
    finish_containment(api, manager, incident_id)
    ok(run(api, manager, incident_id, "contain", {"summary": INTERNAL["contain"]}))
    ok(run(api, manager, incident_id, "resolve", {"summary": INTERNAL["resolve"]}))
    ok(
        api.http.put(
            f"{base}/analysis",
            json={"summary": INTERNAL["analysis"], "root_cause": INTERNAL["analysis"]},
            headers=manager.headers,
        )
    )
    action = new_action(
        api,
        manager,
        incident_id,
        crew.participant.person_id,
        title="Add a payroll export check",
        description=INTERNAL["note"],
    )
    ok(api.http.patch(f"{base}/actions/{action}", json={"status": "done"}, headers=manager.headers))
    signed_off(api, crew, incident_id)
    ok(
        api.http.patch(
            f"/v1/incidents/{incident_id}/review",
            json={"lessons_learned": INTERNAL["lessons"]},
            headers=manager.headers,
        )
    )
    ok(api.http.post(f"/v1/incidents/{incident_id}/review/sign-off", headers=manager.headers))
    ok(close(api, manager, incident_id, summary=INTERNAL["closure"]))
    timeline_has(api, incident_id, "incident.closed")
    return incident_id


def test_the_client_report_holds_nothing_internal(api: Api, crew: Crew, reported: str) -> None:
    for reader in (crew.client, crew.contact, crew.manager):
        answer = api.http.get(f"/v1/incidents/{reported}/report", headers=reader.headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/pdf"
        text = pdf_text(answer.content)
        for expected in (
            "Incident report",
            "Payroll export failed",
            "Reports LLP",
            "What happened",
            "We are on it.",
            "Payroll exports work again.",
            "Add a payroll export check",
            "closed: resolved",
            "Page 2 of",
        ):
            assert expected in text, expected
        for where, planted in INTERNAL.items():
            assert planted.split()[0] not in text, where
    as_markdown = api.http.get(
        f"/v1/incidents/{reported}/report",
        headers=crew.client.headers | {"Accept": "text/markdown"},
    )
    assert as_markdown.headers["content-type"].startswith("text/markdown")
    assert "| Kind | Action | Due | State |" in as_markdown.text
    for planted in INTERNAL.values():
        assert planted.split()[0] not in as_markdown.text
    # The firm's own review of it does hold them.
    review = api.http.get(
        f"/v1/incidents/{reported}/review",
        headers=crew.manager.headers | {"Accept": "text/markdown"},
    ).text
    assert INTERNAL["analysis"] in review and INTERNAL["lessons"] in review


def test_who_reads_which_report(api: Api, crew: Crew, reported: str) -> None:
    path = f"/v1/incidents/{reported}/report"
    problem(api.http.get(path, headers=crew.other_client.headers), 404)
    problem(api.http.get(path, headers=crew.walled.headers), 404)
    problem(api.http.get(path, headers=crew.client.headers | {"Accept": "application/json"}), 406)
    month = datetime.now(UTC).strftime("%Y-%m")
    summary = f"/v1/reports/clients/{crew.client.id}/summary"
    for reader in (crew.client, crew.contact, crew.bystander):
        answer = api.http.get(summary, params={"month": month}, headers=reader.headers)
        assert answer.status_code == 200, answer.text
        text = pdf_text(answer.content)
        reference = api.incident(crew.manager, reported)["reference"]
        for expected in (
            "Monthly incident summary",
            "Reports LLP",
            reference,
            "Time to acknowledge",
            "Response targets",
        ):
            assert expected in text, expected
        for planted in INTERNAL.values():
            assert planted.split()[0] not in text
    problem(api.http.get(summary, params={"month": month}, headers=crew.other_client.headers), 404)
    problem(api.http.get(summary, params={"month": month}, headers=crew.walled.headers), 404)
    problem(
        api.http.get(summary, params={"month": "2026-13"}, headers=crew.client.headers),
        422,
        field="month",
    )
    problem(api.http.get(summary, headers=crew.client.headers), 422, field="month")
    empty = api.http.get(
        summary,
        params={"month": "2001-01"},
        headers=crew.client.headers | {"Accept": "text/markdown"},
    )
    assert "No incidents were reported this month." in empty.text


def test_a_report_of_an_unfinished_incident_says_so(api: Api, crew: Crew) -> None:
    incident_id = report_triaged(api, crew.client, title="Printer offline")
    ok(run(api, crew.manager, incident_id, "acknowledge"))
    resolve(api, crew.manager, incident_id)
    timeline_has(api, incident_id, "incident.resolved")
    text = api.http.get(
        f"/v1/incidents/{incident_id}/report",
        headers=crew.client.headers | {"Accept": "text/markdown"},
    ).text
    assert "- **Status**: resolved" in text and "No follow-up actions." in text


def test_the_pdf_layout_parses_back_with_its_tables_and_page_numbers() -> None:
    rows = [(str(index), f"Entry number {index} “quoted” → done", "ok") for index in range(80)]
    document = Document(
        kind="Post-incident review",
        title="INC-1 Café déjà vu — 東京",
        firm="Firm & Co",
        cover=[("Client", "Zoë Ltd")],
        notice="Confidential.",
        blocks=[
            Heading("Summary"),
            Paragraph("A long paragraph. " * 60),
            Facts([("Root cause", "Firmware")]),
            Table(("#", "What", "State"), rows, (0.1, 0.7, 0.2)),
            Table(("Empty",), [], empty="Nothing here."),
        ],
        filename="pir-INC-1",
    )
    content = pdf(document)
    assert content.startswith(b"%PDF-")
    text = pdf_text(content)
    # Windows-1252 kept (curly quotes and dashes too); what Helvetica lacks printed plainly.
    assert "Café déjà vu — ??" in text
    assert "Entry number 79 “quoted” -> done" in text
    assert "Nothing here." in text and "Page 3 of" in text
    assert "Zoë Ltd" in text
    as_markdown = markdown(document)
    assert as_markdown.startswith("# Post-incident review: INC-1 Café déjà vu — 東京\n")
    assert "| 79 | Entry number 79 “quoted” → done | ok |" in as_markdown
