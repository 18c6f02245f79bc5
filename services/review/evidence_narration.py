"""How evidence and its custody read on the timeline (issue 10). Staff read every custody
entry. A client reads only that an item it submitted itself arrived (its own act, with the
digest it can check, and its filename beside the line); the firm's collection and custody of
evidence are internal. Filenames, reasons, purposes, places and names are values beside a line,
never in it."""

from __future__ import annotations

from collections.abc import Callable

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.events import (
    EVIDENCE_ACCESSED,
    EVIDENCE_COLLECTED,
    EVIDENCE_DISPOSED,
    EVIDENCE_INTEGRITY_FAILED,
    EVIDENCE_LEGAL_HOLD_RELEASED,
    EVIDENCE_LEGAL_HOLD_SET,
    EVIDENCE_RECEIVED,
    EVIDENCE_SEALED,
    EVIDENCE_TRANSFERRED,
    EVIDENCE_UNSEALED,
    EVIDENCE_VERIFIED,
)
from services.review.lines import Fields, Lines, fields

CLIENT_KINDS = frozenset({"client_system", "client_contact"})


def _item(filename: str, *more: tuple[str, str]) -> Fields:
    return fields(("filename", filename), *more)


def collected(event: EventEnvelope) -> Lines:
    item = event.evidence_collected
    facts = f"({item.size_bytes} bytes, sha256 {item.sha256})"
    # An attachment of a report by email: the client's own act too, by its integration.
    how = " by email" if item.collection_method == "email" else ""
    said = _item(item.filename, ("collected_by", item.collected_by))
    if event.actor.kind in CLIENT_KINDS:
        return Lines(
            f"evidence collected{how} {facts}",
            f"evidence submitted{how} {facts}",
            said,
            _item(item.filename),
        )
    return Lines(f"evidence collected {facts}", fields=said)


def accessed(event: EventEnvelope) -> Lines:
    filename = event.evidence_accessed.filename
    return Lines("evidence downloaded", fields=_item(filename, ("by", event.actor.name)))


def transferred(event: EventEnvelope) -> Lines:
    moved = event.evidence_transferred
    return Lines(
        "evidence released",
        fields=_item(
            moved.filename,
            ("released_by", moved.holder.name),
            ("to", moved.receiver.name),
            ("purpose", moved.purpose),
            ("location", moved.location),
        ),
    )


def received(event: EventEnvelope) -> Lines:
    moved = event.evidence_received
    rehashed = "as collected" if moved.content_matches else "NOT as collected"
    return Lines(
        f"evidence received; content re-hashed: {rehashed}",
        fields=_item(
            moved.filename,
            ("received_by", moved.receiver.name),
            ("from", moved.holder.name),
            ("location", moved.location),
        ),
    )


def sealed(event: EventEnvelope) -> Lines:
    change = event.evidence_sealed
    return Lines(
        "evidence sealed",
        fields=_item(change.filename, ("by", event.actor.name), ("reason", change.reason)),
    )


def unsealed(event: EventEnvelope) -> Lines:
    change = event.evidence_unsealed
    return Lines(
        "evidence unsealed",
        fields=_item(change.filename, ("by", event.actor.name), ("reason", change.reason)),
    )


def verified(event: EventEnvelope) -> Lines:
    check = event.evidence_verified
    return Lines(
        f"evidence verified: {check.result}",
        fields=_item(check.filename, ("by", event.actor.name)),
    )


def legal_hold_set(event: EventEnvelope) -> Lines:
    hold = event.evidence_legal_hold_set
    return Lines(
        "legal hold on evidence set",
        fields=_item(hold.filename, ("by", event.actor.name), ("reason", hold.reason)),
    )


def legal_hold_released(event: EventEnvelope) -> Lines:
    hold = event.evidence_legal_hold_released
    return Lines(
        "legal hold on evidence released",
        fields=_item(hold.filename, ("by", event.actor.name), ("reason", hold.reason)),
    )


def disposed(event: EventEnvelope) -> Lines:
    gone = event.evidence_disposed
    return Lines(
        f"evidence disposed of ({gone.method})",
        fields=_item(
            gone.filename, ("by", event.actor.name), ("authorised_by", gone.authorised_by)
        ),
    )


def integrity_failed(event: EventEnvelope) -> Lines:
    failed = event.evidence_integrity_failed
    # A difference may quote the item's recorded facts, its filename among them.
    return Lines(
        f"INTEGRITY FAILURE: evidence is not as recorded (found by {failed.found_by})",
        fields=_item(failed.filename, *(("difference", text) for text in failed.differences)),
    )


NARRATORS: dict[str, Callable[[EventEnvelope], Lines]] = {
    EVIDENCE_COLLECTED: collected,
    EVIDENCE_ACCESSED: accessed,
    EVIDENCE_TRANSFERRED: transferred,
    EVIDENCE_RECEIVED: received,
    EVIDENCE_SEALED: sealed,
    EVIDENCE_UNSEALED: unsealed,
    EVIDENCE_VERIFIED: verified,
    EVIDENCE_LEGAL_HOLD_SET: legal_hold_set,
    EVIDENCE_LEGAL_HOLD_RELEASED: legal_hold_released,
    EVIDENCE_DISPOSED: disposed,
    EVIDENCE_INTEGRITY_FAILED: integrity_failed,
}
