"""The timeline's lines for the investigation and the actions. A client note's client line says a
note was added, its body beside it word for word; the analysis and the actions are the firm's
internal work (a client report tells the client about them), so they have none."""

from __future__ import annotations

from firebreak.api.events.v1.events_pb2 import ActionItem, EventEnvelope
from firebreak.events import from_timestamp
from services.review.lines import Fields, Lines, fields


def _action(item: ActionItem) -> str:
    due = from_timestamp(item.due_at).strftime("%Y-%m-%d %H:%M UTC")
    return f"{item.kind} action (due {due})"


def _about(item: ActionItem, *more: tuple[str, str]) -> Fields:
    return fields(("title", item.title), ("owner", item.owner.name), *more)


def note_added(event: EventEnvelope) -> Lines:
    note = event.note_added
    said = fields(("note", note.body))
    if note.audience == "client":
        return Lines("client note added", "note added", said, said)
    return Lines("internal note added", fields=said)


def analysis_updated(event: EventEnvelope) -> Lines:
    analysis = event.analysis_updated
    return Lines(
        f"analysis updated to version {analysis.version}",
        fields=fields(("root_cause", analysis.root_cause)),
    )


def action_added(event: EventEnvelope) -> Lines:
    item = event.action_added.action
    return Lines(f"added {_action(item)}", fields=_about(item))


def action_updated(event: EventEnvelope) -> Lines:
    updated = event.action_updated
    item = updated.action
    moved = (
        f"{updated.old_status} → {item.status}"
        if updated.old_status != item.status
        else "owner or due time changed"
    )
    return Lines(f"{_action(item)}: {moved}", fields=_about(item, ("reason", updated.reason)))


def action_overdue(event: EventEnvelope) -> Lines:
    item = event.action_overdue.action
    return Lines(f"overdue: {_action(item)}; reminding its owner", fields=_about(item))


def action_effectiveness_check_due(event: EventEnvelope) -> Lines:
    item = event.action_effectiveness_check_due.action
    return Lines(
        f"effectiveness check due: {_action(item)}; reminding its owner", fields=_about(item)
    )


def action_effectiveness_checked(event: EventEnvelope) -> Lines:
    checked = event.action_effectiveness_checked
    item = checked.action
    outcome = "confirmed effective" if checked.effective else "not effective, reopened"
    return Lines(f"{_action(item)} {outcome}", fields=_about(item, ("note", checked.note)))
