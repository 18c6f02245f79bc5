"""The timeline's lines for what a client's monitoring said of an incident's alerts (issue 14):
intake's alert events, as it published them, before triage applied them. What the incident did
about them is triage's lifecycle events, with the integration as their actor.

Internal entries: the client reads what its monitoring did to the incident (acknowledged,
resolved, reopened by the integration), not a line per alert. The line is the platform's: the
alert's state and the count it keeps; the dedup key and summary are the sender's text, kept as
values beside it.

Triage publishes nothing when a lifecycle guard stops an alert's resolve from taking the
incident further: the alert.resolved line says the integration asked for it, and the incident's
own entries show how far it went.
"""

from __future__ import annotations

from firebreak.api.events.v1.events_pb2 import AlertChanged, EventEnvelope
from services.review.lines import Fields, Lines, fields


def _counted(changed: AlertChanged) -> str:
    return "1 trigger counted" if changed.count == 1 else f"{changed.count} triggers counted"


def _said(changed: AlertChanged) -> Fields:
    return fields(("dedup_key", changed.dedup_key), ("summary", changed.summary))


def alert_acknowledged(event: EventEnvelope) -> Lines:
    changed = event.alert_acknowledged
    return Lines(f"alert acknowledged by its source ({_counted(changed)})", fields=_said(changed))


def alert_resolved(event: EventEnvelope) -> Lines:
    changed = event.alert_resolved
    then = (
        "; it was the incident's last open alert, and its integration resolves the incident "
        "with it, as far as the lifecycle allows"
        if changed.applies_to_incident
        else ""
    )
    return Lines(f"alert resolved by its source ({_counted(changed)}){then}", fields=_said(changed))


def alert_retriggered(event: EventEnvelope) -> Lines:
    # No count: intake may tell of the alert as it was before this trigger. Whether the
    # incident reopens is triage's entry (incident.reopened, by the integration).
    return Lines(
        "alert triggered again by its source after it or its incident was resolved",
        fields=_said(event.alert_retriggered),
    )
