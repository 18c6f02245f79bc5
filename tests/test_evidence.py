"""Evidence over real gRPC: content streamed in (metadata first, then pieces), SHA-256, SHA-512
and size fixed at collection, the first custody entry, and the fact on the timeline."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from firebreak.api.events.v1 import events_pb2
from firebreak.api.evidence.v1 import evidence_pb2, evidence_pb2_grpc
from firebreak.grpc_server import FIELD_METADATA_KEY
from tests.gateway_client import Api, eventually
from tests.service_channel import service_channel

COLLECTOR = events_pb2.Actor(id="person-1", kind="responder", name="Grace Hopper")


@pytest.fixture
def evidence(api: Api) -> Iterator[evidence_pb2_grpc.EvidenceServiceStub]:
    with service_channel(api.platform, "evidence") as channel:
        yield evidence_pb2_grpc.EvidenceServiceStub(channel)


def messages(content: bytes, piece: int = 7, **fields: Any) -> list[Any]:
    metadata: dict[str, Any] = {
        "filename": "auth.log",
        "acquisition": "copy",
        "collector": COLLECTOR,
    } | fields
    return [evidence_pb2.CollectEvidenceRequest(metadata=evidence_pb2.ItemMetadata(**metadata))] + [
        evidence_pb2.CollectEvidenceRequest(chunk=content[start : start + piece])
        for start in range(0, len(content), piece)
    ]


def collect(
    evidence: evidence_pb2_grpc.EvidenceServiceStub, content: bytes = b"x", **fields: Any
) -> evidence_pb2.EvidenceRecord:
    return evidence.CollectEvidence(iter(messages(content, **fields)))


def collect_once_known(
    evidence: evidence_pb2_grpc.EvidenceServiceStub, content: bytes = b"x", **fields: Any
) -> evidence_pb2.EvidenceRecord:
    """Unconfirmed by the caller, a new incident is known to evidence once it has read its
    incident.triaged, a moment after the report."""

    def attempt() -> evidence_pb2.EvidenceRecord | None:
        try:
            return collect(evidence, content, **fields)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None

    return eventually(attempt)  # type: ignore[no-any-return]


def test_collected_evidence_keeps_its_digests_and_reaches_the_timeline(
    api: Api, evidence: evidence_pb2_grpc.EvidenceServiceStub
) -> None:
    tenant = api.new_client()
    incident = api.report(tenant).json()
    content = b"2026-11-26T09:10:02Z sshd[311]: Accepted password for root from 203.0.113.9\n"
    collected = collect_once_known(
        evidence,
        content,
        client_id=tenant.id,
        incident_id=incident["id"],
        description="sshd log from the bastion",
        expected_sha256=hashlib.sha256(content).hexdigest(),
    )
    item = collected.item
    assert item.sha256 == hashlib.sha256(content).hexdigest()
    assert item.sha512 == hashlib.sha512(content).hexdigest()
    assert item.size_bytes == len(content)
    assert item.collected_at.seconds > 0
    assert item.holder == COLLECTOR
    assert [entry.kind for entry in collected.custody] == ["collected"]
    assert collected.custody[0].prev_hash == "0" * 64
    assert item.custody_head == collected.custody[0].entry_hash

    again = evidence.GetEvidence(
        evidence_pb2.GetEvidenceRequest(client_id=tenant.id, evidence_id=item.id, with_custody=True)
    )
    assert again == collected

    def collected_entries() -> list[dict[str, str]]:
        return [
            e for e in api.timeline(api.admin, incident["id"]) if e["type"] == "evidence.collected"
        ]

    entry = eventually(collected_entries)[0]
    assert item.sha256 in entry["summary"]


def test_evidence_is_refused_for_unknown_or_another_clients_incidents(
    api: Api, evidence: evidence_pb2_grpc.EvidenceServiceStub
) -> None:
    owner, other = api.new_client(), api.new_client()
    incident = api.report(owner).json()
    collect_once_known(evidence, client_id=owner.id, incident_id=incident["id"])
    for client_id, incident_id in (
        (other.id, incident["id"]),
        (owner.id, "00000000-0000-0000-0000-000000000000"),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            collect(evidence, client_id=client_id, incident_id=incident_id)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_another_clients_evidence_is_not_found(
    api: Api, evidence: evidence_pb2_grpc.EvidenceServiceStub
) -> None:
    owner, other = api.new_client(), api.new_client()
    incident = api.report(owner).json()
    item = collect_once_known(evidence, client_id=owner.id, incident_id=incident["id"]).item
    with pytest.raises(grpc.RpcError) as caught:
        evidence.GetEvidence(
            evidence_pb2.GetEvidenceRequest(client_id=other.id, evidence_id=item.id)
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as unscoped:
        evidence.GetEvidence(evidence_pb2.GetEvidenceRequest(evidence_id=item.id))
    assert unscoped.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("content", "overrides", "field"),
    [
        (b"", {}, "content"),
        (b"data", {"filename": ""}, "filename"),
        (b"data", {"incident_id": ""}, "incident_id"),
        (b"data", {"acquisition": "rumour"}, "acquisition"),
        (b"data", {"expected_sha256": "ABC"}, "expected_sha256"),
        (b"data", {"expected_sha256": "0" * 64}, "Repr-Digest"),
        (b"data", {"collector": events_pb2.Actor()}, "collector"),
    ],
)
def test_invalid_evidence_is_rejected_naming_the_field(
    api: Api,
    evidence: evidence_pb2_grpc.EvidenceServiceStub,
    content: bytes,
    overrides: dict[str, object],
    field: str,
) -> None:
    tenant = api.new_client()
    incident = api.report(tenant).json()
    collect_once_known(evidence, client_id=tenant.id, incident_id=incident["id"])
    fields: dict[str, Any] = {"client_id": tenant.id, "incident_id": incident["id"]} | overrides
    with pytest.raises(grpc.RpcError) as caught:
        collect(evidence, content, **fields)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (FIELD_METADATA_KEY, field) in caught.value.trailing_metadata()


def test_the_first_message_must_carry_the_metadata(
    api: Api, evidence: evidence_pb2_grpc.EvidenceServiceStub
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        evidence.CollectEvidence(iter([evidence_pb2.CollectEvidenceRequest(chunk=b"data")]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (FIELD_METADATA_KEY, "metadata") in caught.value.trailing_metadata()
