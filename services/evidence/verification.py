"""Verifying an item: its blob is read back and hashed, its custody log re-chained, its record
held against the log's first entry, and the latest signature of its client's chain heads
checked; any difference is `tampered`, with what differs, and evidence.integrity_failed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.api.events.v1 import events_pb2
from firebreak.database import reading
from firebreak.events import EVIDENCE_INTEGRITY_FAILED, new_event
from firebreak.outbox import Outbox
from services.evidence import custody_log, custody_signatures, service
from services.evidence.blob_crypto import BlobCorrupted
from services.evidence.blob_store import BlobStore
from services.evidence.custody_chain import (
    FIXED_AT_COLLECTION,
    RecordedFacts,
    StoredEntry,
    chain_differences,
    timestamp,
)
from services.evidence.models import items

# At most this many differences are recorded: one broken link shows in every entry after it.
MAX_DIFFERENCES = 20


@dataclass(frozen=True)
class Difference:
    what: str  # blob | custody | signature
    detail: str

    def __str__(self) -> str:
        return f"{self.what}: {self.detail}"


@dataclass(frozen=True)
class Verification:
    item: Row[Any]
    result: str  # intact | tampered
    differences: list[Difference]
    entry: StoredEntry
    verified_at: datetime


async def verify(
    *,
    engine: AsyncEngine,
    outbox: Outbox,
    store: BlobStore,
    client_id: str | None,
    evidence_id: str,
    actor: events_pb2.Actor,
    found_by: str,
    verify_interval: timedelta,
) -> Verification:
    """Verifies one item and records the result (`found_by`: verify, or schedule). A scheduled
    verification that finds the item intact is recorded in the custody log only, not published,
    so the timeline is not a daily list of every item."""
    async with reading(engine) as connection:
        item = await service.item_row(connection, client_id=client_id, evidence_id=evidence_id)
        blob = await service.blob_row(connection, item.sha256)
    differences = await _content_differences(store, item, blob)
    now = datetime.now(UTC)
    async with outbox.transaction() as connection:
        item = await service.lock_item(connection, client_id=item.client_id, evidence_id=item.id)
        stored = [
            custody_log.stored_entry(row)
            for row in await custody_log.entry_rows(connection, item.id)
        ]
        recorded = RecordedFacts(
            length=item.custody_length,
            head=item.custody_head,
            fixed={fact: getattr(item, fact) for fact in FIXED_AT_COLLECTION},
        )
        differences += [Difference("custody", d) for d in chain_differences(stored, recorded)]
        differences += await _signature_differences(connection, item, stored)
        differences = differences[:MAX_DIFFERENCES]
        result = "tampered" if differences else "intact"
        entry = await custody_log.record(
            connection,
            outbox=outbox,
            item=item,
            kind="verified",
            actor=actor,
            details={
                "result": result,
                "differences": [str(difference) for difference in differences],
                "found_by": found_by,
            },
            now=now,
            publish=found_by != "schedule" or bool(differences),
            result=result,
        )
        await connection.execute(
            update(items)
            .where(items.c.id == item.id)
            .values(
                last_verified_at=now, last_verification=result, next_verify_at=now + verify_interval
            )
        )
        if differences:
            await outbox.add(
                connection,
                new_event(
                    EVIDENCE_INTEGRITY_FAILED,
                    incident_id=item.incident_id,
                    client_id=item.client_id,
                    producer="evidence",
                    occurred_at=now,
                    actor=actor,
                    payload=events_pb2.EvidenceIntegrityFailed(
                        evidence_id=item.id,
                        filename=item.filename,
                        differences=[str(difference) for difference in differences],
                        found_by=found_by,
                    ),
                ),
            )
        item = await service.item_row(connection, client_id=item.client_id, evidence_id=item.id)
    return Verification(item, result, differences, entry, now)


async def _content_differences(
    store: BlobStore, item: Row[Any], blob: Row[Any] | None
) -> list[Difference]:
    if item.disposed_at is not None:
        return []  # nothing left to read: the log records the disposal
    if blob is None or blob.wrapped_key is None:
        return [Difference("blob", f"no stored content for {item.sha256}")]
    try:
        digests = await asyncio.to_thread(
            store.digests,
            item.sha256,
            wrapped_key=blob.wrapped_key,
            master_key_id=blob.master_key_id,
        )
    except FileNotFoundError:
        return [Difference("blob", f"the file of {item.sha256} is missing")]
    except BlobCorrupted as error:
        return [Difference("blob", str(error))]
    found = []
    for name, actual, fixed in (
        ("SHA-256", digests.sha256, item.sha256),
        ("SHA-512", digests.sha512, item.sha512),
        ("size", digests.size_bytes, item.size_bytes),
    ):
        if actual != fixed:
            found.append(
                Difference(
                    "blob", f"its content's {name} is {actual}; {fixed} was fixed at collection"
                )
            )
    return found


async def _signature_differences(
    connection: AsyncConnection, item: Row[Any], stored: Sequence[StoredEntry]
) -> list[Difference]:
    """Holds the log against the latest signature of the client's chain heads, if any."""
    signature = await custody_signatures.latest(connection, item.client_id)
    if signature is None:
        return []
    signed_at = timestamp(signature.signed_at)
    if not custody_signatures.signature_holds(signature):
        return [Difference("signature", f"the signature of {signed_at} does not hold")]
    head = custody_signatures.signed_head(signature, item.id)
    if head is None:
        return []
    length, digest = head
    at_position = {row.entry.position: row.entry_hash for row in stored}
    if at_position.get(length - 1) != digest:
        return [
            Difference(
                "signature",
                f"entry {length - 1} is not the one signed at {signed_at}: the log was "
                "rewritten after it was signed",
            )
        ]
    return []
