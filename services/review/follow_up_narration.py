"""The timeline's lines for the investigation and the actions. A client note's client line is its
body, word for word; the analysis and the actions are the firm's internal work (a client report
tells the client about them), so they have none."""

from __future__ import annotations

from firebreak.api.events.v1.events_pb2 import ActionItem, EventEnvelope
from firebreak.events import from_timestamp

Lines = tuple[str, str | None]  # (internal line, client line or None), as narration.py has it


def _action(item: ActionItem) -> str:
    due = from_timestamp(item.due_at).strftime("%Y-%m-%d %H:%M UTC")
    return f"{item.kind} action “{item.title}” (owner {item.owner.name}, due {due})"


def note_added(event: EventEnvelope) -> Lines:
    note = event.note_added
    return note.body, note.body if note.audience == "client" else None


def analysis_updated(event: EventEnvelope) -> Lines:
    analysis = event.analysis_updated
    cause = f": root cause: {analysis.root_cause}" if analysis.root_cause else ""
    return f"analysis updated to version {analysis.version}{cause}", None


def action_added(event: EventEnvelope) -> Lines:
    return f"added {_action(event.action_added.action)}", None


def action_updated(event: EventEnvelope) -> Lines:
    updated = event.action_updated
    item = updated.action
    moved = (
        f"{updated.old_status} → {item.status}"
        if updated.old_status != item.status
        else "owner or due time changed"
    )
    reason = f": {updated.reason}" if updated.reason else ""
    return f"{_action(item)}: {moved}{reason}", None


def action_overdue(event: EventEnvelope) -> Lines:
    item = event.action_overdue.action
    return f"overdue: {_action(item)}; reminding {item.owner.name}", None


def action_effectiveness_check_due(event: EventEnvelope) -> Lines:
    item = event.action_effectiveness_check_due.action
    return f"effectiveness check due: {_action(item)}; reminding {item.owner.name}", None


def action_effectiveness_checked(event: EventEnvelope) -> Lines:
    checked = event.action_effectiveness_checked
    item = checked.action
    if checked.effective:
        return f"{_action(item)} confirmed effective: {checked.note}", None
    return f"{_action(item)} not effective, reopened: {checked.note}", None
