"""Review's gRPC API for the post-incident review, closure and follow-up reporting (issue 11,
§3-§5): a part of ReviewServicer (server.py), which it is mixed into. The gateway has checked who
may; writes name the incident's own client, reads are scoped as every read is."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.review.v1 import review_pb2
from firebreak.database import reading
from firebreak.errors import Conflict, InvalidArgument
from firebreak.events import from_timestamp
from firebreak.outbox import Outbox
from firebreak.tenancy import client_scope
from services.review import client_reports, closure_gates, metrics, pdf_documents, pir
from services.review.documents import Document, markdown
from services.review.review_document import review_document

FORMATS = {"markdown": "text/markdown; charset=utf-8", "pdf": "application/pdf"}


def _written_client(ref: review_pb2.IncidentRef) -> str:
    if not ref.client_id:
        raise InvalidArgument("client_id", "a write names the incident's client")
    return ref.client_id


def _version(request: Any) -> int | None:
    return request.expected_version if request.HasField("expected_version") else None


def rendered(document: Document, format: str) -> review_pb2.Document:
    if format not in FORMATS:
        raise InvalidArgument("format", f"must be one of {', '.join(FORMATS)}")
    if format == "pdf":
        content = pdf_documents.pdf(document)
        filename = f"{document.filename}.pdf"
    else:
        content = markdown(document).encode()
        filename = f"{document.filename}.md"
    return review_pb2.Document(media_type=FORMATS[format], filename=filename, content=content)


class PirAndReportsServicer:
    """The PIR, closure and report RPCs of ReviewServicer."""

    _engine: AsyncEngine
    _outbox: Outbox
    _closure: closure_gates.ClosurePolicy
    _firm_name: str

    # --- the post-incident review ---------------------------------------------------------

    async def DraftReview(
        self, request: review_pb2.DraftReviewRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.PostIncidentReview:
        try:
            async with self._outbox.transaction() as connection:
                return await pir.draft_review(
                    connection,
                    outbox=self._outbox,
                    incident_id=request.incident.incident_id,
                    client_id=_written_client(request.incident),
                    actor=request.actor,
                    state=request.state,
                    expected_version=_version(request),
                    now=datetime.now(UTC),
                )
        except IntegrityError:
            raise Conflict("the review was drafted by someone else a moment ago; read it") from None

    async def GetReview(
        self, request: review_pb2.IncidentRef, context: grpc.aio.ServicerContext
    ) -> review_pb2.PostIncidentReview:
        async with reading(self._engine) as connection:
            return await pir.get_review(
                connection, client_id=client_scope(request), incident_id=request.incident_id
            )

    async def EditReview(
        self, request: review_pb2.EditReviewRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.PostIncidentReview:
        narrative = pir.Narrative(
            **{
                field: getattr(request, field)
                for field in pir.NARRATIVE
                if request.HasField(field)  # type: ignore[arg-type]
            }
        )
        async with self._outbox.transaction() as connection:
            return await pir.edit_review(
                connection,
                outbox=self._outbox,
                incident_id=request.incident.incident_id,
                client_id=_written_client(request.incident),
                actor=request.actor,
                narrative=narrative,
                expected_version=_version(request),
                now=datetime.now(UTC),
            )

    async def SignReview(
        self, request: review_pb2.SignReviewRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.PostIncidentReview:
        try:
            async with self._outbox.transaction() as connection:
                return await pir.sign_review(
                    connection,
                    outbox=self._outbox,
                    incident_id=request.incident.incident_id,
                    client_id=_written_client(request.incident),
                    actor=request.actor,
                    capacity=request.capacity,
                    expected_version=_version(request),
                    now=datetime.now(UTC),
                )
        except IntegrityError:
            raise Conflict(f"{request.actor.name} signed this version already") from None

    async def RenderReview(
        self, request: review_pb2.RenderRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.Document:
        async with reading(self._engine) as connection:
            review = await pir.get_review(
                connection,
                client_id=client_scope(request.incident),
                incident_id=request.incident.incident_id,
            )
        document = review_document(review, firm=self._firm_name, client_name=request.client_name)
        return rendered(document, request.format)

    # --- closure ----------------------------------------------------------------------------

    async def CheckClosure(
        self, request: review_pb2.CheckClosureRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.ClosureCheck:
        async with reading(self._engine) as connection:
            gates, unmet = await closure_gates.check_closure(
                connection,
                policy=self._closure,
                client_id=_written_client(request.incident),
                incident_id=request.incident.incident_id,
                state=request.state,
            )
        return review_pb2.ClosureCheck(
            gates=gates,
            unmet=[
                review_pb2.UnmetGate(gate=item.gate, reason=item.reason, items=item.items)
                for item in unmet
            ],
        )

    # --- follow-up reporting ----------------------------------------------------------------

    async def RenderClientReport(
        self, request: review_pb2.RenderRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.Document:
        async with reading(self._engine) as connection:
            document = await client_reports.client_report(
                connection,
                client_id=client_scope(request.incident),
                incident_id=request.incident.incident_id,
                firm=self._firm_name,
                client_name=request.client_name,
                now=datetime.now(UTC),
            )
        return rendered(document, request.format)

    async def GetMetrics(
        self, request: review_pb2.MetricsRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.Metrics:
        selection = metrics.Filter(
            client_ids=None if request.all_clients else list(request.client_ids),
            start=from_timestamp(getattr(request, "from")) if request.HasField("from") else None,
            end=from_timestamp(request.to) if request.HasField("to") else None,
            priority=request.priority,
            type=request.type,
        )
        async with reading(self._engine) as connection:
            return await metrics.metrics(connection, selection=selection, now=datetime.now(UTC))

    async def RenderClientSummary(
        self, request: review_pb2.ClientSummaryRequest, context: grpc.aio.ServicerContext
    ) -> review_pb2.Document:
        if not request.client_id:
            raise InvalidArgument("client_id", "is required")
        async with reading(self._engine) as connection:
            document = await client_reports.monthly_summary(
                connection,
                client_id=request.client_id,
                client_name=request.client_name,
                month=request.month,
                firm=self._firm_name,
                now=datetime.now(UTC),
            )
        return rendered(document, request.format or "pdf")
