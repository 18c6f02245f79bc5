"""An evidence item's content over HTTP: submitting it (the request body is the item, streamed
to evidence as it arrives, over gRPC client streaming) and downloading it (streamed back from
evidence, decrypted chunk by chunk, and recorded in its custody log). Nothing holds an item
whole, whatever its size."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import AsyncIterator
from typing import Annotated
from urllib.parse import quote

import grpc
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from firebreak.api.evidence.v1 import evidence_pb2
from firebreak.errors import InvalidArgument
from firebreak.events import to_timestamp
from services.gateway import evidence_view as view
from services.gateway.dependencies import Caller, IncidentId, Services
from services.gateway.evidence_access import EvidenceId, item_ref, record_for
from services.gateway.evidence_view import Acquisition
from services.gateway.incident_access import incident_for
from services.gateway.permissions import Action
from services.gateway.plain_text import MultiLine, SingleLine
from services.gateway.problems import Problem

router = APIRouter(tags=["evidence"])

# The route whose body is the item itself: the body-size middleware lets it through, and it
# streams the body to evidence (which enforces FIREBREAK_EVIDENCE_MAX_BYTES) as it arrives.
STREAMED_UPLOAD = re.compile(r"/v1/incidents/[^/]+/evidence")
# Pieces of the body are gathered into gRPC messages of about this size.
UPLOAD_MESSAGE_BYTES = 512 * 1024
DIGEST_BYTES = {"sha-256": 32, "sha-512": 64}
DIGEST_MEMBER = re.compile(r"\s*([a-z][a-z0-9_.*-]*)\s*=\s*:([A-Za-z0-9+/]*={0,2}):\s*")


def parse_repr_digest(header: str | None) -> dict[str, str]:
    """The hex digests a Repr-Digest header (RFC 9530) gives, by algorithm; algorithms other
    than sha-256 and sha-512 are ignored, as the RFC says."""
    if header is None:
        return {}
    digests: dict[str, str] = {}
    for member in header.split(","):
        found = DIGEST_MEMBER.fullmatch(member)
        if found is None:
            raise InvalidArgument(
                "Repr-Digest", "must be a dictionary such as sha-256=:<base64 of the digest>:"
            )
        algorithm, encoded = found.groups()
        if algorithm not in DIGEST_BYTES:
            continue
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) != DIGEST_BYTES[algorithm]:
            raise InvalidArgument(
                "Repr-Digest", f"{algorithm} must be base64 of {DIGEST_BYTES[algorithm]} bytes"
            )
        digests[algorithm] = raw.hex()
    return digests


class _Body:
    """The request body as upload messages: the metadata first, then the content in pieces of
    about UPLOAD_MESSAGE_BYTES. Remembers whether the body broke off (the client went away)."""

    def __init__(self, request: Request, metadata: evidence_pb2.ItemMetadata) -> None:
        self._request = request
        self._metadata = metadata
        self.broke_off = False

    async def messages(self) -> AsyncIterator[evidence_pb2.CollectEvidenceRequest]:
        yield evidence_pb2.CollectEvidenceRequest(metadata=self._metadata)
        pending = bytearray()
        try:
            async for piece in self._request.stream():
                pending += piece
                if len(pending) >= UPLOAD_MESSAGE_BYTES:
                    yield evidence_pb2.CollectEvidenceRequest(chunk=bytes(pending))
                    pending.clear()
        except Exception:
            # gRPC cancels the upload when its request iterator raises: nothing is kept.
            self.broke_off = True
            raise
        if pending:
            yield evidence_pb2.CollectEvidenceRequest(chunk=bytes(pending))


@router.post(
    "/v1/incidents/{incident_id}/evidence",
    status_code=201,
    response_model=view.EvidenceRecord,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The item itself, any content type, streamed.",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def submit_evidence(
    request: Request,
    response: Response,
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    filename: Annotated[str, Query(min_length=1, max_length=255), SingleLine],
    description: Annotated[str, Query(max_length=20_000), MultiLine] = "",
    source: Annotated[
        str, Query(max_length=1000, description="host, path, device, person"), SingleLine
    ] = "",
    collected_at: Annotated[
        AwareDatetime | None, Query(description="When it was collected; default: now.")
    ] = None,
    acquisition: Acquisition = "copy",
    content_type: Annotated[str | None, Header(max_length=255)] = None,
    content_length: Annotated[int | None, Header(ge=0)] = None,
    repr_digest: Annotated[
        str | None, Header(description="RFC 9530, e.g. sha-256=:<base64>:; checked, 422 if not")
    ] = None,
) -> view.EvidenceRecord:
    """Submits an item: the body is the item; nothing is kept unless all of it arrived within
    the size limit and matched the Repr-Digest sent."""
    incident = await incident_for(services, caller, incident_id, Action.EVIDENCE_ADD)
    if (content_type or "").lower().startswith("multipart/"):
        # Kept as sent, a form's envelope would become part of the evidence and its digest.
        raise Problem(
            415,
            "Send the item itself as the body (any content type but multipart); nothing was kept.",
        )
    digests = parse_repr_digest(repr_digest)
    limit: int = request.app.state.evidence_max_bytes
    if content_length is not None and content_length > limit:
        raise Problem(413, f"The item exceeds the limit of {limit} bytes; nothing was kept.")
    metadata = evidence_pb2.ItemMetadata(
        client_id=incident.client_id,
        incident_id=incident_id,
        filename=filename,
        description=description,
        source=source,
        acquisition=acquisition,
        content_type=content_type or "",
        collector=caller.as_actor(),
        expected_sha256=digests.get("sha-256", ""),
        expected_sha512=digests.get("sha-512", ""),
        incident_confirmed=True,  # triage has it, of this client (incident_for)
    )
    if collected_at is not None:
        metadata.collected_at.CopyFrom(to_timestamp(collected_at))
    body = _Body(request, metadata)
    try:
        # No deadline: a large item takes as long as its client takes to send it.
        record = await services.evidence.CollectEvidence(body.messages())
    except asyncio.CancelledError:
        if body.broke_off:
            raise Problem(400, "The request body broke off; nothing was kept.") from None
        raise
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise Problem(413, f"{error.details()}.") from None
        raise
    response.headers["Location"] = f"/v1/evidence/{record.item.id}"
    return view.record_view(record, caller)


def _content_disposition(filename: str) -> str:
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", filename) or "evidence"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


@router.get(
    "/v1/evidence/{evidence_id}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_evidence(
    evidence_id: EvidenceId, caller: Caller, services: Services
) -> StreamingResponse:
    """The item's content, decrypted as it streams, with its Repr-Digest; recorded in its
    custody log as an access. Refused (409) while it is sealed, and once it was disposed of."""
    item = (await record_for(services, caller, evidence_id, Action.EVIDENCE_READ)).item
    call = services.evidence.ReadContent(
        evidence_pb2.ReadContentRequest(item=item_ref(item, caller))
    )
    first = await call.read()
    if first is grpc.aio.EOF or first.WhichOneof("part") != "header":
        call.cancel()
        raise Problem(502, "A backing service failed.")
    header = first.header

    async def content() -> AsyncIterator[bytes]:
        try:
            while (piece := await call.read()) is not grpc.aio.EOF:
                yield piece.chunk
        finally:
            call.cancel()  # the client went away, or a chunk failed: stop reading

    return StreamingResponse(
        content(),
        media_type="application/octet-stream",  # never the submitted type: no sniffing, no XSS
        headers={
            "Content-Length": str(header.size_bytes),
            "Content-Disposition": _content_disposition(header.filename),
            "Repr-Digest": f"sha-256=:{_b64(header.sha256)}:, sha-512=:{_b64(header.sha512)}:",
            "X-Content-Type-Options": "nosniff",
        },
    )
