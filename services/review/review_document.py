"""The post-incident review as a document (documents.py): what the firm's people and its
client's board read, as Markdown or PDF. It is the firm's internal record: staff read it."""

from __future__ import annotations

from typing import Any

from firebreak.api.review.v1 import review_pb2
from firebreak.events import from_timestamp
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

DURATION_NAMES = {
    "time_to_acknowledge": "Time to acknowledge",
    "time_to_contain": "Time to contain",
    "time_to_resolve": "Time to resolve",
    "time_to_close": "Time to close",
    "acknowledged_to_contained": "Acknowledged to contained",
    "contained_to_resolved": "Contained to resolved",
}


def _at(message: Any, field: str) -> str:
    return when(from_timestamp(getattr(message, field))) if message.HasField(field) else "—"


def _milestones(review: review_pb2.PostIncidentReview) -> Table:
    rows = []
    for item in review.milestones:
        if not item.HasField("at") and not item.HasField("due"):
            continue
        target = ""
        if item.HasField("due"):
            target = _at(item, "due")
            if item.HasField("at"):
                met = from_timestamp(item.at) <= from_timestamp(item.due)
                target += " (met)" if met else " (missed)"
        rows.append((item.name.capitalize(), _at(item, "at"), target or "—"))
    return Table(("Milestone", "When", "Target"), rows, (0.25, 0.35, 0.4))


def _actions(review: review_pb2.PostIncidentReview) -> Table:
    rows = [
        (
            item.kind,
            item.title,
            item.owner.name,
            when(from_timestamp(item.due_at)),
            item.status.replace("_", " ") + (" (overdue)" if item.overdue else ""),
        )
        for item in review.actions
    ]
    return Table(("Kind", "Action", "Owner", "Due", "Status"), rows, (0.14, 0.36, 0.18, 0.18, 0.14))


def _deadlines(review: review_pb2.PostIncidentReview) -> Table:
    rows = []
    for item in review.deadlines:
        outcome = item.status.replace("_", " ")
        if item.status == "met":
            outcome = f"met {'late ' if item.late else ''}({item.reference})"
        elif item.status == "not_applicable":
            outcome = f"not applicable: {item.not_applicable_reason}"
        rows.append((item.kind, item.rule, when(from_timestamp(item.due_at)), outcome))
    return Table(("Kind", "Deadline", "Due", "Outcome"), rows, (0.15, 0.3, 0.2, 0.35))


def _evidence(review: review_pb2.PostIncidentReview) -> Table:
    rows = []
    for item in review.evidence:
        custody = "disposed of" if item.disposed else f"held by {item.holder.name}"
        if item.checked_out:
            custody = f"released to {item.pending_receiver.name}, receipt not confirmed"
        rows.append(
            (
                item.filename,
                item.sha256[:16] + "…",
                item.collected_by,
                _at(item, "collected_at"),
                custody,
            )
        )
    return Table(
        ("Item", "SHA-256", "Collected by", "Collected", "Custody"),
        rows,
        (0.22, 0.18, 0.18, 0.18, 0.24),
    )


def _analysis(review: review_pb2.PostIncidentReview) -> list[Heading | Paragraph | Table | Facts]:
    found = review.analysis
    if not found.version:
        return [Heading("Root cause analysis"), Paragraph("No analysis was written.")]
    blocks: list[Heading | Paragraph | Table | Facts] = [
        Heading("Root cause analysis"),
        Facts([("Root cause", found.root_cause or "—"), ("Version", str(found.version))]),
        Paragraph(found.summary),
    ]
    if found.five_whys:
        whys = [(str(index + 1), why) for index, why in enumerate(found.five_whys)]
        blocks.append(Table(("Why", "Because"), whys, (0.08, 0.92)))
    if found.contributing_factors:
        factors = [
            (factor.category.replace("_", " "), factor.description)
            for factor in found.contributing_factors
        ]
        blocks.append(Table(("Contributing factor", "Description"), factors, (0.25, 0.75)))
    return blocks


def review_document(
    review: review_pb2.PostIncidentReview, *, firm: str, client_name: str
) -> Document:
    incident = review.incident
    status = "signed off" if review.status == "signed_off" else "draft, not signed off"
    signatures = [
        (s.person.name, s.capacity, when(from_timestamp(s.signed_at))) for s in review.signatures
    ]
    durations = [(DURATION_NAMES.get(d.name, d.name), span(d.seconds)) for d in review.durations]
    roles = [(holder.role.replace("_", " "), holder.person.name) for holder in review.roles]
    return Document(
        kind="Post-incident review",
        title=f"{incident.reference} {incident.title}",
        firm=firm,
        notice=f"Confidential. Prepared by {firm} for {client_name or 'its client'}.",
        filename=f"pir-{incident.reference or review.incident_id}",
        cover=[
            ("Client", client_name or "—"),
            ("Incident", incident.reference),
            ("Priority", incident.priority),
            (
                "Status",
                incident.status + (f" ({incident.closure_code})" if incident.closure_code else ""),
            ),
            ("Review", f"version {review.version}, {status}"),
            ("Drafted", f"{when(from_timestamp(review.drafted_at))} by {review.drafted_by.name}"),
        ],
        blocks=[
            Heading("Summary"),
            Paragraph(review.summary),
            Heading("Impact"),
            Paragraph(review.impact),
            Heading("Milestones and response targets"),
            _milestones(review),
            Table(("Duration", "Length"), durations, (0.5, 0.5)),
            Heading("Roles"),
            Table(("Role", "Person"), roles, (0.4, 0.6), empty="No roles were held."),
            Heading("Key events"),
            Table(
                ("When", "What"),
                [(when(from_timestamp(e.occurred_at)), entry_text(e)) for e in review.key_events],
                (0.22, 0.78),
                empty="No entries were marked key events.",
            ),
            *_analysis(review),
            Heading("Actions"),
            _actions(review),
            Heading("Evidence"),
            _evidence(review),
            Heading("Regulatory and contractual deadlines"),
            _deadlines(review),
            Heading("Notifications sent"),
            Table(
                ("When", "Message"),
                [
                    (when(from_timestamp(e.occurred_at)), entry_text(e))
                    for e in review.notifications
                ],
                (0.22, 0.78),
            ),
            Heading("What went well"),
            Paragraph(review.what_went_well),
            Heading("What did not go well"),
            Paragraph(review.what_went_wrong),
            Heading("Lessons learned"),
            Paragraph(review.lessons_learned),
            Heading("Sign-off"),
            Table(
                ("Signed by", "As", "When"),
                signatures,
                (0.45, 0.2, 0.35),
                empty="Not signed yet.",
            ),
        ],
    )
