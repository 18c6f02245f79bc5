"""Evidence learns whose an incident is from its incident.triaged, no longer from its report
(issue 16, point 5): an item collected before that arrived brings its client, confirmed by the
gateway, and is kept under it; another client is refused as ever, and so is an incident no one
confirmed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest

from firebreak.api.events.v1 import events_pb2
from firebreak.api.evidence.v1 import evidence_pb2, evidence_pb2_grpc
from tests.evidence_client import run_sql, submit
from tests.gateway_client import Api
from tests.lifecycle_client import report_triaged
from tests.service_channel import service_channel

COLLECTOR = events_pb2.Actor(id="person-1", kind="responder", name="Grace Hopper")


@pytest.fixture
def evidence(api: Api) -> Iterator[evidence_pb2_grpc.EvidenceServiceStub]:
    with service_channel(api.platform, "evidence") as channel:
        yield evidence_pb2_grpc.EvidenceServiceStub(channel)


def collect(
    evidence: evidence_pb2_grpc.EvidenceServiceStub, *, confirmed: bool, **fields: str
) -> evidence_pb2.EvidenceRecord:
    metadata = evidence_pb2.ItemMetadata(
        filename="auth.log",
        acquisition="copy",
        collector=COLLECTOR,
        incident_confirmed=confirmed,
        **fields,
    )
    return evidence.CollectEvidence(
        iter(
            [
                evidence_pb2.CollectEvidenceRequest(metadata=metadata),
                evidence_pb2.CollectEvidenceRequest(chunk=uuid.uuid4().bytes),
            ]
        )
    )


def known_owner(api: Api, incident_id: str) -> list[str]:
    rows = run_sql(
        api.platform,
        "SELECT client_id FROM known_incidents WHERE incident_id = :incident_id",
        incident_id=incident_id,
    )
    return [row.client_id for row in rows]


def test_an_item_of_an_incident_evidence_has_not_heard_of_lands_on_the_confirmed_client(
    api: Api, evidence: evidence_pb2_grpc.EvidenceServiceStub
) -> None:
    owner, other = api.new_client(), api.new_client("Other LLP")
    # No event about it has reached evidence: it has heard of it from nothing but this call.
    incident_id = str(uuid.uuid4())
    item = collect(evidence, confirmed=True, client_id=owner.id, incident_id=incident_id).item
    assert (item.client_id, item.incident_id) == (owner.id, incident_id)
    assert known_owner(api, incident_id) == [owner.id]
    listed = evidence.ListEvidence(
        evidence_pb2.ListEvidenceRequest(client_id=owner.id, incident_id=incident_id)
    )
    assert [listed_item.id for listed_item in listed.items] == [item.id]

    # Now it is the owner's: another client's item is refused, confirmed or not.
    for confirmed in (True, False):
        with pytest.raises(grpc.RpcError) as caught:
            collect(evidence, confirmed=confirmed, client_id=other.id, incident_id=incident_id)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert caught.value.details() == f"incident {incident_id} not found"
    assert known_owner(api, incident_id) == [owner.id]
    # And one no one confirmed is as unknown as ever.
    unheard = str(uuid.uuid4())
    with pytest.raises(grpc.RpcError) as unconfirmed:
        collect(evidence, confirmed=False, client_id=owner.id, incident_id=unheard)
    assert unconfirmed.value.code() == grpc.StatusCode.NOT_FOUND
    assert known_owner(api, unheard) == []


def test_an_upload_right_after_triage_is_kept_before_evidence_reads_the_triage(api: Api) -> None:
    owner, other = api.new_client(), api.new_client("Other LLP")
    incident_id = report_triaged(api, owner)
    # Evidence back to the moment before it read the incident.triaged (which it may not have
    # read yet anyway): it knows nothing of the incident.
    run_sql(
        api.platform,
        "DELETE FROM known_incidents WHERE incident_id = :incident_id",
        incident_id=incident_id,
    )

    created = submit(api, owner, incident_id, uuid.uuid4().bytes)
    assert created.status_code == 201, created.text
    assert created.json()["incident_id"] == incident_id
    assert known_owner(api, incident_id) == [owner.id]
    # Another client's key is refused at the gateway, as before: the incident is not theirs.
    refused = submit(api, other, incident_id, uuid.uuid4().bytes)
    assert refused.status_code == 404, refused.text
    listed = api.http.get(f"/v1/incidents/{incident_id}/evidence", headers=owner.headers)
    assert [item["id"] for item in listed.json()["items"]] == [created.json()["id"]]
