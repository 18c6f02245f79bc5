"""The attachments of reports by email (issue 14 §5), which intake keeps with the incident the
mail opened or counted on (each also collected as an evidence item: mail_evidence.py): listed
and downloaded by whoever may read the incident, as its alerts are. The content is served as
application/octet-stream whatever the sender declared, so a browser neither sniffs nor renders
it."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

import grpc
from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from firebreak.api.intake.v1 import intake_pb2
from firebreak.events import from_timestamp
from firebreak.keyset_pages import ID
from services.gateway import alert_schemas
from services.gateway.backends import RPC_TIMEOUT_SECONDS
from services.gateway.dependencies import IncidentId, Services, require
from services.gateway.permissions import Action, Principal
from services.gateway.problems import Problem
from services.gateway.routers.incidents import read_incident

router = APIRouter(tags=["incidents"])

PATH = "/v1/incidents/{incident_id}/attachments"
Reader = Annotated[Principal, Depends(require(Action.INCIDENT_READ))]


async def attachment_id_path(attachment_id: str) -> str:
    if not ID.fullmatch(attachment_id):
        raise Problem(404, "Not found.")
    return attachment_id


AttachmentId = Annotated[str, Depends(attachment_id_path)]


def _attachment(item: intake_pb2.ReportAttachment) -> alert_schemas.ReportAttachment:
    return alert_schemas.ReportAttachment(
        id=item.id,
        filename=item.filename,
        content_type=item.content_type,
        size_bytes=item.size_bytes,
        sha256=item.sha256,
        sender=item.sender,
        message_id=item.message_id,
        received_at=from_timestamp(item.received_at),
        evidence_id=item.evidence_id or None,
    )


@router.get(PATH, response_model=alert_schemas.ReportAttachmentList)
async def list_attachments(
    caller: Reader, incident_id: IncidentId, services: Services
) -> alert_schemas.ReportAttachmentList:
    """The files attached to the emails that reported the incident (or counted on it), oldest
    first; each file once, however often it was sent."""
    incident = await read_incident(services, caller, incident_id)
    answer = await services.intake.ListReportAttachments(
        intake_pb2.ReportAttachmentsRequest(incident_id=incident_id, client_id=incident.client_id),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return alert_schemas.ReportAttachmentList(
        items=[_attachment(item) for item in answer.attachments]
    )


@router.get(
    PATH + "/{attachment_id}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_attachment(
    caller: Reader, incident_id: IncidentId, attachment_id: AttachmentId, services: Services
) -> StreamingResponse:
    """The attachment as it was sent, with its SHA-256 in Repr-Digest."""
    incident = await read_incident(services, caller, incident_id)
    call = services.intake.ReadReportAttachment(
        intake_pb2.ReadReportAttachmentRequest(
            incident_id=incident_id, client_id=incident.client_id, attachment_id=attachment_id
        )
    )
    first = await call.read()  # NOT_FOUND: the problem handler's 404
    if first is grpc.aio.EOF or first.WhichOneof("part") != "header":
        call.cancel()
        raise Problem(502, "A backing service failed.")
    header = first.header

    async def content() -> AsyncIterator[bytes]:
        try:
            while (piece := await call.read()) is not grpc.aio.EOF:
                yield piece.chunk
        finally:
            call.cancel()  # the client went away: stop reading

    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", header.filename) or "attachment"
    disposition = (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(header.filename, safe='')}"
    )
    return StreamingResponse(
        content(),
        media_type="application/octet-stream",  # never the declared type: no sniffing, no XSS
        headers={
            "Content-Length": str(header.size_bytes),
            "Content-Disposition": disposition,
            "Repr-Digest": f"sha-256=:{_b64(header.sha256)}:",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()
