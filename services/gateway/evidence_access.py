"""Who may act on one evidence item: reads it from evidence with the caller's widest scope
(incident_access.read_scope), then checks the permission table on its client and, for
participant-only actions, on its incident. An item the caller may not see is a 404 that names
only the item."""

from __future__ import annotations

from typing import Annotated

import grpc
from fastapi import Depends

from firebreak.api.evidence.v1 import evidence_pb2
from firebreak.keyset_pages import ID
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import Caller
from services.gateway.incident_access import incident_for, only_as_participant, read_scope
from services.gateway.permissions import Action, Principal, authorize
from services.gateway.problems import Problem


def evidence_not_found(evidence_id: str) -> Problem:
    return Problem(404, f"evidence {evidence_id} not found")


async def evidence_id_path(evidence_id: str) -> str:
    if not ID.fullmatch(evidence_id):
        raise evidence_not_found(evidence_id)
    return evidence_id


EvidenceId = Annotated[str, Depends(evidence_id_path)]


async def staff_only(caller: Caller, evidence_id: EvidenceId) -> None:
    """Custody commands are the firm's: a client's key gets the 404 of a missing item before
    its body is even validated."""
    if not caller.is_staff:
        raise evidence_not_found(evidence_id)


async def record_for(
    services: Backends,
    caller: Principal,
    evidence_id: str,
    action: Action,
    *,
    with_custody: bool = False,
) -> evidence_pb2.EvidenceRecord:
    """The item if `caller` may do `action` on it; the same 404 as a missing one if the caller
    may not see it."""
    try:
        record: evidence_pb2.EvidenceRecord = await services.evidence.GetEvidence(
            evidence_pb2.GetEvidenceRequest(
                evidence_id=evidence_id, with_custody=with_custody, **read_scope(caller)
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            raise evidence_not_found(evidence_id) from None
        raise
    item = record.item
    if not caller.can_see_client(item.client_id):
        raise evidence_not_found(evidence_id)
    try:
        if only_as_participant(caller, action):
            await incident_for(services, caller, item.incident_id, action)
        else:
            authorize(caller, action, client_id=item.client_id, incident_id=item.incident_id)
    except Problem as problem:
        if problem.status == 404:
            raise evidence_not_found(evidence_id) from None
        raise
    return record


def item_ref(item: evidence_pb2.EvidenceItem, caller: Principal) -> evidence_pb2.ItemRef:
    return evidence_pb2.ItemRef(
        client_id=item.client_id, evidence_id=item.id, actor=caller.as_actor()
    )
