"""Items stored in the database before evidence had a blob store and custody logs (revision
0002 left their content in legacy_contents): at start, evidence encrypts each into the blob
store under the SHA-256 recorded at its collection, fixes its SHA-512, and opens its custody
log with its collection, as then recorded. A content that no longer matches its recorded
SHA-256 is kept as it is, for verification to report."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.events.v1 import events_pb2
from services.evidence import custody_log
from services.evidence.blob_crypto import Digests
from services.evidence.blob_store import BlobStore
from services.evidence.collection import keep_blob
from services.evidence.custody_chain import timestamp
from services.evidence.models import items, legacy_contents

log = logging.getLogger(__name__)


async def import_legacy(engine: AsyncEngine, store: BlobStore) -> int:
    """Imports every waiting item, each in a transaction of its own; returns how many."""
    imported = 0
    while True:
        async with engine.begin() as connection:
            waiting = (
                await connection.execute(
                    select(legacy_contents).limit(1).with_for_update(skip_locked=True)
                )
            ).first()
            if waiting is None:
                break
            item = (
                await connection.execute(
                    select(items).where(items.c.id == waiting.evidence_id).with_for_update()
                )
            ).one()
            upload = await asyncio.to_thread(store.begin_upload)
            try:
                await asyncio.to_thread(upload.write, waiting.content)
                actual = await asyncio.to_thread(upload.finish)
                now = datetime.now(UTC)
                await keep_blob(
                    connection,
                    store=store,
                    upload=upload,
                    digests=Digests(item.sha256, actual.sha512, actual.size_bytes),
                    now=now,
                )
            finally:
                await asyncio.to_thread(upload.discard)
            await connection.execute(
                update(items).where(items.c.id == item.id).values(sha512=actual.sha512)
            )
            await custody_log.append_entry(
                connection,
                item=item,
                kind="collected",
                actor=events_pb2.Actor(
                    id=item.collector_id, kind=item.collector_kind, name=item.collector_name
                ),
                details={
                    "incident_id": item.incident_id,
                    "filename": item.filename,
                    "description": item.description,
                    "source": item.source,
                    "acquisition": item.acquisition,
                    "content_type": item.content_type,
                    "collected_at": timestamp(item.collected_at),
                    "sha256": item.sha256,
                    "sha512": actual.sha512,
                    "size_bytes": item.size_bytes,
                    "imported": "held in the database before custody logs existed; moved into "
                    f"the blob store at {timestamp(now)}, when its SHA-512 was fixed",
                },
                now=now,
            )
            await connection.execute(
                delete(legacy_contents).where(legacy_contents.c.evidence_id == item.id)
            )
        imported += 1
    if imported:
        log.info("moved %d evidence items from the database into the blob store", imported)
    return imported
