"""Transfers of custody: the holder releases an item to a named member of staff, who confirms
receipt; the content is re-hashed at receipt and the result recorded (a change is also an
integrity failure). One transfer is pending at a time."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.events.v1 import events_pb2
from firebreak.database import reading
from firebreak.errors import Conflict, Forbidden, InvalidArgument, NotFound
from firebreak.events import EVIDENCE_INTEGRITY_FAILED, new_event
from firebreak.outbox import Outbox
from services.evidence import custody_log, service
from services.evidence.blob_crypto import BlobCorrupted, Digests
from services.evidence.blob_store import BlobStore
from services.evidence.custody_commands import ItemRef, text_field
from services.evidence.models import items, transfers


def _person(person_id: str, name: str) -> dict[str, str]:
    return {"id": person_id, "name": name}


async def transfer(
    *,
    outbox: Outbox,
    ref: ItemRef,
    receiver: events_pb2.Person,
    purpose: str,
    location: str,
) -> Row[Any]:
    """The holder releases the item to `receiver` (who confirms receipt): one pending at a
    time."""
    purpose, location = text_field("purpose", purpose), text_field("location", location)
    if not receiver.id or not receiver.name:
        raise InvalidArgument("to", "must name the person receiving it")
    now = datetime.now(UTC)
    async with outbox.transaction() as connection:
        item = await service.lock_item(
            connection, client_id=ref.client_id, evidence_id=ref.evidence_id
        )
        service.refuse_if_disposed(item)
        pending = (await service.pending_transfers(connection, [item.id])).get(item.id)
        if pending is not None:
            raise Conflict(
                f"transfer {pending.id} to {pending.receiver_name} is pending: it must be "
                "received first"
            )
        if receiver.id == item.holder_id:
            raise InvalidArgument("to", f"{receiver.name} holds it already")
        row = (
            await connection.execute(
                transfers.insert()
                .returning(*transfers.c)
                .values(
                    id=str(uuid.uuid4()),
                    evidence_id=item.id,
                    holder_id=item.holder_id,
                    holder_kind=item.holder_kind,
                    holder_name=item.holder_name,
                    receiver_id=receiver.id,
                    receiver_name=receiver.name,
                    purpose=purpose,
                    location=location,
                    status="pending",
                    released_at=now,
                )
            )
        ).one()
        holder = events_pb2.Person(id=item.holder_id, name=item.holder_name)
        await custody_log.record(
            connection,
            outbox=outbox,
            item=item,
            kind="transferred",
            actor=ref.actor,
            details={
                "transfer_id": row.id,
                "from": {**_person(item.holder_id, item.holder_name), "kind": item.holder_kind},
                "to": _person(receiver.id, receiver.name),
                "purpose": purpose,
                "location": location,
            },
            now=now,
            transfer_id=row.id,
            holder=holder,
            receiver=receiver,
            purpose=purpose,
            location=location,
        )
    return row


async def confirm_receipt(
    *,
    engine: AsyncEngine,
    outbox: Outbox,
    store: BlobStore,
    ref: ItemRef,
    transfer_id: str,
    location: str,
) -> Row[Any]:
    """The receiver named by the transfer confirms it; the content is re-hashed now and the
    result recorded (a mismatch is also an integrity failure)."""
    text_field("location", location, required=False)
    async with reading(engine) as connection:
        item = await service.item_row(
            connection, client_id=ref.client_id, evidence_id=ref.evidence_id
        )
        pending = await _pending(connection, item, transfer_id)
        _refuse_other_receiver(pending, ref.actor)
        blob = await service.blob_row(connection, item.sha256)
    rehashed = await _rehash(store, item, blob)
    matches = rehashed is not None and (rehashed.sha256, rehashed.sha512, rehashed.size_bytes) == (
        item.sha256,
        item.sha512,
        item.size_bytes,
    )
    now = datetime.now(UTC)
    async with outbox.transaction() as connection:
        item = await service.lock_item(
            connection, client_id=ref.client_id, evidence_id=ref.evidence_id
        )
        pending = await _pending(connection, item, transfer_id)
        _refuse_other_receiver(pending, ref.actor)
        where = location or pending.location
        row = (
            await connection.execute(
                update(transfers)
                .where(transfers.c.id == transfer_id)
                .values(status="received", received_at=now, content_matches=matches)
                .returning(*transfers.c)
            )
        ).one()
        await connection.execute(
            update(items)
            .where(items.c.id == item.id)
            .values(holder_id=ref.actor.id, holder_kind=ref.actor.kind, holder_name=ref.actor.name)
        )
        holder = events_pb2.Person(id=pending.holder_id, name=pending.holder_name)
        receiver = events_pb2.Person(id=pending.receiver_id, name=pending.receiver_name)
        await custody_log.record(
            connection,
            outbox=outbox,
            item=item,
            kind="received",
            actor=ref.actor,
            details={
                "transfer_id": transfer_id,
                "from": {
                    **_person(pending.holder_id, pending.holder_name),
                    "kind": pending.holder_kind,
                },
                "to": _person(pending.receiver_id, pending.receiver_name),
                "location": where,
                "sha256": rehashed.sha256 if rehashed else None,
                "sha512": rehashed.sha512 if rehashed else None,
                "size_bytes": rehashed.size_bytes if rehashed else None,
                "content_matches": matches,
            },
            now=now,
            transfer_id=transfer_id,
            holder=holder,
            receiver=receiver,
            location=where,
            content_matches=matches,
        )
        if not matches:
            await outbox.add(
                connection,
                new_event(
                    EVIDENCE_INTEGRITY_FAILED,
                    incident_id=item.incident_id,
                    client_id=item.client_id,
                    producer="evidence",
                    occurred_at=now,
                    actor=ref.actor,
                    payload=events_pb2.EvidenceIntegrityFailed(
                        evidence_id=item.id,
                        filename=item.filename,
                        differences=["blob: the content re-hashed at receipt is not as collected"],
                        found_by="receipt",
                    ),
                ),
            )
    return row


async def _pending(connection: Any, item: Row[Any], transfer_id: str) -> Row[Any]:
    row = (
        await connection.execute(
            select(transfers).where(
                transfers.c.id == transfer_id, transfers.c.evidence_id == item.id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"transfer {transfer_id} not found")
    if row.status != "pending":
        raise Conflict(f"transfer {transfer_id} was received already")
    return row


def _refuse_other_receiver(pending: Row[Any], actor: events_pb2.Actor) -> None:
    if actor.id != pending.receiver_id:
        raise Forbidden(
            f"only {pending.receiver_name}, to whom it was released, may confirm its receipt"
        )


async def _rehash(store: BlobStore, item: Row[Any], blob: Row[Any] | None) -> Digests | None:
    """The content's digests read back now; None when it cannot be read as written."""
    if item.disposed_at is not None or blob is None or blob.wrapped_key is None:
        return None
    try:
        return await asyncio.to_thread(
            store.digests,
            item.sha256,
            wrapped_key=blob.wrapped_key,
            master_key_id=blob.master_key_id,
        )
    except (FileNotFoundError, BlobCorrupted):
        return None
