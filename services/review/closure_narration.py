"""The timeline's lines for the post-incident review and for deadlines set aside (issue 11,
§3-§4). All internal: a client reads the client report instead."""

from __future__ import annotations

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.events import from_timestamp

Lines = tuple[str, str | None]  # (internal line, client line or None), as narration.py has it


def deadline_marked_not_applicable(event: EventEnvelope) -> Lines:
    marked = event.deadline_marked_not_applicable
    deadline = marked.deadline
    due = from_timestamp(deadline.due_at)
    return (
        f"{deadline.kind} deadline {deadline.rule} (due {due:%Y-%m-%d %H:%M} UTC) marked not "
        f"applicable by {event.actor.name}: {marked.reason}",
        None,
    )


def pir_drafted(event: EventEnvelope) -> Lines:
    drafted = event.pir_drafted
    again = "drafted again from the record" if drafted.redrafted else "drafted"
    return f"post-incident review {again} by {event.actor.name} (version {drafted.version})", None


def pir_edited(event: EventEnvelope) -> Lines:
    edited = event.pir_edited
    parts = ", ".join(field.replace("_", " ") for field in edited.fields)
    cleared = "; its signatures no longer apply" if edited.signatures_cleared else ""
    return (
        f"post-incident review edited by {event.actor.name} ({parts}; version "
        f"{edited.version}){cleared}",
        None,
    )


def pir_signed(event: EventEnvelope) -> Lines:
    signed = event.pir_signed
    done = "; it is signed off" if signed.signed_off else ""
    return (
        f"post-incident review version {signed.version} signed by {event.actor.name} as "
        f"{signed.capacity}{done}",
        None,
    )
