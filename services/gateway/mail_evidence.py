"""The attachments of reports by email become evidence items (issue 14 §5).

Intake keeps each attachment with its report and publishes attachment.received in the
transaction that keeps it. Only the gateway may call evidence (its scope tokens are signed with
the key only the gateway holds), so the gateway moves the file: its durable consumer runs
`AttachmentMover` for each event (a remote step, firebreak/consumer.py: no database connection
is held meanwhile), which streams the bytes from intake (`ReadReportAttachment`) into evidence
(`CollectEvidence`) under a scope token of the incident's client alone, collection method
email, the attachment as the source reference. Evidence collects a source once per incident
and refuses content whose SHA-256 is not the one intake took at receipt; a failure is offered
again, and parked as a dead letter when it keeps failing (docs/architecture.md, "Reports by
email").
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import grpc

from firebreak.api.events.v1.events_pb2 import Actor, EventEnvelope
from firebreak.api.evidence.v1 import evidence_pb2
from firebreak.api.evidence.v1.evidence_pb2_grpc import EvidenceServiceStub
from firebreak.api.intake.v1 import intake_pb2
from firebreak.api.intake.v1.intake_pb2_grpc import IntakeServiceStub
from firebreak.consumer import RetryLater
from firebreak.events import ATTACHMENT_SOURCE
from firebreak.grpc_server import FIELD_METADATA_KEY
from firebreak.scope_token import Scope, current_scope

# Each call's deadline: below JetStream's ack wait (30 s), after which another replica would be
# offered the same event. A mail is at most FIREBREAK_INBOUND_MAIL_MAX_BYTES (10 MiB).
CALL_TIMEOUT_SECONDS = 25.0
# Events taken at once; their transfers run one after another, within the ack wait.
BATCH_SIZE = 8
COLLECTOR_NAME_LIMIT = 200  # evidence's collector_name column
# What a service answers while it cannot do the work now: tried again, not counted.
NOT_NOW = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.CANCELLED,
    }
)


class AttachmentNotCollected(Exception):
    """Intake or evidence refused the transfer for a reason another try will not change."""


class AttachmentMover:
    """The remote step of attachment.received."""

    def __init__(self, intake: IntakeServiceStub, evidence: EvidenceServiceStub) -> None:
        self._intake = intake
        self._evidence = evidence

    async def __call__(self, event: EventEnvelope) -> None:
        received = event.attachment_received
        with _acting_for(event.client_id):
            call = self._intake.ReadReportAttachment(
                intake_pb2.ReadReportAttachmentRequest(
                    incident_id=event.incident_id,
                    client_id=event.client_id,
                    attachment_id=received.attachment_id,
                ),
                timeout=CALL_TIMEOUT_SECONDS,
            )
            try:
                await self._transfer(event, call)
            finally:
                call.cancel()  # evidence had it already: the rest is not needed

    async def _transfer(
        self,
        event: EventEnvelope,
        call: grpc.aio.UnaryStreamCall[
            intake_pb2.ReadReportAttachmentRequest, intake_pb2.ReportAttachmentPiece
        ],
    ) -> None:
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as error:
            raise _failure("intake", error) from None
        if first is grpc.aio.EOF or first.WhichOneof("part") != "header":
            raise AttachmentNotCollected("intake's answer did not begin with the attachment")
        content = _Content(call, metadata(event))
        try:
            await self._evidence.CollectEvidence(content.messages(), timeout=CALL_TIMEOUT_SECONDS)
        except asyncio.CancelledError:
            # gRPC cancels the upload when its request iterator raised: intake's stream broke.
            if content.broke_off is None:
                raise
            raise _failure("intake", content.broke_off) from None
        except grpc.aio.AioRpcError as error:
            raise _failure("evidence", error) from None


def metadata(event: EventEnvelope) -> evidence_pb2.ItemMetadata:
    """The evidence item an attachment makes: collected by email, by the integration, from the
    attachment, its content held to the SHA-256 intake took when the mail came."""
    received = event.attachment_received
    mail = f"Message-ID <{received.message_id}>" if received.message_id else "no Message-ID"
    subject = f'"{received.subject}"' if received.subject else "with no subject"
    collector = f"intake, from {received.sender}" + (
        f" (Message-ID <{received.message_id}>)" if received.message_id else ""
    )
    if len(collector) > COLLECTOR_NAME_LIMIT:
        collector = collector[: COLLECTOR_NAME_LIMIT - 1] + "…"
    item = evidence_pb2.ItemMetadata(
        client_id=event.client_id,
        incident_id=event.incident_id,
        filename=received.filename,
        description=(
            f"Attached to the report by email {subject} from {received.sender} ({mail}), "
            f"as {received.filename} ({received.content_type}, {received.size_bytes} bytes)."
        ),
        source=f"email from {received.sender}, {mail}",
        acquisition="copy",
        content_type=received.content_type,
        collector=Actor(id=event.actor.id, kind=event.actor.kind, name=collector),
        expected_sha256=received.sha256,
        collection_method="email",
        source_reference=ATTACHMENT_SOURCE + received.attachment_id,
        incident_confirmed=True,  # intake's event: the incident is the client's
    )
    item.collected_at.CopyFrom(event.occurred_at)  # when intake took the mail
    return item


class _Content:
    """The upload's messages: the metadata, then intake's pieces as they come. Remembers the
    error that broke intake's stream off, if one did."""

    def __init__(
        self,
        call: grpc.aio.UnaryStreamCall[
            intake_pb2.ReadReportAttachmentRequest, intake_pb2.ReportAttachmentPiece
        ],
        item: evidence_pb2.ItemMetadata,
    ) -> None:
        self._call = call
        self._item = item
        self.broke_off: grpc.aio.AioRpcError | None = None

    async def messages(self) -> AsyncIterator[evidence_pb2.CollectEvidenceRequest]:
        yield evidence_pb2.CollectEvidenceRequest(metadata=self._item)
        try:
            while (piece := await self._call.read()) is not grpc.aio.EOF:
                yield evidence_pb2.CollectEvidenceRequest(chunk=piece.chunk)
        except grpc.aio.AioRpcError as error:
            self.broke_off = error
            raise


@contextmanager
def _acting_for(client_id: str) -> Iterator[None]:
    """The calls carry a scope token of the incident's client alone, on no one's behalf."""
    token = current_scope.set(
        Scope(subject="gateway", role="system", clients=frozenset({client_id}))
    )
    try:
        yield
    finally:
        current_scope.reset(token)


def _failure(service: str, error: grpc.aio.AioRpcError) -> Exception:
    """What a service's refusal means for the event: try again later, or not at all."""
    code = error.code()
    field = dict(error.trailing_metadata() or ()).get(FIELD_METADATA_KEY)
    said = f"{service} answered {code.name}: " + (f"{field}: " if field else "") + error.details()
    if code in NOT_NOW:
        return RetryLater(said)
    if service == "evidence" and code == grpc.StatusCode.NOT_FOUND:
        # Intake had the attachment of this client's incident, so evidence has not heard of it
        # yet: an evidence of the release before ignores incident_confirmed, and learns of
        # incidents from the bus.
        return RetryLater(said)
    return AttachmentNotCollected(said)
