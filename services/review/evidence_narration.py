"""How evidence and its custody read on the timeline (issue 10). Staff read every custody
entry. A client reads only that an item it submitted itself arrived (its own act, with the
digest it can check); the firm's collection and custody of evidence are internal."""

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

Lines = tuple[str, str | None]  # (internal line, client line or None)

CLIENT_KINDS = frozenset({"client_system", "client_contact"})


def _because(reason: str) -> str:
    return f": {reason}" if reason else ""


def collected(event: EventEnvelope) -> Lines:
    item = event.evidence_collected
    facts = f"({item.size_bytes} bytes, sha256 {item.sha256})"
    line = f"evidence {item.filename} collected by {item.collected_by} {facts}"
    if event.actor.kind in CLIENT_KINDS:
        return line, f"evidence {item.filename} submitted {facts}"
    return line, None


def accessed(event: EventEnvelope) -> Lines:
    return f"evidence {event.evidence_accessed.filename} downloaded by {event.actor.name}", None


def transferred(event: EventEnvelope) -> Lines:
    moved = event.evidence_transferred
    return (
        f"evidence {moved.filename} released by {moved.holder.name} to {moved.receiver.name} "
        f"for {moved.purpose}, to {moved.location}",
        None,
    )


def received(event: EventEnvelope) -> Lines:
    moved = event.evidence_received
    rehashed = "as collected" if moved.content_matches else "NOT as collected"
    return (
        f"evidence {moved.filename} received by {moved.receiver.name} from "
        f"{moved.holder.name} at {moved.location}; content re-hashed: {rehashed}",
        None,
    )


def sealed(event: EventEnvelope) -> Lines:
    change = event.evidence_sealed
    return f"evidence {change.filename} sealed by {event.actor.name}{_because(change.reason)}", None


def unsealed(event: EventEnvelope) -> Lines:
    change = event.evidence_unsealed
    line = f"evidence {change.filename} unsealed by {event.actor.name}{_because(change.reason)}"
    return line, None


def verified(event: EventEnvelope) -> Lines:
    check = event.evidence_verified
    return f"evidence {check.filename} verified by {event.actor.name}: {check.result}", None


def legal_hold_set(event: EventEnvelope) -> Lines:
    hold = event.evidence_legal_hold_set
    return f"legal hold on evidence {hold.filename} set by {event.actor.name}: {hold.reason}", None


def legal_hold_released(event: EventEnvelope) -> Lines:
    hold = event.evidence_legal_hold_released
    return (
        f"legal hold on evidence {hold.filename} released by {event.actor.name}: {hold.reason}",
        None,
    )


def disposed(event: EventEnvelope) -> Lines:
    gone = event.evidence_disposed
    return (
        f"evidence {gone.filename} disposed of ({gone.method}) by {event.actor.name}, "
        f"authorised by {gone.authorised_by}",
        None,
    )


def integrity_failed(event: EventEnvelope) -> Lines:
    failed = event.evidence_integrity_failed
    return (
        f"INTEGRITY FAILURE: evidence {failed.filename} is not as recorded (found by "
        f"{failed.found_by}): {'; '.join(failed.differences)}",
        None,
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
