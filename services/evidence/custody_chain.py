"""The custody log as a hash chain: how an entry is encoded and hashed, and how a chain is
checked. Pure: no database, so an offline verifier can use exactly this.

An entry's hash is SHA-256 over the UTF-8 bytes of its canonical JSON (firebreak/hash_chain.py):
the object

    {"actor": {"id", "kind", "name"}, "details": {...}, "evidence_id", "kind", "position",
     "prev_hash", "recorded_at"}

with keys sorted, no whitespace (separators "," and ":"), non-ASCII characters as themselves,
and `recorded_at` as UTC ISO 8601 with microseconds and a Z ("2026-11-26T09:10:02.000000Z").
That is RFC 8785's canonical form for such objects: strings, integers, booleans, null, nested
objects and arrays, and no floats. `prev_hash` is the previous entry's hash, 64 zeros for the
first; so changing, removing, inserting or reordering any entry changes every hash after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from firebreak.hash_chain import GENESIS, canonical_json, chained_hash, timestamp

__all__ = ["GENESIS", "canonical_json", "timestamp"]  # what the rest of evidence uses from here
# The first entry's facts that must match the item's record.
FIXED_AT_COLLECTION = ("incident_id", "filename", "sha256", "sha512", "size_bytes")


@dataclass(frozen=True)
class Actor:
    id: str
    kind: str
    name: str


@dataclass(frozen=True)
class Entry:
    evidence_id: str
    position: int
    kind: str
    actor: Actor
    recorded_at: datetime
    details: Mapping[str, Any]
    prev_hash: str


def entry_hash(entry: Entry) -> str:
    return chained_hash(
        {
            "evidence_id": entry.evidence_id,
            "position": entry.position,
            "kind": entry.kind,
            "actor": {"id": entry.actor.id, "kind": entry.actor.kind, "name": entry.actor.name},
            "recorded_at": timestamp(entry.recorded_at),
            "details": entry.details,
            "prev_hash": entry.prev_hash,
        }
    )


@dataclass(frozen=True)
class StoredEntry:
    """An entry as read back, with the hash stored beside it."""

    entry: Entry
    entry_hash: str


@dataclass(frozen=True)
class RecordedFacts:
    """What the item's own record says, to hold the log against."""

    length: int
    head: str
    fixed: Mapping[str, Any]  # FIXED_AT_COLLECTION, as the item's record has them


def chain_differences(stored: Sequence[StoredEntry], recorded: RecordedFacts) -> list[str]:
    """Every way the log differs from an untouched one; empty when it is intact. `stored` in
    the order of positions, as the database returns them."""
    differences: list[str] = []
    expected_prev = GENESIS
    for index, row in enumerate(stored):
        entry = row.entry
        where = f"entry {entry.position} ({entry.kind})"
        if entry.position != index:
            differences.append(
                f"{where} is where entry {index} should be: an entry was removed or moved"
            )
        if entry.prev_hash != expected_prev:
            differences.append(f"{where} does not follow the entry before it (prev_hash)")
        if entry_hash(entry) != row.entry_hash:
            differences.append(f"{where} was changed after it was recorded (entry_hash)")
        expected_prev = row.entry_hash
    if len(stored) != recorded.length:
        differences.append(f"the log has {len(stored)} entries; the item records {recorded.length}")
    elif expected_prev != recorded.head:
        differences.append("the last entry is not the head the item records")
    if not stored or stored[0].entry.kind != "collected":
        differences.append("the log does not begin with the item's collection")
    else:
        details = stored[0].entry.details
        for fact in FIXED_AT_COLLECTION:
            if details.get(fact) != recorded.fixed.get(fact):
                differences.append(
                    f"the item's {fact} is {recorded.fixed.get(fact)!r}; it was "
                    f"{details.get(fact)!r} at collection"
                )
    return differences
