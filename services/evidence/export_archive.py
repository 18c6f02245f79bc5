"""An incident's evidence as one ZIP archive that verifies without Firebreak (export_format.py
says what it holds), written as it streams out: nothing holds an item, or the archive, whole.

Each item's content is read as a download is, and recorded in its custody log as an `accessed`
entry `{"purpose": "export", "export_id"}`; then come the custody logs (each read with its item
locked, so the log and the length and head its item records agree), the signatures of the
client's chain heads that list the items, the public key, and the manifest, which evidence
signs with the same Ed25519 key: someone outside the firm can tell that no byte of the archive
changed since, and, from the chain-head signatures, that no entry was rewritten before.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import zipfile
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.events.v1 import events_pb2
from firebreak.database import reading
from firebreak.errors import Conflict
from firebreak.outbox import Outbox
from services.evidence import (
    custody_commands,
    custody_log,
    custody_signatures,
    export_format,
    service,
)
from services.evidence.blob_crypto import BlobCorrupted
from services.evidence.blob_store import BlobStore
from services.evidence.custody_chain import timestamp
from services.evidence.custody_commands import ItemRef
from services.evidence.custody_signatures import Signer


class _Sink:
    """Where zipfile writes: keeps the bytes until they are taken. It cannot seek, so zipfile
    writes each member's sizes and CRC after its data and never goes back."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def write(self, data: bytes, /) -> int:
        self._pending += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self._pending)
        self._pending.clear()
        return data


@dataclass(frozen=True)
class Export:
    export_id: str
    client_id: str
    incident_id: str
    actor: events_pb2.Actor
    at: datetime


@dataclass
class _Content:
    """What became of one item's content in the archive (the manifest's content)."""

    status: str
    detail: str = ""
    path: str | None = None


async def items_to_export(
    engine: AsyncEngine, *, client_id: str, incident_id: str
) -> Sequence[Row[Any]]:
    """The incident's items, oldest first; NotFound for an incident evidence does not know."""
    async with reading(engine) as connection:
        await service.require_incident(connection, incident_id=incident_id, client_id=client_id)
        return await service.list_items(connection, client_id=client_id, incident_id=incident_id)


