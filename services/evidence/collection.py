"""Collecting an item: its content streams into an encrypted temporary file while SHA-256 and
SHA-512 are computed; only once the whole stream arrived, within the size limit, and matched the
digests the client sent, is the blob moved to its content address and the item, its first
custody entry and evidence.collected written, in one transaction. Otherwise nothing is kept.

An item that names its source (`source_reference`, unique per incident) is collected once: the
same source again, a redelivered attachment.received say, answers the item collected then. One
collected by email must arrive with the SHA-256 intake recorded when the mail came, and match
it."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.api.events.v1 import events_pb2
from firebreak.api.evidence.v1.evidence_pb2 import ItemMetadata
from firebreak.database import reading, upsert_insert
from firebreak.errors import Conflict, DomainError, InvalidArgument
from firebreak.events import EVIDENCE_COLLECTED, from_timestamp, new_event, to_timestamp
from firebreak.outbox import Outbox
from services.evidence import custody_log, service
from services.evidence.blob_crypto import Digests
from services.evidence.blob_store import BlobStore, Upload
from services.evidence.custody_chain import GENESIS, timestamp
from services.evidence.models import blobs, items

ACQUISITIONS = ("copy", "image", "export", "photo", "statement")
# api: submitted through the HTTP API (metadata that names no method); email: an attachment of a
# report by email, which the gateway moves from intake.
METHODS = ("api", "email")
TEXT_LIMITS = {
    "filename": 255,
    "description": 20_000,
    "source": 1000,
    "content_type": 255,
    "source_reference": 255,
}
# A collector's clock may run a little ahead of ours.
CLOCK_SKEW = timedelta(minutes=5)
HEX = {
    "expected_sha256": re.compile(r"[0-9a-f]{64}"),
    "expected_sha512": re.compile(r"[0-9a-f]{128}"),
}


class ContentTooLarge(DomainError):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"the content exceeds the limit of {max_bytes} bytes; nothing was kept")
        self.max_bytes = max_bytes


def validate(metadata: ItemMetadata, *, now: datetime) -> None:
    for field in ("client_id", "incident_id"):
        if not 1 <= len(getattr(metadata, field)) <= 36:
            raise InvalidArgument(field, "must be 1 to 36 characters")
    if not metadata.filename.strip():
        raise InvalidArgument("filename", "must not be empty")
    if re.search(r"[/\\\x00-\x1f\x7f]", metadata.filename) or metadata.filename in (".", ".."):
        raise InvalidArgument("filename", "must be a file name: no path, no control characters")
    for field, limit in TEXT_LIMITS.items():
        value = getattr(metadata, field)
        if len(value) > limit:
            raise InvalidArgument(field, f"must be at most {limit} characters")
        if "\x00" in value:
            raise InvalidArgument(field, "must not contain NUL characters")
    if metadata.acquisition not in ACQUISITIONS:
        raise InvalidArgument("acquisition", f"must be one of {', '.join(ACQUISITIONS)}")
    if (
        metadata.HasField("collected_at")
        and from_timestamp(metadata.collected_at) > now + CLOCK_SKEW
    ):
        raise InvalidArgument("collected_at", "must not be in the future")
    for field, pattern in HEX.items():
        value = getattr(metadata, field)
        if value and not pattern.fullmatch(value):
            raise InvalidArgument(field, "must be a lowercase hex digest")
    if not metadata.collector.id or not metadata.collector.name:
        raise InvalidArgument("collector", "must name who collected it")
    if method(metadata) not in METHODS:
        raise InvalidArgument("collection_method", f"must be one of {', '.join(METHODS)}")
    if method(metadata) == "email" and not (metadata.source_reference and metadata.expected_sha256):
        raise InvalidArgument(
            "source_reference",
            "an item collected by email names its attachment and the SHA-256 taken at receipt",
        )


def method(metadata: ItemMetadata) -> str:
    return metadata.collection_method or "api"


def _refuse_mismatch(metadata: ItemMetadata, digests: Digests) -> None:
    if method(metadata) == "email" and metadata.expected_sha256 != digests.sha256:
        raise InvalidArgument(
            "expected_sha256",
            f"the content's sha-256 is {digests.sha256}, not the {metadata.expected_sha256} "
            "recorded when the mail was received: it arrived changed or incomplete; nothing was "
            "kept",
        )
    for algorithm, expected, actual in (
        ("sha-256", metadata.expected_sha256, digests.sha256),
        ("sha-512", metadata.expected_sha512, digests.sha512),
    ):
        if expected and expected != actual:
            raise InvalidArgument(
                "Repr-Digest",
                f"the content's {algorithm} does not match the digest sent: it arrived changed "
                "or incomplete; nothing was kept",
            )


async def collect(
    *,
    engine: AsyncEngine,
    outbox: Outbox,
    store: BlobStore,
    metadata: ItemMetadata,
    pieces: AsyncIterator[bytes],
    max_bytes: int,
    verify_interval: timedelta,
) -> Row[Any]:
    """Stores the item whose content `pieces` streams; returns its row."""
    validate(metadata, now=datetime.now(UTC))
    async with reading(engine) as connection:
        # Before reading any content: an item for an incident it may not hold is not uploaded.
        await service.admit_incident(
            connection,
            incident_id=metadata.incident_id,
            client_id=metadata.client_id,
            confirmed=metadata.incident_confirmed,
        )
        if collected := await _collected_from(connection, metadata):
            return collected  # before reading the content: it is stored already
    try:
        return await _collect_new(
            outbox=outbox,
            store=store,
            metadata=metadata,
            pieces=pieces,
            max_bytes=max_bytes,
            verify_interval=verify_interval,
        )
    except IntegrityError:
        # Another replica collected the same source meanwhile (uq_items_source_reference).
        async with reading(engine) as connection:
            if collected := await _collected_from(connection, metadata):
                return collected
        raise


async def _collected_from(connection: AsyncConnection, metadata: ItemMetadata) -> Row[Any] | None:
    """The item collected before from the source the metadata names; None if none was. A
    Conflict if that item's content is not the content expected now."""
    if not metadata.source_reference:
        return None
    found = (
        await connection.execute(
            select(items).where(
                items.c.incident_id == metadata.incident_id,
                items.c.client_id == metadata.client_id,
                items.c.source_reference == metadata.source_reference,
            )
        )
    ).first()
    if found is not None and metadata.expected_sha256 not in ("", found.sha256):
        raise Conflict(
            f"{metadata.source_reference} was collected as evidence {found.id}, whose sha-256 "
            f"is {found.sha256}, not {metadata.expected_sha256}"
        )
    return found


