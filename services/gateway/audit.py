"""The audit log: every administrative act (clients, people, keys, contact methods, on-call
schedules, escalation policies, deadline rules, dead letters), who did it to what and when;
append-only and hash-chained, as evidence's custody log is.

An entry's hash is SHA-256 over the UTF-8 bytes of its canonical JSON (firebreak/hash_chain.py),
the object

    {"action", "actor": {"id", "key_id", "kind", "name"}, "at", "id", "position", "prev_hash",
     "summary", "target": {"id", "kind"}}

with keys sorted, no whitespace, non-ASCII characters as themselves and `at` as UTC ISO 8601
with microseconds and a Z. `prev_hash` is the previous entry's hash, 64 zeros for the first, so
changing, removing, inserting or reordering an entry changes every hash after it; the head row
(the chain's length and last hash) shows a removed last entry.

Nothing here updates or deletes an entry. A summary never holds a secret: no key or part of
one, no webhook secret, no contact address (a Slack or Teams URL is a secret itself).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.database import upsert_insert
from firebreak.hash_chain import GENESIS, canonical_json, chained_hash, timestamp
from firebreak.keyset_pages import aware, fill_page, json_size
from services.gateway.models import audit_entries, audit_head
from services.gateway.permissions import Principal

HEAD_ID = "audit"  # the head table's one row
VERIFY_BATCH = 500  # entries read at a time while verifying

TargetKind = Literal[
    "client",
    "person",
    "api_key",
    "contact_method",
    "schedule",
    "escalation_policy",
    "deadline_rules",
    "dead_letter",
    "integration",
]


@dataclass(frozen=True)
class Entry:
    position: int
    id: str
    at: datetime
    actor: Mapping[str, str]  # id, kind, name, key_id
    action: str
    target_kind: str
    target_id: str
    summary: Mapping[str, Any]
    prev_hash: str


def entry_hash(entry: Entry) -> str:
    return chained_hash(
        {
            "position": entry.position,
            "id": entry.id,
            "at": timestamp(entry.at),
            "actor": dict(entry.actor),
            "action": entry.action,
            "target": {"kind": entry.target_kind, "id": entry.target_id},
            "summary": entry.summary,
            "prev_hash": entry.prev_hash,
        }
    )


async def _locked_head(connection: AsyncConnection) -> tuple[int, str]:
    """The chain's length and last hash, its row locked until the transaction ends (SQLite's
    write transactions take the whole database instead), so appends form one chain."""
    await connection.execute(
        upsert_insert(connection.dialect.name, audit_head)
        .values(id=HEAD_ID, length=0, head=GENESIS)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    query = select(audit_head.c.length, audit_head.c.head).where(audit_head.c.id == HEAD_ID)
    row = (await connection.execute(query.with_for_update())).one()
    return row.length, row.head


async def record(
    connection: AsyncConnection,
    *,
    actor: Principal,
    action: str,
    target_kind: TargetKind,
    target_id: str,
    summary: Mapping[str, Any],
) -> None:
    """Appends an entry in the caller's transaction: the act and its entry commit together.
    Call it last in the transaction, as it locks the chain's head until the commit."""
    length, last_hash = await _locked_head(connection)
    entry = Entry(
        position=length,
        id=str(uuid.uuid4()),
        at=datetime.now(UTC),
        actor={
            "id": actor.id,
            "kind": actor.kind.value,
            "name": actor.name,
            "key_id": actor.key_id,
        },
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        # Stored exactly as hashed: the summary goes through JSON once.
        summary=json.loads(canonical_json(summary)),
        prev_hash=last_hash,
    )
    digest = entry_hash(entry)
    await connection.execute(
        audit_entries.insert().values(
            position=entry.position,
            id=entry.id,
            at=entry.at,
            actor_id=actor.id,
            actor_kind=entry.actor["kind"],
            actor_name=actor.name,
            actor_key_id=actor.key_id,
            action=action,
            target_kind=target_kind,
            target_id=target_id,
            summary=canonical_json(entry.summary),
            prev_hash=entry.prev_hash,
            entry_hash=digest,
        )
    )
    await connection.execute(
        update(audit_head)
        .where(audit_head.c.id == HEAD_ID)
        .values(length=entry.position + 1, head=digest)
    )


async def record_after(
    engine: AsyncEngine,
    *,
    actor: Principal,
    action: str,
    target_kind: TargetKind,
    target_id: str,
    summary: Mapping[str, Any],
) -> None:
    """Appends an entry for an act another service keeps (notify's schedules, policies, …),
    once its gRPC call has succeeded. No transaction spans two services' databases: should the
    gateway stop between the call and this, the act stands unrecorded."""
    async with engine.begin() as connection:
        await record(
            connection,
            actor=actor,
            action=action,
            target_kind=target_kind,
            target_id=target_id,
            summary=summary,
        )


