"""Intake's gRPC methods for the attachments of reports by email, part of IntakeService. Each
request names the incident and its client (the scope check holds the client to the caller's
token); an attachment of another incident is as absent as one that does not exist."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.intake.v1 import intake_pb2
from firebreak.database import reading
from firebreak.errors import NotFound
from firebreak.events import to_timestamp
from services.intake.models import report_attachments

CHUNK_BYTES = 256 * 1024  # a gRPC message stays far below its 4 MiB limit
LISTED = [column for column in report_attachments.c if column.name != "content"]


class AttachmentMethods:
    """The attachment RPCs; IntakeServicer provides the engine."""

    _engine: AsyncEngine

    async def ListReportAttachments(
        self, request: intake_pb2.ReportAttachmentsRequest, context: grpc.aio.ServicerContext
    ) -> intake_pb2.ReportAttachmentList:
        query = (
            select(*LISTED)
            .where(
                report_attachments.c.incident_id == request.incident_id,
                report_attachments.c.client_id == request.client_id,
            )
            .order_by(report_attachments.c.received_at, report_attachments.c.id)
            .limit(200)
        )
        async with reading(self._engine) as connection:
            rows = (await connection.execute(query)).all()
        return intake_pb2.ReportAttachmentList(attachments=[attachment_message(r) for r in rows])

    async def ReadReportAttachment(
        self, request: intake_pb2.ReadReportAttachmentRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[intake_pb2.ReportAttachmentPiece]:
        query = select(report_attachments).where(
            report_attachments.c.id == request.attachment_id,
            report_attachments.c.incident_id == request.incident_id,
            report_attachments.c.client_id == request.client_id,
        )
        async with reading(self._engine) as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            raise NotFound(f"attachment {request.attachment_id} not found")
        yield intake_pb2.ReportAttachmentPiece(header=attachment_message(row))
        content: bytes = row.content
        for start in range(0, len(content), CHUNK_BYTES):
            yield intake_pb2.ReportAttachmentPiece(chunk=content[start : start + CHUNK_BYTES])


def attachment_message(row: Row[Any]) -> intake_pb2.ReportAttachment:
    return intake_pb2.ReportAttachment(
        id=row.id,
        incident_id=row.incident_id,
        client_id=row.client_id,
        filename=row.filename,
        content_type=row.content_type,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        sender=row.sender,
        message_id=row.message_id,
        received_at=to_timestamp(row.received_at),
        evidence_id=row.evidence_id or "",
    )
