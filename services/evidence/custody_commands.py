"""What happens to an item after collection, each recorded in its custody log with its event:
access (every download), sealing, legal hold and disposal (transfers: transfers.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.events.v1 import events_pb2
from firebreak.database import reading
from firebreak.errors import Conflict, InvalidArgument
from firebreak.outbox import Outbox
from services.evidence import custody_log, service
from services.evidence.blob_store import BlobStore
from services.evidence.custody_chain import timestamp
from services.evidence.models import blobs, items, known_incidents

DISPOSAL_METHODS = ("destroyed", "returned")
TEXT_LIMIT = 1000


@dataclass(frozen=True)
class ItemRef:
    client_id: str
    evidence_id: str
    actor: events_pb2.Actor


def text_field(field: str, value: str, *, required: bool = True) -> str:
    if required and not value.strip():
        raise InvalidArgument(field, "must not be empty")
    if len(value) > TEXT_LIMIT:
        raise InvalidArgument(field, f"must be at most {TEXT_LIMIT} characters")
    if "\x00" in value:
        raise InvalidArgument(field, "must not contain NUL characters")
    return value


async def access(
    *,
    engine: AsyncEngine,
    outbox: Outbox,
    store: BlobStore,
    ref: ItemRef,
    details: Mapping[str, Any] | None = None,
) -> tuple[Row[Any], Iterator[bytes]]:
    """Opens the content for reading (the key and file are checked first: a wrong master key
    fails before anything is recorded or sent), records the access (with `details`, e.g. an
    export's purpose and id), and returns the item and its decrypted chunks. Refused for a
    sealed or disposed item."""
    async with reading(engine) as connection:
        item = await service.item_row(
            connection, client_id=ref.client_id, evidence_id=ref.evidence_id
        )
        service.refuse_if_disposed(item)
        blob = await service.blob_row(connection, item.sha256)
    if blob is None or blob.wrapped_key is None:
        raise Conflict(f"evidence {item.id} has no stored content; verify it")
    _refuse_if_sealed(item)
    try:
        chunks = await asyncio.to_thread(
            store.content,
            item.sha256,
            wrapped_key=blob.wrapped_key,
            master_key_id=blob.master_key_id,
        )
    except FileNotFoundError:
        raise Conflict(f"evidence {item.id}'s content is missing; verify it") from None
    async with outbox.transaction() as connection:
        item = await service.lock_item(
            connection, client_id=ref.client_id, evidence_id=ref.evidence_id
        )
        service.refuse_if_disposed(item)
        _refuse_if_sealed(item)
        await custody_log.record(
            connection,
            outbox=outbox,
            item=item,
            kind="accessed",
            actor=ref.actor,
            details=details or {},
            now=datetime.now(UTC),
        )
        item = await service.item_row(connection, client_id=ref.client_id, evidence_id=item.id)
    return item, chunks


def _refuse_if_sealed(item: Row[Any]) -> None:
    if item.sealed:
        raise Conflict(f"evidence {item.id} is sealed: unseal it first (that is recorded too)")


async def seal(*, outbox: Outbox, ref: ItemRef, sealed: bool, reason: str) -> Row[Any]:
    """Seals the item (no download until it is unsealed) or unseals it."""
    reason = text_field("reason", reason, required=False)
    async with outbox.transaction() as connection:
        item = await service.lock_item(
            connection, client_id=ref.client_id, evidence_id=ref.evidence_id
        )
        service.refuse_if_disposed(item)
        if item.sealed == sealed:
            raise Conflict(f"evidence {item.id} is {'sealed' if sealed else 'not sealed'} already")
        await connection.execute(update(items).where(items.c.id == item.id).values(sealed=sealed))
        await custody_log.record(
            connection,
            outbox=outbox,
            item=item,
            kind="sealed" if sealed else "unsealed",
            actor=ref.actor,
            details={"reason": reason},
            now=datetime.now(UTC),
            reason=reason,
        )
        return await service.item_row(connection, client_id=ref.client_id, evidence_id=item.id)


async def set_legal_hold(*, outbox: Outbox, ref: ItemRef, held: bool, reason: str) -> Row[Any]:
    """Under legal hold an item cannot be disposed of."""
    reason = text_field("reason", reason)
    async with outbox.transaction() as connection:
        item = await service.lock_item(
            connection, client_id=ref.client_id, evidence_id=ref.evidence_id
        )
        service.refuse_if_disposed(item)
        if item.legal_hold == held:
            raise Conflict(
                f"evidence {item.id} is {'under' if held else 'not under'} legal hold already"
            )
        await connection.execute(update(items).where(items.c.id == item.id).values(legal_hold=held))
        await custody_log.record(
            connection,
            outbox=outbox,
            item=item,
            kind="legal_hold_set" if held else "legal_hold_released",
            actor=ref.actor,
            details={"reason": reason},
            now=datetime.now(UTC),
            reason=reason,
        )
        return await service.item_row(connection, client_id=ref.client_id, evidence_id=item.id)


async def dispose(
    *, outbox: Outbox, store: BlobStore, ref: ItemRef, method: str, authorised_by: str
) -> Row[Any]:
    """Disposes of the item once its incident ended and no legal hold stops it. Its record and
    custody log remain; its blob goes (file deleted, data key erased) when no other item holds
    the same content."""
    if method not in DISPOSAL_METHODS:
        raise InvalidArgument("method", f"must be one of {', '.join(DISPOSAL_METHODS)}")
    authorised_by = text_field("authorised_by", authorised_by)
    now = datetime.now(UTC)
    aside: Path | None = None
    try:
        async with outbox.transaction() as connection:
            item = await service.lock_item(
                connection, client_id=ref.client_id, evidence_id=ref.evidence_id
            )
            service.refuse_if_disposed(item)
            if item.legal_hold:
                raise Conflict(f"evidence {item.id} is under legal hold: release the hold first")
            incident = (
                await connection.execute(
                    select(known_incidents.c.status).where(
                        known_incidents.c.incident_id == item.incident_id
                    )
                )
            ).one()
            if incident.status not in service.ENDED:
                raise Conflict(
                    f"incident {item.incident_id} is still open ({incident.status}): its evidence "
                    "is disposed of only once it is closed, declined or merged"
                )
            if (await service.pending_transfers(connection, [item.id])).get(item.id) is not None:
                raise Conflict(f"evidence {item.id} has a transfer pending: receive it first")
            # Locked before counting, so that an upload of the same content waits for us.
            await connection.execute(
                select(blobs.c.sha256).where(blobs.c.sha256 == item.sha256).with_for_update()
            )
            others = (
                await connection.execute(
                    select(func.count()).where(
                        items.c.sha256 == item.sha256,
                        items.c.id != item.id,
                        items.c.disposed_at.is_(None),
                    )
                )
            ).scalar_one()
            await connection.execute(
                update(items).where(items.c.id == item.id).values(disposed_at=now)
            )
            if others == 0:
                await connection.execute(
                    update(blobs)
                    .where(blobs.c.sha256 == item.sha256)
                    .values(wrapped_key=None, master_key_id=None, disposed_at=now)
                )
                aside = await asyncio.to_thread(store.set_aside, item.sha256)
            await custody_log.record(
                connection,
                outbox=outbox,
                item=item,
                kind="disposed",
                actor=ref.actor,
                details={
                    "method": method,
                    "authorised_by": authorised_by,
                    "content_removed": others == 0,
                    "disposed_at": timestamp(now),
                },
                now=now,
                method=method,
                authorised_by=authorised_by,
            )
            row = await service.item_row(connection, client_id=ref.client_id, evidence_id=item.id)
    except BaseException:
        if aside is not None:
            await asyncio.to_thread(store.restore, aside, item.sha256)
        raise
    if aside is not None:
        await asyncio.to_thread(aside.unlink, missing_ok=True)
    return row
