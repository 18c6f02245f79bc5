"""The timeline's lines for status updates. A client update's client line is its body, word for
word: the client was sent exactly that. An internal update and a reminder have none."""

from __future__ import annotations

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.events import from_timestamp

Lines = tuple[str, str | None]  # (internal line, client line or None), as narration.py has it


def status_update_posted(event: EventEnvelope) -> Lines:
    posted = event.status_update_posted
    if posted.audience == "client":
        sent = f"emailed to {posted.recipients} of the client's contacts"
        return f"client update by {event.actor.name}, {sent}: {posted.body}", posted.body
    return (
        f"internal update by {event.actor.name} to {posted.recipients} people: {posted.body}",
        None,
    )


def status_update_overdue(event: EventEnvelope) -> Lines:
    overdue = event.status_update_overdue
    whom = ", ".join(person.name or person.id for person in overdue.reminded) or "nobody"
    since = "the last update" if overdue.HasField("last_update_at") else "triage"
    minutes = overdue.interval_minutes
    every = f"{minutes:g} min" if minutes >= 1 else f"{minutes * 60:g} s"
    return (
        f"status update overdue since {from_timestamp(overdue.due_at):%H:%M:%S} UTC "
        f"({overdue.priority}: one expected every {every} after {since}); reminded {whom}",
        None,
    )