async def archive(
    *,
    engine: AsyncEngine,
    outbox: Outbox,
    store: BlobStore,
    signer: Signer,
    export: Export,
    rows: Sequence[Row[Any]],
) -> AsyncIterator[bytes]:
    """The archive's bytes, in pieces of about a content chunk."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", allowZip64=True) as archive:
        readme = export_format.README_TEXT.encode()
        _add(archive, export, export_format.README, readme)
        contents: list[_Content] = []
        for row in rows:
            content = _Content(export_format.INCLUDED)
            async for piece in _add_content(
                archive, sink, engine, outbox, store, export, row, content
            ):
                yield piece
            contents.append(content)
        manifest_items = []
        for row, content in zip(rows, contents, strict=True):
            manifest_items.append(await _add_custody(archive, outbox, export, row, content))
            yield sink.take()
        signatures = await _kept_signatures(engine, export.client_id, {row.id for row in rows})
        signatures_json = _json(signatures)
        _add(archive, export, export_format.SIGNATURES, signatures_json)
        raw_key = export_format.raw_public_key(signer.public_key.encode())
        _add(archive, export, export_format.PUBLIC_KEY, export_format.public_key_pem(raw_key))
        manifest = _json(
            {
                "format": export_format.FORMAT,
                "export_id": export.export_id,
                "exported_at": timestamp(export.at),
                "exported_by": {
                    "id": export.actor.id,
                    "kind": export.actor.kind,
                    "name": export.actor.name,
                },
                "client_id": export.client_id,
                "incident_id": export.incident_id,
                "public_key": {
                    "path": export_format.PUBLIC_KEY,
                    "sha256_fingerprint": export_format.fingerprint(raw_key),
                },
                "signatures": {
                    "path": export_format.SIGNATURES,
                    "sha256": hashlib.sha256(signatures_json).hexdigest(),
                },
                "readme": {
                    "path": export_format.README,
                    "sha256": hashlib.sha256(readme).hexdigest(),
                },
                "items": manifest_items,
            }
        )
        _add(archive, export, export_format.MANIFEST, manifest)
        signature = signer.sign(manifest.decode("utf-8"))
        _add(archive, export, export_format.MANIFEST_SIGNATURE, signature.encode() + b"\n")
    yield sink.take()  # the central directory


def _info(export: Export, name: str, compress_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=export.at.timetuple()[:6])
    info.compress_type = compress_type
    info.external_attr = 0o644 << 16
    return info


def _add(archive: zipfile.ZipFile, export: Export, name: str, data: bytes) -> None:
    archive.writestr(_info(export, name, zipfile.ZIP_DEFLATED), data)


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


async def _add_content(
    archive: zipfile.ZipFile,
    sink: _Sink,
    engine: AsyncEngine,
    outbox: Outbox,
    store: BlobStore,
    export: Export,
    row: Row[Any],
    content: _Content,
) -> AsyncIterator[bytes]:
    """Streams the item's content into the archive, recording the access; fills `content`."""
    if row.disposed_at is not None:
        content.status, content.detail = export_format.DISPOSED, "disposed of: its content is gone"
        return
    if row.sealed:
        content.status = export_format.SEALED
        content.detail = "sealed: unseal it to export its content (that is recorded too)"
        return
    try:
        _, chunks = await custody_commands.access(
            engine=engine,
            outbox=outbox,
            store=store,
            ref=ItemRef(client_id=export.client_id, evidence_id=row.id, actor=export.actor),
            details={"purpose": "export", "export_id": export.export_id},
        )
    except Conflict as refused:  # sealed or disposed of meanwhile, or no content to read
        content.status = (
            export_format.SEALED if "sealed" in str(refused) else export_format.UNAVAILABLE
        )
        content.detail = str(refused)
        return
    content.path = export_format.content_path(row.id, row.filename)
    info = _info(export, content.path, zipfile.ZIP_STORED)  # evidence is often compressed
    info.file_size = row.size_bytes  # so zipfile knows when it needs ZIP64 records
    read = 0
    with archive.open(info, "w") as member:
        try:
            while (chunk := await asyncio.to_thread(_next_chunk, chunks)) is not None:
                member.write(chunk)
                read += len(chunk)
                yield sink.take()
        except BlobCorrupted as error:
            # Never other bytes: the member ends where the content stopped authenticating.
            content.status = export_format.INCOMPLETE
            content.detail = f"its stored content could not be read past byte {read}: {error}"
    yield sink.take()


def _next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)


async def _add_custody(
    archive: zipfile.ZipFile, outbox: Outbox, export: Export, row: Row[Any], content: _Content
) -> dict[str, Any]:
    """Adds the item's custody log; returns its entry in the manifest."""
    async with outbox.transaction() as connection:
        item = await service.lock_item(connection, client_id=export.client_id, evidence_id=row.id)
        entries = [
            export_format.entry_json(custody_log.stored_entry(entry))
            for entry in await custody_log.entry_rows(connection, item.id)
        ]
    path = export_format.custody_path(item.id)
    log = _json({"evidence_id": item.id, "entries": entries})
    _add(archive, export, path, log)
    return {
        "evidence_id": item.id,
        "filename": item.filename,
        "description": item.description,
        "source": item.source,
        "acquisition": item.acquisition,
        "content_type": item.content_type,
        "collected_at": timestamp(item.collected_at),
        "sha256": item.sha256,
        "sha512": item.sha512,
        "size_bytes": item.size_bytes,
        "content": {"status": content.status, "path": content.path, "detail": content.detail},
        "custody": {
            "path": path,
            "sha256": hashlib.sha256(log).hexdigest(),
            "length": item.custody_length,
            "head": item.custody_head,
        },
    }


async def _kept_signatures(
    engine: AsyncEngine, client_id: str, evidence_ids: set[str]
) -> list[dict[str, Any]]:
    """The client's chain-head signatures that list any of the items, oldest first."""
    async with reading(engine) as connection:
        rows = await custody_signatures.signatures(connection, client_id)
    kept = []
    for row in rows:
        if not any(
            custody_signatures.signed_head(row, evidence_id) for evidence_id in evidence_ids
        ):
            continue
        kept.append(
            {
                "id": row.id,
                "client_id": row.client_id,
                "signed_at": timestamp(row.signed_at),
                "document": row.document,
                "signature": row.signature,
                "public_key": row.public_key,
            }
        )
    return kept
