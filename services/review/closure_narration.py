"""The timeline's lines for the post-incident review and for deadlines set aside (issue 11,
§3-§4). All internal: a client reads the client report instead."""

from __future__ import annotations

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from services.review.deadline_narration import deadline_line
from services.review.lines import Lines, fields


def deadline_marked_not_applicable(event: EventEnvelope) -> Lines:
    marked = event.deadline_marked_not_applicable
    return Lines(
        f"{deadline_line(marked.deadline)} marked not applicable",
        fields=fields(
            ("rule", marked.deadline.rule), ("by", event.actor.name), ("reason", marked.reason)
        ),
    )


def pir_drafted(event: EventEnvelope) -> Lines:
    drafted = event.pir_drafted
    again = "drafted again from the record" if drafted.redrafted else "drafted"
    return Lines(
        f"post-incident review {again} (version {drafted.version})",
        fields=fields(("by", event.actor.name)),
    )


def pir_edited(event: EventEnvelope) -> Lines:
    edited = event.pir_edited
    # The parts edited are the review's own names for them (pir.NARRATIVE).
    parts = ", ".join(field.replace("_", " ") for field in edited.fields)
    cleared = "; its signatures no longer apply" if edited.signatures_cleared else ""
    return Lines(
        f"post-incident review edited ({parts}; version {edited.version}){cleared}",
        fields=fields(("by", event.actor.name)),
    )


def pir_signed(event: EventEnvelope) -> Lines:
    signed = event.pir_signed
    done = "; it is signed off" if signed.signed_off else ""
    return Lines(
        f"post-incident review version {signed.version} signed as {signed.capacity}{done}",
        fields=fields(("by", event.actor.name)),
    )
