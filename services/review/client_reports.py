"""What the firm reports to its client: one incident's report, and a month's summary of all of
the client's incidents. Client-safe by construction: they are made only of what the client may
read anyway (its report, the priority and milestones, the timeline entries meant for it, the
actions' titles and states, the metrics of its own incidents), never of notes, the analysis,
internal updates, summaries, reasons, evidence custody or the firm's people's names.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.errors import InvalidArgument
from firebreak.keyset_pages import aware, aware_or_none
from services.review import actions, metrics, milestones, pir_facts, service
from services.review.documents import (
    Document,
    Facts,
    Heading,
    Paragraph,
    Table,
    entry_text,
    span,
    when,
)
from services.review.metrics import Filter

CLOSURE_WORDS = {
    "resolved": "resolved",
    "false_positive": "a false positive",
    "duplicate": "a duplicate of another incident",
    "risk_accepted": "closed with the remaining risk accepted",
}
TIME_NAMES = (
    ("time_to_acknowledge", "Time to acknowledge"),
    ("time_to_contain", "Time to contain"),
    ("time_to_resolve", "Time to resolve"),
    ("time_to_close", "Time to close"),
)


def _status(record: Mapping[Any, Any]) -> str:
    if record["status"] == "closed" and record["closure_code"]:
        return f"closed: {CLOSURE_WORDS.get(record['closure_code'], record['closure_code'])}"
    return str(record["status"])


async def client_report(
    connection: AsyncConnection,
    *,
    client_id: str | None,
    incident_id: str,
    firm: str,
    client_name: str,
    now: datetime,
) -> Document:
    """One incident, as the firm reports it to its client."""
    record = (
        await pir_facts.incident_record(connection, client_id=client_id, incident_id=incident_id)
    )._mapping
    entries = await pir_facts.client_entries(
        connection, client_id=client_id, incident_id=incident_id
    )
    action_rows = await actions.list_actions(
        connection, client_id=client_id, incident_id=incident_id
    )
    reached = [
        (item.name.capitalize(), when(item.at))
        for item in milestones.milestones(record)
        if item.at is not None
    ]
    return Document(
        kind="Incident report",
        title=f"{record['reference']} {record['title']}",
        firm=firm,
        notice=f"Prepared by {firm} for {client_name or 'its client'}.",
        filename=f"incident-report-{record['reference'] or incident_id}",
        cover=[
            ("Client", client_name or "—"),
            ("Incident", record["reference"]),
            ("Priority", record["priority"] or "—"),
            ("Status", _status(record)),
            ("Report date", when(now)),
        ],
        blocks=[
            Heading("What happened"),
            Paragraph(record["description"]),
            Heading("Impact"),
            Facts(
                [
                    ("Impact", record["impact"]),
                    ("Urgency", record["urgency"]),
                    ("Priority", record["priority"] or "—"),
                    ("Affected", ", ".join(record["affected_assets"] or []) or "—"),
                ]
            ),
            Heading("Milestones"),
            Table(("Milestone", "When"), reached, (0.4, 0.6)),
            Heading("What was done"),
            Table(
                ("When", "What"),
                [
                    (
                        when(row.occurred_at),
                        entry_text(service.entry_message(row, audience=service.CLIENT)),
                    )
                    for row in entries
                ],
                (0.25, 0.75),
            ),
            Heading("Follow-up actions"),
            Table(
                ("Kind", "Action", "Due", "State"),
                [
                    (row.kind, row.title, when(row.due_at), row.status.replace("_", " "))
                    for row in action_rows
                ],
                (0.15, 0.5, 0.2, 0.15),
                empty="No follow-up actions.",
            ),
        ],
    )


def month_period(month: str) -> tuple[datetime, datetime]:
    """[first day, first day of the next month) in UTC for "YYYY-MM"."""
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidArgument("month", "must be a month as YYYY-MM, e.g. 2026-11") from None
    if start.month == 12:
        return start, start.replace(year=start.year + 1, month=1)
    return start, start.replace(month=start.month + 1)


def _durations_table(found: Any) -> Table:
    rows = []
    for name, label in TIME_NAMES:
        stats = getattr(found, name)
        if stats.count:
            rows.append(
                (
                    label,
                    str(stats.count),
                    span(stats.mean_seconds),
                    span(stats.p50_seconds),
                    span(stats.p90_seconds),
                )
            )
    return Table(
        ("Measure", "Incidents", "Mean", "Median", "90th percentile"),
        rows,
        (0.3, 0.14, 0.18, 0.18, 0.2),
        empty="No incident reached these milestones.",
    )


async def monthly_summary(
    connection: AsyncConnection,
    *,
    client_id: str,
    client_name: str,
    month: str,
    firm: str,
    now: datetime,
) -> Document:
    """Every incident of the client reported in the month, and how the response went."""
    start, end = month_period(month)
    selection = Filter(client_ids=[client_id], start=start, end=end)
    incidents = await metrics.incidents_in(connection, selection)
    found = await metrics.metrics(connection, selection=selection, now=now)
    rows = [
        (
            record["reference"],
            record["title"],
            record["priority"] or "—",
            _status(record),
            when(aware_or_none(record["reported_at"])),
            when(aware_or_none(record["resolved_at"])),
        )
        for record in incidents
    ]
    targets = [
        (
            outcome.priority,
            outcome.target,
            str(outcome.met),
            str(outcome.missed),
            str(outcome.pending),
        )
        for outcome in found.targets
    ]
    return Document(
        kind="Monthly incident summary",
        title=f"{client_name or client_id}, {start:%B %Y}",
        firm=firm,
        notice=f"Prepared by {firm} for {client_name or 'its client'}.",
        filename=f"incident-summary-{month}",
        cover=[
            ("Client", client_name or client_id),
            ("Period", f"{start:%d %B %Y} to {aware(end):%d %B %Y} (exclusive), UTC"),
            ("Incidents", str(found.incidents)),
            ("Prepared", when(now)),
        ],
        blocks=[
            Heading("Overview"),
            Facts(
                [("Incidents reported", str(found.incidents))]
                + [(f"Priority {count.key}", str(count.count)) for count in found.by_priority]
                + [("Follow-up actions overdue", str(found.overdue_actions))]
            ),
            Heading("Incidents"),
            Table(
                ("Reference", "Title", "Priority", "Status", "Reported", "Resolved"),
                rows,
                (0.18, 0.26, 0.08, 0.16, 0.16, 0.16),
                empty="No incidents were reported this month.",
            ),
            Heading("Response times"),
            _durations_table(found),
            Heading("Response targets"),
            Table(
                ("Priority", "Target", "Met", "Missed", "Pending"),
                targets,
                (0.15, 0.25, 0.2, 0.2, 0.2),
                empty="No response targets applied.",
            ),
        ],
    )