async def _collect_new(
    *,
    outbox: Outbox,
    store: BlobStore,
    metadata: ItemMetadata,
    pieces: AsyncIterator[bytes],
    max_bytes: int,
    verify_interval: timedelta,
) -> Row[Any]:
    upload = await asyncio.to_thread(store.begin_upload)
    try:
        async for piece in pieces:
            if upload.size_bytes + len(piece) > max_bytes:
                raise ContentTooLarge(max_bytes)
            if piece:
                await asyncio.to_thread(upload.write, piece)
        if upload.size_bytes == 0:
            raise InvalidArgument("content", "must not be empty: send the item as the body")
        digests = await asyncio.to_thread(upload.finish)
        _refuse_mismatch(metadata, digests)
        now = datetime.now(UTC)
        async with outbox.transaction() as connection:
            if metadata.incident_confirmed:
                # Collected before evidence heard of the incident on the bus: the item brings
                # its client, which the incident.triaged to come must then name too.
                await service.learn_incident(
                    connection, incident_id=metadata.incident_id, client_id=metadata.client_id
                )
                await service.require_incident(
                    connection, incident_id=metadata.incident_id, client_id=metadata.client_id
                )
            await keep_blob(connection, store=store, upload=upload, digests=digests, now=now)
            return await _record_item(
                connection,
                outbox=outbox,
                metadata=metadata,
                digests=digests,
                now=now,
                verify_interval=verify_interval,
            )
    finally:
        await asyncio.to_thread(upload.discard)


