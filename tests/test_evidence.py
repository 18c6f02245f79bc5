"""Evidence over real gRPC: bytes in, SHA-256 and size fixed at collection, and on the timeline."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from firebreak.api.evidence.v1 import evidence_pb2, evidence_pb2_grpc
from firebreak.grpc_server import FIELD_METADATA_KEY
from tests.gateway_client import Api, eventually


@pytest.fixture
def evidence(api: Api) -> Iterator[evidence_pb2_grpc.EvidenceServiceStub]:
    address = f"127.0.0.1:{api.platform.grpc_ports['evidence']}"
    with grpc.insecure_channel(address) as channel:
        yield evidence_pb2_grpc.EvidenceServiceStub(channel)


def store(
    evidence: evidence_pb2_grpc.EvidenceServiceStub, **fields: Any
) -> evidence_pb2.EvidenceItem:
    request: dict[str, Any] = {
        "filename": "auth.log",
        "collected_by": "Grace Hopper",
        "content": b"x",
    } | fields
    return evidence.StoreEvidence(evidence_pb2.StoreEvidenceRequest(**request))


def store_once_known(
    evidence: evidence_pb2_grpc.EvidenceServiceStub, **fields: Any
) -> evidence_pb2.EvidenceItem:
    """Evidence learns of a new incident from incident.reported, a moment after the report."""

    def attempt() -> evidence_pb2.EvidenceItem | None:
        try:
            return store(evidence, **fields)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None

    return eventually(attempt)


def test_stored_evidence_keeps_its_digest_and_reaches_the_timeline(
    api: Api, evidence: evidence_pb2_grpc.EvidenceServiceStub
) -> None:
    tenant = api.new_client()
    incident = api.report(tenant).json()
    content = b"2026-11-26T09:10:02Z sshd[311]: Accepted password for root from 203.0.113.9\n"
    item = store_once_known(
        evidence,
        client_id=tenant.id,
        incident_id=incident["id"],
        description="sshd log from the bastion",
        content=content,
    )
    assert item.sha256 == hashlib.sha256(content).hexdigest()
    assert item.size_bytes == len(content)
    assert item.collected_at.seconds > 0

    again = evidence.GetEvidence(
        evidence_pb2.GetEvidenceRequest(client_id=tenant.id, evidence_id=item.id)
    )
    assert again == item

    def collected() -> list[dict[str, str]]:
        return [
            e for e in api.timeline(api.admin, incident["id"]) if e["type"] == "evidence.collected"
        ]

    entry = eventually(collected)[0]
    assert item.sha256 in entry["summary"]


def test_evidence_is_refused_for_unknown_or_another_clients_incidents(
    api: Api, evidence: evidence_pb2_grpc.EvidenceServiceStub
) -> None:
    owner, other = api.new_client(), api.new_client()
    incident = api.report(owner).json()
    store_once_known(evidence, client_id=owner.id, incident_id=incident["id"])
    for client_id, incident_id in (
        (other.id, incident["id"]),
        (owner.id, "00000000-0000-0000-0000-000000000000"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            store(evidence, client_id=client_id, incident_id=incident_id)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_another_clients_evidence_is_not_found(
    api: Api, evidence: evidence_pb2_grpc.EvidenceServiceStub
) -> None:
    owner, other = api.new_client(), api.new_client()
    incident = api.report(owner).json()
    item = store_once_known(evidence, client_id=owner.id, incident_id=incident["id"])
    with pytest.raises(grpc.RpcError) as caught:
        evidence.GetEvidence(
            evidence_pb2.GetEvidenceRequest(client_id=other.id, evidence_id=item.id)
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"content": b""}, "content"),
        ({"filename": ""}, "filename"),
        ({"incident_id": ""}, "incident_id"),
    ],
)
def test_invalid_evidence_is_rejected_naming_the_field(
    api: Api,
    evidence: evidence_pb2_grpc.EvidenceServiceStub,
    overrides: dict[str, object],
    field: str,
) -> None:
    request: dict[str, Any] = {
        "client_id": "c",
        "incident_id": "i",
        "filename": "f",
        "collected_by": "me",
        "content": b"data",
    } | overrides
    with pytest.raises(grpc.RpcError) as caught:
        evidence.StoreEvidence(evidence_pb2.StoreEvidenceRequest(**request))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (FIELD_METADATA_KEY, field) in caught.value.trailing_metadata()
