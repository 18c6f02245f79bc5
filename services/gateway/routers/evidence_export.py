"""An incident's evidence for use outside the firm: the export (a ZIP that verifies offline,
written by evidence and streamed through as it comes) and the chain-of-custody report (JSON,
or PDF by Accept) for a court bundle.

Both carry whole custody logs, the firm's internal record: staff inside the wall only
(evidence_export). A client reads its items and their client-safe part of the logs over the
other routes; the firm hands an export to whoever needs one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

import grpc
from fastapi import APIRouter, Header, Response
from fastapi.responses import StreamingResponse

from firebreak.api.evidence.v1 import evidence_pb2
from services.gateway import custody_report
from services.gateway import evidence_view as view
from services.gateway.backends import RPC_TIMEOUT_SECONDS
from services.gateway.dependencies import Caller, IncidentId, Services
from services.gateway.document_responses import JSON, PDF, client_name, negotiate
from services.gateway.incident_access import incident_for
from services.gateway.permissions import Action
from services.gateway.problems import Problem
from services.gateway.schemas import Actor

router = APIRouter(tags=["evidence"])


@router.get(
    "/v1/incidents/{incident_id}/evidence/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
async def export_evidence(
    incident_id: IncidentId, caller: Caller, services: Services
) -> StreamingResponse:
    """The incident's evidence as one ZIP: each item's content, its custody log, the signatures
    of the chain heads, the public key and a signed manifest (docs/architecture.md, "Evidence
    export"); `firebreak evidence verify` checks it offline. Each item's content read into it is
    recorded in its custody log as an access; sealed and disposed items come without content."""
    incident = await incident_for(services, caller, incident_id, Action.EVIDENCE_EXPORT)
    call = services.evidence.ExportEvidence(
        evidence_pb2.ExportRequest(
            client_id=incident.client_id, incident_id=incident_id, actor=caller.as_actor()
        )
    )
    first = await call.read()  # evidence's refusals arrive here, before any byte is sent
    if first is grpc.aio.EOF or first.WhichOneof("part") != "header":
        call.cancel()
        raise Problem(502, "A backing service failed.")

    async def archive() -> AsyncIterator[bytes]:
        try:
            while (piece := await call.read()) is not grpc.aio.EOF:
                yield piece.chunk
        finally:
            call.cancel()  # the client went away, or evidence failed: stop the export

    return StreamingResponse(
        archive(),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="evidence-{incident_id}.zip"',
            "X-Export-Id": first.header.export_id,
        },
    )


@router.get(
    "/v1/incidents/{incident_id}/evidence/custody-report",
    response_model=custody_report.CustodyReport,
    responses={200: {"content": {PDF: {}}, "description": "JSON, or PDF by the Accept header"}},
)
async def get_custody_report(
    incident_id: IncidentId,
    caller: Caller,
    services: Services,
    accept: Annotated[str | None, Header()] = None,
) -> custody_report.CustodyReport | Response:
    """Every item of the incident with its hashes and its whole custody log: JSON, or
    `Accept: application/pdf` for the document (a cover page, then a page per item)."""
    incident = await incident_for(services, caller, incident_id, Action.EVIDENCE_EXPORT)
    wanted = negotiate(accept, (JSON, PDF))
    listed = await services.evidence.ListEvidence(
        evidence_pb2.ListEvidenceRequest(client_id=incident.client_id, incident_id=incident_id),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    records = []
    for item in listed.items:
        record = await services.evidence.GetEvidence(
            evidence_pb2.GetEvidenceRequest(
                client_id=incident.client_id, evidence_id=item.id, with_custody=True
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
        records.append(view.record_view(record, caller))
    actor = caller.as_actor()
    report = custody_report.CustodyReport(
        incident_id=incident_id,
        client_id=incident.client_id,
        client_name=await client_name(services.engine, incident.client_id),
        generated_at=datetime.now(UTC),
        generated_by=Actor(id=actor.id, kind=actor.kind, name=actor.name),
        items=records,
    )
    if wanted == "json":
        return report
    return Response(
        custody_report.pdf(report),
        media_type=PDF,
        headers={"Content-Disposition": f'inline; filename="custody-{incident_id}.pdf"'},
    )
