"""Evidence records and custody over HTTP: listing and reading items with their custody logs
(a client's key: the client-safe part), transfers and their receipt, seals, legal hold,
disposal and verification. Another client's item, or one outside the caller's wall, is a 404.
The content itself: routers/evidence_content.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query

from firebreak.api.evidence.v1 import evidence_pb2
from firebreak.api.intake.v1 import intake_pb2
from firebreak.keyset_pages import ID
from services.gateway import evidence_view as view
from services.gateway.backends import CONTENT_RPC_TIMEOUT_SECONDS, RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import Caller, IncidentId, Services
from services.gateway.evidence_access import EvidenceId, item_ref, record_for, staff_only
from services.gateway.incident_access import read_scope
from services.gateway.permissions import Action, Principal, authorize
from services.gateway.plain_text import SingleLine
from services.gateway.problems import Problem
from services.gateway.role_holders import role_holder

router = APIRouter(tags=["evidence"])


async def transfer_id_path(transfer_id: str) -> str:
    if not ID.fullmatch(transfer_id):
        raise Problem(404, f"transfer {transfer_id} not found")
    return transfer_id


TransferId = Annotated[str, Depends(transfer_id_path)]


@router.get("/v1/incidents/{incident_id}/evidence", response_model=view.EvidenceList)
async def list_evidence(
    incident_id: IncidentId, caller: Caller, services: Services
) -> view.EvidenceList:
    """The incident's items, oldest first, without their custody logs."""
    incident = await services.intake.GetIncident(
        intake_pb2.GetIncidentRequest(incident_id=incident_id, **read_scope(caller)),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    authorize(caller, Action.EVIDENCE_READ, client_id=incident.client_id, incident_id=incident_id)
    listed = await services.evidence.ListEvidence(
        evidence_pb2.ListEvidenceRequest(client_id=incident.client_id, incident_id=incident_id),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return view.EvidenceList(items=[view.item_view(item, caller) for item in listed.items])


@router.get("/v1/evidence/{evidence_id}", response_model=view.EvidenceRecord)
async def get_evidence(
    evidence_id: EvidenceId, caller: Caller, services: Services
) -> view.EvidenceRecord:
    """The item and its custody log (a client: the client-safe part)."""
    record = await record_for(
        services, caller, evidence_id, Action.EVIDENCE_READ, with_custody=True
    )
    return view.record_view(record, caller)


@router.post(
    "/v1/evidence/{evidence_id}/transfers",
    status_code=201,
    response_model=view.Transfer,
    response_model_by_alias=True,
    dependencies=[Depends(staff_only)],
)
async def transfer_evidence(
    body: view.NewTransfer, evidence_id: EvidenceId, caller: Caller, services: Services
) -> view.Transfer:
    """Releases the item from its holder to another member of staff, who confirms receipt."""
    item = (await record_for(services, caller, evidence_id, Action.EVIDENCE_CUSTODY)).item
    receiver = await role_holder(services.engine, body.to, client_id=item.client_id, field="to")
    transfer = await services.evidence.TransferEvidence(
        evidence_pb2.TransferRequest(
            item=item_ref(item, caller),
            receiver=receiver,
            purpose=body.purpose,
            location=body.location,
        ),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return view.transfer_body(transfer)


@router.post(
    "/v1/evidence/{evidence_id}/transfers/{transfer_id}/receipt",
    response_model=view.Transfer,
    response_model_by_alias=True,
    dependencies=[Depends(staff_only)],
)
async def confirm_receipt(
    evidence_id: EvidenceId,
    transfer_id: TransferId,
    caller: Caller,
    services: Services,
    body: Annotated[view.Receipt | None, Body()] = None,
) -> view.Transfer:
    """The receiver named by the transfer confirms it; the content is re-hashed now."""
    item = (await record_for(services, caller, evidence_id, Action.EVIDENCE_READ)).item
    transfer = await services.evidence.ConfirmReceipt(
        evidence_pb2.ReceiptRequest(
            item=item_ref(item, caller),
            transfer_id=transfer_id,
            location=body.location if body is not None else "",
        ),
        timeout=CONTENT_RPC_TIMEOUT_SECONDS,
    )
    return view.transfer_body(transfer)


async def _seal(
    services: Backends, caller: Principal, evidence_id: str, *, sealed: bool, reason: str
) -> view.EvidenceRecord:
    item = (await record_for(services, caller, evidence_id, Action.EVIDENCE_CUSTODY)).item
    record = await services.evidence.SealEvidence(
        evidence_pb2.SealRequest(item=item_ref(item, caller), sealed=sealed, reason=reason),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return view.record_view(record, caller)


@router.post(
    "/v1/evidence/{evidence_id}/seal",
    response_model=view.EvidenceRecord,
    dependencies=[Depends(staff_only)],
)
async def seal_evidence(
    evidence_id: EvidenceId,
    caller: Caller,
    services: Services,
    body: Annotated[view.SealChange | None, Body()] = None,
) -> view.EvidenceRecord:
    """Seals the item: no download until it is unsealed."""
    reason = body.reason if body is not None else ""
    return await _seal(services, caller, evidence_id, sealed=True, reason=reason)


@router.post(
    "/v1/evidence/{evidence_id}/unseal",
    response_model=view.EvidenceRecord,
    dependencies=[Depends(staff_only)],
)
async def unseal_evidence(
    evidence_id: EvidenceId,
    caller: Caller,
    services: Services,
    body: Annotated[view.SealChange | None, Body()] = None,
) -> view.EvidenceRecord:
    reason = body.reason if body is not None else ""
    return await _seal(services, caller, evidence_id, sealed=False, reason=reason)


@router.post(
    "/v1/evidence/{evidence_id}/legal-hold",
    response_model=view.EvidenceRecord,
    dependencies=[Depends(staff_only)],
)
async def set_legal_hold(
    body: view.LegalHoldChange, evidence_id: EvidenceId, caller: Caller, services: Services
) -> view.EvidenceRecord:
    """Sets (`held: true`) or releases the legal hold; held, the item cannot be disposed of."""
    item = (await record_for(services, caller, evidence_id, Action.EVIDENCE_HOLD)).item
    record = await services.evidence.SetLegalHold(
        evidence_pb2.LegalHoldRequest(
            item=item_ref(item, caller), held=body.held, reason=body.reason
        ),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return view.record_view(record, caller)


@router.delete(
    "/v1/evidence/{evidence_id}",
    response_model=view.EvidenceRecord,
    dependencies=[Depends(staff_only)],
)
async def dispose_of_evidence(
    evidence_id: EvidenceId,
    caller: Caller,
    services: Services,
    authorised_by: Annotated[
        str,
        Query(
            min_length=1,
            max_length=1000,
            description="Who authorised the disposal, and how (e.g. the client's letter).",
        ),
        SingleLine,
    ],
    method: Annotated[str, Query(pattern=r"^(destroyed|returned)$")] = "destroyed",
) -> view.EvidenceRecord:
    """Disposes of the item: 409 under legal hold or while its incident is open. The record
    and custody log remain; the content goes when no other item holds the same bytes."""
    item = (await record_for(services, caller, evidence_id, Action.EVIDENCE_HOLD)).item
    record = await services.evidence.DisposeEvidence(
        evidence_pb2.DisposeRequest(
            item=item_ref(item, caller), method=method, authorised_by=authorised_by
        ),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return view.record_view(record, caller)


@router.post(
    "/v1/evidence/{evidence_id}/verify",
    response_model=view.Verification,
    dependencies=[Depends(staff_only)],
)
async def verify_evidence(
    evidence_id: EvidenceId, caller: Caller, services: Services
) -> view.Verification:
    """Reads the content back, re-hashes it and re-chains the custody log: `intact`, or
    `tampered` with what differs (and an evidence.integrity_failed event)."""
    item = (await record_for(services, caller, evidence_id, Action.EVIDENCE_CUSTODY)).item
    verification = await services.evidence.VerifyEvidence(
        evidence_pb2.VerifyRequest(item=item_ref(item, caller)),
        timeout=CONTENT_RPC_TIMEOUT_SECONDS,
    )
    return view.verification_view(verification)
