"""Appending to an item's custody log (with its event) and reading it back. Appends go through
the item's row, locked for the transaction, whose length and head the new entry extends."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.events import (
    EVIDENCE_ACCESSED,
    EVIDENCE_DISPOSED,
    EVIDENCE_LEGAL_HOLD_RELEASED,
    EVIDENCE_LEGAL_HOLD_SET,
    EVIDENCE_RECEIVED,
    EVIDENCE_SEALED,
    EVIDENCE_TRANSFERRED,
    EVIDENCE_UNSEALED,
    EVIDENCE_VERIFIED,
    new_event,
)
from firebreak.outbox import Outbox
from services.evidence.custody_chain import Actor, Entry, StoredEntry, canonical_json, entry_hash
from services.evidence.models import custody_entries, items

# The event each kind of entry (but `collected`, which has its own payload) is published as.
EVENT_TYPES = {
    "accessed": EVIDENCE_ACCESSED,
    "transferred": EVIDENCE_TRANSFERRED,
    "received": EVIDENCE_RECEIVED,
    "sealed": EVIDENCE_SEALED,
    "unsealed": EVIDENCE_UNSEALED,
    "verified": EVIDENCE_VERIFIED,
    "legal_hold_set": EVIDENCE_LEGAL_HOLD_SET,
    "legal_hold_released": EVIDENCE_LEGAL_HOLD_RELEASED,
    "disposed": EVIDENCE_DISPOSED,
}

INSERT_ENTRY = custody_entries.insert()


def chain_actor(actor: events_pb2.Actor) -> Actor:
    return Actor(id=actor.id, kind=actor.kind or "system", name=actor.name)


async def append_entry(
    connection: AsyncConnection,
    *,
    item: Row[Any],
    kind: str,
    actor: events_pb2.Actor,
    details: Mapping[str, Any],
    now: datetime,
) -> StoredEntry:
    """Appends one entry after the item's recorded head. `item` must be the row as locked in
    this transaction (service.lock_item), and each transaction appends once per item."""
    # Stored exactly as hashed: details go through JSON once, so what is read back is the same.
    normalised = json.loads(canonical_json(details))
    entry = Entry(
        evidence_id=item.id,
        position=item.custody_length,
        kind=kind,
        actor=chain_actor(actor),
        recorded_at=now,
        details=normalised,
        prev_hash=item.custody_head,
    )
    digest = entry_hash(entry)
    await connection.execute(
        INSERT_ENTRY,
        {
            "evidence_id": entry.evidence_id,
            "position": entry.position,
            "kind": kind,
            "actor_id": entry.actor.id,
            "actor_kind": entry.actor.kind,
            "actor_name": entry.actor.name,
            "recorded_at": now,
            "details": canonical_json(normalised),
            "prev_hash": entry.prev_hash,
            "entry_hash": digest,
        },
    )
    await connection.execute(
        update(items)
        .where(items.c.id == item.id)
        .values(custody_length=entry.position + 1, custody_head=digest)
    )
    return StoredEntry(entry, digest)


async def record(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    item: Row[Any],
    kind: str,
    actor: events_pb2.Actor,
    details: Mapping[str, Any],
    now: datetime,
    publish: bool = True,
    **event_fields: Any,
) -> StoredEntry:
    """Appends the entry and, unless `publish` is false, its evidence.<kind> event, with the
    EvidenceCustody fields given (holder, receiver, purpose, …)."""
    stored = await append_entry(
        connection, item=item, kind=kind, actor=actor, details=details, now=now
    )
    if publish:
        payload = events_pb2.EvidenceCustody(
            evidence_id=item.id,
            filename=item.filename,
            position=stored.entry.position,
            entry_hash=stored.entry_hash,
            **event_fields,
        )
        await outbox.add(
            connection,
            new_event(
                EVENT_TYPES[kind],
                incident_id=item.incident_id,
                client_id=item.client_id,
                producer="evidence",
                occurred_at=now,
                actor=actor,
                payload=payload,
            ),
        )
    return stored


async def entry_rows(connection: AsyncConnection, evidence_id: str) -> Sequence[Row[Any]]:
    query = (
        select(custody_entries)
        .where(custody_entries.c.evidence_id == evidence_id)
        .order_by(custody_entries.c.position, custody_entries.c.seq)
    )
    return (await connection.execute(query)).all()


def stored_entry(row: Row[Any]) -> StoredEntry:
    """An entry as read back. Details that are not valid JSON any more were changed: they are
    kept as text, so the hash shows the change rather than the read failing."""
    try:
        details = json.loads(row.details)
    except ValueError:
        details = {"unreadable": row.details}
    entry = Entry(
        evidence_id=row.evidence_id,
        position=row.position,
        kind=row.kind,
        actor=Actor(id=row.actor_id, kind=row.actor_kind, name=row.actor_name),
        recorded_at=row.recorded_at,
        details=details,
        prev_hash=row.prev_hash,
    )
    return StoredEntry(entry, row.entry_hash)
