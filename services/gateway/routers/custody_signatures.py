"""The signatures of a client's custody chain heads (issue 10, §3): evidence signs them daily by
itself; a manager or admin signs them now, before an export for a court bundle or after a
transfer, and lists those kept. A client outside the caller's wall is as absent as one that does
not exist."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from firebreak.api.evidence.v1 import evidence_pb2
from firebreak.database import reading
from firebreak.events import from_timestamp
from services.gateway import clients
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import Caller, ClientId, Services
from services.gateway.permissions import Action, Principal, authorize
from services.gateway.problems import Problem

router = APIRouter(tags=["evidence"])

PATH = "/v1/clients/{client_id}/custody-signatures"


class CustodySignature(BaseModel):
    id: str
    client_id: str
    signed_at: str
    document: str  # canonical JSON of the client's chain heads (docs/architecture.md)
    signature: str  # Ed25519 over `document`, base64
    public_key: str


class CustodySignatureList(BaseModel):
    items: list[CustodySignature]


def signature_body(signature: evidence_pb2.CustodySignature) -> CustodySignature:
    return CustodySignature(
        id=signature.id,
        client_id=signature.client_id,
        signed_at=from_timestamp(signature.signed_at).isoformat(),
        document=signature.document,
        signature=signature.signature,
        public_key=signature.public_key,
    )


async def _check_client(services: Backends, caller: Principal, client_id: str) -> None:
    authorize(caller, Action.EVIDENCE_HOLD, client_id=client_id)
    async with reading(services.engine) as connection:
        if not await clients.client_exists(connection, client_id):
            raise Problem(404, f"client {client_id} not found")


@router.post(PATH, status_code=201, response_model=CustodySignature)
async def sign_custody_heads(
    caller: Caller, client_id: ClientId, services: Services
) -> CustodySignature:
    """Signs the heads of every custody chain of the client now, and keeps the signature."""
    await _check_client(services, caller, client_id)
    signature = await services.evidence.SignCustodyHeads(
        evidence_pb2.SignCustodyHeadsRequest(client_id=client_id), timeout=RPC_TIMEOUT_SECONDS
    )
    return signature_body(signature)


@router.get(PATH, response_model=CustodySignatureList)
async def list_custody_signatures(
    caller: Caller, client_id: ClientId, services: Services
) -> CustodySignatureList:
    """Every signature kept of the client's chain heads, as evidence lists them."""
    await _check_client(services, caller, client_id)
    listed = await services.evidence.ListCustodySignatures(
        evidence_pb2.ListCustodySignaturesRequest(client_id=client_id),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return CustodySignatureList(items=[signature_body(item) for item in listed.signatures])
