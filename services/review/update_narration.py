"""The timeline's lines for status updates. A client update's client line says an update was
sent, its body beside it word for word: the client was sent exactly that. An internal update and
a reminder have none."""

from __future__ import annotations

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.events import from_timestamp
from services.review.lines import Lines, each, fields, people


def status_update_posted(event: EventEnvelope) -> Lines:
    posted = event.status_update_posted
    said = fields(("by", event.actor.name), ("update", posted.body))
    if posted.audience == "client":
        return Lines(
            f"client update, emailed to {posted.recipients} of the client's contacts",
            "status update",
            said,
            fields(("update", posted.body)),
        )
    return Lines(f"internal update to {people(posted.recipients)}", fields=said)


def status_update_overdue(event: EventEnvelope) -> Lines:
    overdue = event.status_update_overdue
    reminded = people(len(overdue.reminded)) if overdue.reminded else "nobody"
    since = "the last update" if overdue.HasField("last_update_at") else "triage"
    minutes = overdue.interval_minutes
    every = f"{minutes:g} min" if minutes >= 1 else f"{minutes * 60:g} s"
    return Lines(
        f"status update overdue since {from_timestamp(overdue.due_at):%H:%M:%S} UTC "
        f"({overdue.priority}: one expected every {every} after {since}); reminded {reminded}",
        fields=fields(*each("reminded", overdue.reminded)),
    )
