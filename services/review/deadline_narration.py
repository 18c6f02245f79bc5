"""How flags and deadlines read on the timeline (issue 9, §5). All internal: a client has no
line for them (the regulatory reporting is the firm's, and so is what it owes the client)."""

from __future__ import annotations

from collections.abc import Iterable

from firebreak.api.events.v1.events_pb2 import Deadline, EventEnvelope, Person
from firebreak.events import from_timestamp

Lines = tuple[str, str | None]  # (internal line, client line or None)


def _deadline(deadline: Deadline) -> str:
    due = from_timestamp(deadline.due_at)
    return f"{deadline.kind} deadline {deadline.rule} (due {due:%Y-%m-%d %H:%M} UTC)"


def _names(people: Iterable[Person]) -> str:
    return ", ".join(person.name or person.id for person in people)


def incident_flagged(event: EventEnvelope) -> Lines:
    flagged = event.incident_flagged
    aware = from_timestamp(flagged.aware_at)
    return (
        f"flagged {', '.join(flagged.flags)} by {event.actor.name} "
        f"(aware since {aware:%Y-%m-%d %H:%M} UTC)",
        None,
    )


def deadline_started(event: EventEnvelope) -> Lines:
    deadline = event.deadline_started.deadline
    return f"{_deadline(deadline)} started: {deadline.source}", None


def deadline_reminder_sent(event: EventEnvelope) -> Lines:
    reminder = event.deadline_reminder_sent
    who = _names(reminder.reminded) or "nobody reachable"
    return (
        f"reminder {reminder.lead_minutes:g} minutes before {_deadline(reminder.deadline)}: "
        f"sent to {who}",
        None,
    )


def deadline_met(event: EventEnvelope) -> Lines:
    met = event.deadline_met
    late = " late" if met.late else ""
    line = f"{_deadline(met.deadline)} met{late} ({met.reference}), recorded by {event.actor.name}"
    return line, None


def deadline_missed(event: EventEnvelope) -> Lines:
    missed = event.deadline_missed
    who = _names(missed.escalated_to) or "no manager could be paged"
    return f"{_deadline(missed.deadline)} MISSED; escalated to {who}", None