def _entry_of(row: Row[Any]) -> Entry:
    """An entry as stored. A summary that is no longer valid JSON was changed: it is kept as
    text, so the hash shows the change rather than the read failing."""
    try:
        summary = json.loads(row.summary)
    except ValueError:
        summary = {"unreadable": row.summary}
    return Entry(
        position=row.position,
        id=row.id,
        at=row.at,
        actor={
            "id": row.actor_id,
            "kind": row.actor_kind,
            "name": row.actor_name,
            "key_id": row.actor_key_id,
        },
        action=row.action,
        target_kind=row.target_kind,
        target_id=row.target_id,
        summary=summary,
        prev_hash=row.prev_hash,
    )


def _entry_body(row: Row[Any]) -> dict[str, Any]:
    entry = _entry_of(row)
    return {
        "id": entry.id,
        "position": entry.position,
        "at": aware(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "target": {"kind": entry.target_kind, "id": entry.target_id},
        "summary": entry.summary,
        "prev_hash": entry.prev_hash,
        "hash": row.entry_hash,
    }


async def list_entries(
    connection: AsyncConnection,
    *,
    actor_id: str | None,
    target_kind: TargetKind | None,
    since: datetime | None,
    limit: int,
    before_position: int | None,
    max_bytes: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """Entries newest first, filtered; the page (capped at `max_bytes`: an entry's summary may
    carry a wall of a thousand clients) and the next page's cursor (the position of its last
    entry: the next page holds those before it)."""
    query = select(audit_entries)
    if actor_id is not None:
        query = query.where(audit_entries.c.actor_id == actor_id)
    if target_kind is not None:
        query = query.where(audit_entries.c.target_kind == target_kind)
    if since is not None:
        # In UTC, as stored: SQLite compares the text.
        query = query.where(audit_entries.c.at >= since.astimezone(UTC))
    if before_position is not None:
        query = query.where(audit_entries.c.position < before_position)
    query = query.order_by(audit_entries.c.position.desc()).limit(limit + 1)
    rows = (await connection.execute(query)).all()
    bodies = fill_page(
        [_entry_body(row) for row in rows], limit=limit, max_bytes=max_bytes, size_of=json_size
    )
    if len(bodies) == len(rows):
        return bodies, None
    return bodies, str(rows[len(bodies) - 1].position)


@dataclass(frozen=True)
class Fault:
    """The first place the chain is not as it was recorded."""

    position: int | None  # None: the end of the log, against its head
    id: str | None
    problem: str


def _fault(row: Row[Any], position: int, prev_hash: str) -> Fault | None:
    """What is wrong with `row`, expected at `position` after an entry hashed `prev_hash`."""
    if row.position != position:  # positions are unique, read in order: one went missing
        problem = f"is where entry {position} should be: entries before it were removed"
    elif row.prev_hash != prev_hash:
        problem = "does not follow the entry before it (prev_hash)"
    elif entry_hash(_entry_of(row)) != row.entry_hash:
        problem = "was changed after it was recorded (hash)"
    else:
        return None
    return Fault(row.position, row.id, f"entry {row.position} {problem}")


async def verify(connection: AsyncConnection) -> tuple[int, Fault | None]:
    """Recomputes the chain from its first entry to the head: how many entries were checked,
    and the first fault (None when the log is intact). The head is read first, so entries
    appended meanwhile are left for the next check rather than taken for a changed head."""
    query = select(audit_head.c.length, audit_head.c.head).where(audit_head.c.id == HEAD_ID)
    head = (await connection.execute(query)).first()
    length, last_hash = (head.length, head.head) if head is not None else (0, GENESIS)
    checked, prev_hash = 0, GENESIS
    while checked < length:
        batch = (
            select(audit_entries)
            .where(audit_entries.c.position >= checked, audit_entries.c.position < length)
            .order_by(audit_entries.c.position)
            .limit(VERIFY_BATCH)
        )
        rows = (await connection.execute(batch)).all()
        for row in rows:
            fault = _fault(row, checked, prev_hash)
            if fault is not None:
                return checked, fault
            checked, prev_hash = checked + 1, row.entry_hash
        if not rows:
            break
    if checked != length or prev_hash != last_hash:
        return checked, Fault(
            None,
            None,
            f"the log holds {checked} entries up to its head, which records {length} ending "
            f"in {last_hash[:12]}…: entries at the end were removed, or the head was changed",
        )
    return checked, None