async def keep_blob(
    connection: AsyncConnection,
    *,
    store: BlobStore,
    upload: Upload,
    digests: Digests,
    now: datetime,
) -> None:
    """Keeps the upload as the blob of its content, unless that content is stored already."""
    kept = {
        "sha512": digests.sha512,
        "size_bytes": digests.size_bytes,
        "wrapped_key": upload.wrapped_key,
        "master_key_id": upload.master_key_id,
        "stored_at": now,
    }
    insert = (
        upsert_insert(connection.dialect.name, blobs)
        .values(sha256=digests.sha256, **kept)
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(blobs.c.sha256)
    )
    if (await connection.execute(insert)).first() is None:
        existing = (
            await connection.execute(
                select(blobs.c.disposed_at)
                .where(blobs.c.sha256 == digests.sha256)
                .with_for_update()
            )
        ).one()
        if existing.disposed_at is None:
            return  # the same bytes are stored already: one blob, however many items
        # Collected again after its last item was disposed of: this upload brings it back.
        await connection.execute(
            update(blobs).where(blobs.c.sha256 == digests.sha256).values(**kept, disposed_at=None)
        )
    # Before the commit: a rename left by a failed commit is an orphan file the next upload
    # of the same content replaces; a committed row without its file would be a loss.
    await asyncio.to_thread(store.place, upload, digests.sha256)


async def _record_item(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    metadata: ItemMetadata,
    digests: Digests,
    now: datetime,
    verify_interval: timedelta,
) -> Row[Any]:
    evidence_id = str(uuid.uuid4())
    collected_at = (
        from_timestamp(metadata.collected_at) if metadata.HasField("collected_at") else now
    )
    collector = metadata.collector
    item = (
        await connection.execute(
            items.insert()
            .returning(*items.c)
            .values(
                id=evidence_id,
                incident_id=metadata.incident_id,
                client_id=metadata.client_id,
                filename=metadata.filename,
                description=metadata.description,
                source=metadata.source,
                acquisition=metadata.acquisition,
                content_type=metadata.content_type or "application/octet-stream",
                sha256=digests.sha256,
                sha512=digests.sha512,
                size_bytes=digests.size_bytes,
                collected_at=collected_at,
                received_at=now,
                collector_id=collector.id,
                collector_kind=collector.kind,
                collector_name=collector.name,
                collection_method=method(metadata),
                source_reference=metadata.source_reference or None,
                holder_id=collector.id,
                holder_kind=collector.kind,
                holder_name=collector.name,
                sealed=False,
                legal_hold=False,
                custody_length=0,
                custody_head=GENESIS,
                next_verify_at=now + verify_interval,
            )
        )
    ).one()
    checked = [
        name
        for name, sent in (
            ("sha-256", metadata.expected_sha256),
            ("sha-512", metadata.expected_sha512),
        )
        if sent
    ]
    details = {
        "incident_id": item.incident_id,
        "filename": item.filename,
        "description": item.description,
        "source": item.source,
        "acquisition": item.acquisition,
        "content_type": item.content_type,
        "collected_at": timestamp(collected_at),
        "sha256": digests.sha256,
        "sha512": digests.sha512,
        "size_bytes": digests.size_bytes,
        "digests_sent_and_matched": checked,
    }
    if item.collection_method == "email":
        # How it came, and that the content is what intake hashed when the mail arrived.
        details |= {
            "collection_method": "email",
            "source_reference": item.source_reference,
            "sha256_at_receipt": metadata.expected_sha256,
        }
    stored = await custody_log.append_entry(
        connection, item=item, kind="collected", actor=collector, details=details, now=now
    )
    await outbox.add(
        connection,
        new_event(
            EVIDENCE_COLLECTED,
            incident_id=item.incident_id,
            client_id=item.client_id,
            producer="evidence",
            occurred_at=now,
            actor=collector,
            payload=events_pb2.EvidenceCollected(
                evidence_id=evidence_id,
                filename=item.filename,
                sha256=digests.sha256,
                size_bytes=digests.size_bytes,
                collected_by=collector.name,
                sha512=digests.sha512,
                source=item.source,
                acquisition=item.acquisition,
                collected_at=to_timestamp(collected_at),
                entry_hash=stored.entry_hash,
                collection_method=item.collection_method,
                source_reference=item.source_reference or "",
            ),
        ),
    )
    return await service.item_row(connection, client_id=item.client_id, evidence_id=evidence_id)
