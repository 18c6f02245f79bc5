"""How flags and deadlines read on the timeline (issue 9, §5). All internal: a client has no
line for them (the regulatory reporting is the firm's, and so is what it owes the client). A
deadline's rule is a value beside the line: a client's contractual rules are named by people."""

from __future__ import annotations

from firebreak.api.events.v1.events_pb2 import Deadline, EventEnvelope
from firebreak.events import from_timestamp
from services.review.lines import Lines, each, fields, people


def deadline_line(deadline: Deadline) -> str:
    due = from_timestamp(deadline.due_at)
    return f"{deadline.kind} deadline (due {due:%Y-%m-%d %H:%M} UTC)"


def incident_flagged(event: EventEnvelope) -> Lines:
    flagged = event.incident_flagged
    aware = from_timestamp(flagged.aware_at)
    return Lines(
        f"flagged {', '.join(flagged.flags)} (aware since {aware:%Y-%m-%d %H:%M} UTC)",
        fields=fields(("by", event.actor.name)),
    )


def deadline_started(event: EventEnvelope) -> Lines:
    deadline = event.deadline_started.deadline
    return Lines(
        f"{deadline_line(deadline)} started",
        fields=fields(("rule", deadline.rule), ("source", deadline.source)),
    )


def deadline_reminder_sent(event: EventEnvelope) -> Lines:
    reminder = event.deadline_reminder_sent
    who = people(len(reminder.reminded)) if reminder.reminded else "nobody reachable"
    return Lines(
        f"reminder {reminder.lead_minutes:g} minutes before "
        f"{deadline_line(reminder.deadline)}: sent to {who}",
        fields=fields(("rule", reminder.deadline.rule), *each("reminded", reminder.reminded)),
    )


def deadline_met(event: EventEnvelope) -> Lines:
    met = event.deadline_met
    late = " late" if met.late else ""
    return Lines(
        f"{deadline_line(met.deadline)} met{late}",
        fields=fields(
            ("rule", met.deadline.rule), ("reference", met.reference), ("by", event.actor.name)
        ),
    )


def deadline_missed(event: EventEnvelope) -> Lines:
    missed = event.deadline_missed
    who = people(len(missed.escalated_to)) if missed.escalated_to else "no manager could be paged"
    return Lines(
        f"{deadline_line(missed.deadline)} MISSED; escalated to {who}",
        fields=fields(("rule", missed.deadline.rule), *each("escalated_to", missed.escalated_to)),
    )
