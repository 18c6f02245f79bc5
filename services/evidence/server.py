"""Evidence's gRPC API: collect an item (client streaming), read it (server streaming), list
and read records, the custody commands, and an incident's export (server streaming)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.events.v1 import events_pb2
from firebreak.api.evidence.v1 import evidence_pb2, evidence_pb2_grpc
from firebreak.database import reading
from firebreak.errors import InvalidArgument, NotFound
from firebreak.events import to_timestamp
from firebreak.outbox import Outbox
from firebreak.tenancy import by_id_scope, client_scope, found_within
from services.evidence import (
    collection,
    custody_commands,
    custody_log,
    custody_signatures,
    export_archive,
    service,
    transfers,
    verification,
)
from services.evidence.blob_crypto import MasterKeyMismatch
from services.evidence.blob_store import BlobStore
from services.evidence.custody_chain import StoredEntry, canonical_json
from services.evidence.custody_commands import ItemRef
from services.evidence.custody_signatures import Signer

DONE = object()  # the end of a content iterator, handed back from its worker thread


@contextlib.asynccontextmanager
async def _unreadable_as_data_loss(context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
    """A wrong master key is the deployment's fault, not the caller's: DATA_LOSS, which the
    gateway answers with a 500 that says so."""
    try:
        yield
    except MasterKeyMismatch as error:
        await context.abort(grpc.StatusCode.DATA_LOSS, str(error))


def _ref(item: evidence_pb2.ItemRef) -> ItemRef:
    if not item.client_id or not item.evidence_id:
        raise InvalidArgument("item", "must name the evidence and its client")
    if not item.actor.id:
        raise InvalidArgument("actor", "must name who does it")
    return ItemRef(client_id=item.client_id, evidence_id=item.evidence_id, actor=item.actor)


class EvidenceServicer(evidence_pb2_grpc.EvidenceServiceServicer):
    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Outbox,
        store: BlobStore,
        signer: Signer,
        *,
        max_bytes: int,
        verify_interval: timedelta,
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._store = store
        self._signer = signer
        self._max_bytes = max_bytes
        self._verify_interval = verify_interval

    async def CollectEvidence(
        self,
        request_iterator: AsyncIterator[evidence_pb2.CollectEvidenceRequest],
        context: grpc.aio.ServicerContext,
    ) -> evidence_pb2.EvidenceRecord:
        requests = aiter(request_iterator)
        first = await anext(requests, None)
        if first is None or first.WhichOneof("part") != "metadata":
            raise InvalidArgument("metadata", "the first message must carry the item's metadata")

        async def pieces() -> AsyncIterator[bytes]:
            async for request in requests:
                if request.WhichOneof("part") != "chunk":
                    raise InvalidArgument("chunk", "only the first message carries metadata")
                yield request.chunk

        try:
            row = await collection.collect(
                engine=self._engine,
                outbox=self._outbox,
                store=self._store,
                metadata=first.metadata,
                pieces=pieces(),
                max_bytes=self._max_bytes,
                verify_interval=self._verify_interval,
            )
        except collection.ContentTooLarge as error:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(error))
        return await self._record(row, custody=True)

    async def GetEvidence(
        self, request: evidence_pb2.GetEvidenceRequest, context: grpc.aio.ServicerContext
    ) -> evidence_pb2.EvidenceRecord:
        async with reading(self._engine) as connection:
            row = await service.item_row(
                connection, client_id=by_id_scope(request), evidence_id=request.evidence_id
            )
        if not found_within(request, row.client_id):
            raise NotFound(f"evidence {request.evidence_id} not found")
        return await self._record(row, custody=request.with_custody)

    async def ListEvidence(
        self, request: evidence_pb2.ListEvidenceRequest, context: grpc.aio.ServicerContext
    ) -> evidence_pb2.EvidenceList:
        async with reading(self._engine) as connection:
            rows = await service.list_items(
                connection, client_id=client_scope(request), incident_id=request.incident_id
            )
            pending = await service.pending_transfers(connection, [row.id for row in rows])
        return evidence_pb2.EvidenceList(
            items=[item_message(row, pending.get(row.id)) for row in rows]
        )

    async def ReadContent(
        self, request: evidence_pb2.ReadContentRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[evidence_pb2.ContentPiece]:
        async with _unreadable_as_data_loss(context):
            row, chunks = await custody_commands.access(
                engine=self._engine, outbox=self._outbox, store=self._store, ref=_ref(request.item)
            )
        yield evidence_pb2.ContentPiece(header=item_message(row, None))
        while (chunk := await asyncio.to_thread(_next_chunk, chunks)) is not DONE:
            assert isinstance(chunk, bytes)
            yield evidence_pb2.ContentPiece(chunk=chunk)

    async def TransferEvidence(
        self, request: evidence_pb2.TransferRequest, context: grpc.aio.ServicerContext
    ) -> evidence_pb2.Transfer:
        row = await transfers.transfer(
            outbox=self._outbox,
            ref=_ref(request.item),
            receiver=request.receiver,
            purpose=request.purpose,
            location=request.location,
        )
        return transfer_message(row)

    async def ConfirmReceipt(
        self, request: evidence_pb2.ReceiptRequest, context: grpc.aio.ServicerContext
    ) -> evidence_pb2.Transfer:
        async with _unreadable_as_data_loss(context):
            row = await transfers.confirm_receipt(
                engine=self._engine,
                outbox=self._outbox,
                store=self._store,
                ref=_ref(request.item),
                transfer_id=request.transfer_id,
                location=request.location,
            )
        return transfer_message(row)

    async def SealEvidence(
        self, request: evidence_pb2.SealRequest, context: grpc.aio.ServicerContext
    ) -> evidence_pb2.EvidenceRecord:
        row = await custody_commands.seal(
            outbox=self._outbox,
            ref=_ref(request.item),
            sealed=request.sealed,
            reason=request.reason,
        )
        return await self._record(row, custody=True)

    async def SetLegalHold(
        self, request: evidence_pb2.LegalHoldRequest, context: grpc.aio.ServicerContext
    ) -> evidence_pb2.EvidenceRecord:
        row = await custody_commands.set_legal_hold(
            outbox=self._outbox, ref=_ref(request.item), held=request.held, reason=request.reason
        )
        return await self._record(row, custody=True)

    async def DisposeEvidence(
        self, request: evidence_pb2.DisposeRequest, context: grpc.aio.ServicerContext
    ) -> evidence_pb2.EvidenceRecord:
        row = await custody_commands.dispose(
            outbox=self._outbox,
            store=self._store,
            ref=_ref(request.item),
            method=request.method,
            authorised_by=request.authorised_by,
        )
        return await self._record(row, custody=True)

    async def VerifyEvidence(
        self, request: evidence_pb2.VerifyRequest, context: grpc.aio.ServicerContext
    ) -> evidence_pb2.Verification:
        ref = _ref(request.item)
        async with _unreadable_as_data_loss(context):
            checked = await verification.verify(
                engine=self._engine,
                outbox=self._outbox,
                store=self._store,
                client_id=ref.client_id,
                evidence_id=ref.evidence_id,
                actor=ref.actor,
                found_by="verify",
                verify_interval=self._verify_interval,
            )
        return evidence_pb2.Verification(
            evidence_id=checked.item.id,
            result=checked.result,
            differences=[
                evidence_pb2.Difference(what=difference.what, detail=difference.detail)
                for difference in checked.differences
            ],
            verified_at=to_timestamp(checked.verified_at),
            entry=entry_message(checked.entry),
        )

    async def SignCustodyHeads(
        self, request: evidence_pb2.SignCustodyHeadsRequest, context: grpc.aio.ServicerContext
    ) -> evidence_pb2.CustodySignature:
        if not request.client_id:
            raise InvalidArgument("client_id", "is required")
        async with self._outbox.transaction() as connection:
            row = await custody_signatures.sign_client(
                connection, signer=self._signer, client_id=request.client_id, now=datetime.now(UTC)
            )
        return signature_message(row)

    async def ListCustodySignatures(
        self, request: evidence_pb2.ListCustodySignaturesRequest, context: grpc.aio.ServicerContext
    ) -> evidence_pb2.CustodySignatureList:
        if not request.client_id:
            raise InvalidArgument("client_id", "is required")
        async with reading(self._engine) as connection:
            rows = await custody_signatures.signatures(connection, request.client_id)
        return evidence_pb2.CustodySignatureList(
            signatures=[signature_message(row) for row in rows]
        )

    async def ExportEvidence(
        self, request: evidence_pb2.ExportRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[evidence_pb2.ExportPiece]:
        if not request.client_id or not request.incident_id:
            raise InvalidArgument("incident", "must name the incident and its client")
        if not request.actor.id:
            raise InvalidArgument("actor", "must name who exports it")
        export = export_archive.Export(
            export_id=str(uuid.uuid4()),
            client_id=request.client_id,
            incident_id=request.incident_id,
            actor=request.actor,
            at=datetime.now(UTC),
        )
        rows = await export_archive.items_to_export(
            self._engine, client_id=export.client_id, incident_id=export.incident_id
        )
        header = evidence_pb2.ExportHeader(export_id=export.export_id, items=len(rows))
        yield evidence_pb2.ExportPiece(header=header)
        async with _unreadable_as_data_loss(context):
            async for piece in export_archive.archive(
                engine=self._engine,
                outbox=self._outbox,
                store=self._store,
                signer=self._signer,
                export=export,
                rows=rows,
            ):
                if piece:
                    yield evidence_pb2.ExportPiece(chunk=piece)

    async def _record(self, row: Row[Any], *, custody: bool) -> evidence_pb2.EvidenceRecord:
        async with reading(self._engine) as connection:
            pending = await service.pending_transfers(connection, [row.id])
            entries = await custody_log.entry_rows(connection, row.id) if custody else []
        return evidence_pb2.EvidenceRecord(
            item=item_message(row, pending.get(row.id)),
            custody=[entry_message(custody_log.stored_entry(entry)) for entry in entries],
        )


def _next_chunk(chunks: Iterator[bytes]) -> object:
    """The next decrypted chunk, or DONE. A chunk that fails authentication raises
    BlobCorrupted, which ends the stream with an error having sent nothing of it."""
    return next(chunks, DONE)


def _actor(actor_id: str, kind: str, name: str) -> events_pb2.Actor:
    return events_pb2.Actor(id=actor_id, kind=kind, name=name)


def _optional_time(message: Any, field: str, value: Any) -> None:
    if value is not None:
        getattr(message, field).CopyFrom(to_timestamp(value))


def transfer_message(row: Row[Any]) -> evidence_pb2.Transfer:
    message = evidence_pb2.Transfer(
        id=row.id,
        evidence_id=row.evidence_id,
        holder=_actor(row.holder_id, row.holder_kind, row.holder_name),
        receiver=events_pb2.Person(id=row.receiver_id, name=row.receiver_name),
        purpose=row.purpose,
        location=row.location,
        status=row.status,
        released_at=to_timestamp(row.released_at),
        content_matches=bool(row.content_matches),
    )
    _optional_time(message, "received_at", row.received_at)
    return message


def item_message(row: Row[Any], pending: Row[Any] | None) -> evidence_pb2.EvidenceItem:
    message = evidence_pb2.EvidenceItem(
        id=row.id,
        incident_id=row.incident_id,
        client_id=row.client_id,
        filename=row.filename,
        description=row.description,
        source=row.source,
        acquisition=row.acquisition,
        content_type=row.content_type,
        sha256=row.sha256,
        sha512=row.sha512 or "",
        size_bytes=row.size_bytes,
        collected_at=to_timestamp(row.collected_at),
        received_at=to_timestamp(row.received_at),
        collector=_actor(row.collector_id, row.collector_kind, row.collector_name),
        holder=_actor(row.holder_id, row.holder_kind, row.holder_name),
        sealed=row.sealed,
        legal_hold=row.legal_hold,
        custody_length=row.custody_length,
        custody_head=row.custody_head,
        last_verification=row.last_verification or "",
        collection_method=row.collection_method,
        source_reference=row.source_reference or "",
    )
    _optional_time(message, "disposed_at", row.disposed_at)
    _optional_time(message, "last_verified_at", row.last_verified_at)
    if pending is not None:
        message.pending_transfer.CopyFrom(transfer_message(pending))
    return message


def entry_message(stored: StoredEntry) -> evidence_pb2.CustodyEntry:
    entry = stored.entry
    return evidence_pb2.CustodyEntry(
        position=entry.position,
        kind=entry.kind,
        actor=_actor(entry.actor.id, entry.actor.kind, entry.actor.name),
        recorded_at=to_timestamp(entry.recorded_at),
        details_json=canonical_json(entry.details),
        prev_hash=entry.prev_hash,
        entry_hash=stored.entry_hash,
    )


def signature_message(row: Row[Any]) -> evidence_pb2.CustodySignature:
    return evidence_pb2.CustodySignature(
        id=row.id,
        client_id=row.client_id,
        signed_at=to_timestamp(row.signed_at),
        document=row.document,
        signature=row.signature,
        public_key=row.public_key,
    )
