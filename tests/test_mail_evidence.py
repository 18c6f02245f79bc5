"""The attachments of a report by email become evidence items collected by email (issue 14 §5):
a real SMTP client sends to intake's listener; intake keeps each attachment and publishes
attachment.received; the gateway's consumer streams it from intake into evidence; evidence keeps
one item per attachment, however often the event comes, and refuses bytes that are not the ones
intake hashed at receipt."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

import grpc
import nats
import pytest

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.api.evidence.v1 import evidence_pb2
from firebreak.api.evidence.v1.evidence_pb2_grpc import EvidenceServiceStub
from firebreak.api.intake.v1.intake_pb2_grpc import IntakeServiceStub
from firebreak.events import ATTACHMENT_RECEIVED, ATTACHMENT_SOURCE, STREAM, subject_for
from firebreak.grpc_channels import open_channel
from firebreak.grpc_server import FIELD_METADATA_KEY
from firebreak.launcher import Platform
from firebreak.scope_token import Scope, ScopeTokens, current_scope, private_key
from services.gateway.mail_evidence import AttachmentMover, AttachmentNotCollected
from tests.alert_client import incident_of
from tests.gateway_client import Api, Tenant, eventually
from tests.inbound_mail_client import SENDER, new_email_integration, report_mail, send
from tests.lifecycle_client import ok

LOG = b"Jan 12 02:00:01 bank-gw sftp[311]: upload refused\n" * 400
CSV = b"employee,amount\n" + b"".join(f"{n},{n * 100}\n".encode() for n in range(2000))
ATTACHED = (("bank-gw.log", "text/plain", LOG), ("payroll.csv", "text/csv", CSV))


def evidence_of(api: Api, caller: Tenant, incident_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(
        api.http.get(f"/v1/incidents/{incident_id}/evidence", headers=caller.headers)
    )["items"]
    return items


def items_of(api: Api, incident_id: str) -> list[dict[str, Any]]:
    """The incident's two evidence items, once evidence has both."""

    def both() -> list[dict[str, Any]] | None:
        items = evidence_of(api, api.admin, incident_id)
        return items if len(items) == 2 else None

    found: list[dict[str, Any]] = eventually(both)
    return found


def reported_by_mail(platform: Platform, api: Api) -> tuple[Tenant, dict[str, Any], str]:
    """A client whose integration took a mail with two attachments: the client, the incident,
    the mail's Message-ID."""
    client = api.new_client("Mailed Evidence LLP")
    _, address = new_email_integration(api, client.id)
    message_id = f"payroll-{uuid.uuid4().hex[:8]}@client.example"
    mail = report_mail(address, attachments=ATTACHED, message_id=f"<{message_id}>")
    code, reply = send(platform, mail)
    assert code == 250, reply
    incident = incident_of(api, client, message_id)
    assert incident is not None
    return client, incident, message_id


def test_each_attachment_of_a_mail_becomes_an_evidence_item_collected_by_email(
    platform: Platform, api: Api
) -> None:
    client, incident, message_id = reported_by_mail(platform, api)
    path = f"/v1/incidents/{incident['id']}/attachments"
    items = items_of(api, incident["id"])

    def attachments_named() -> list[dict[str, Any]] | None:
        # Intake learns which item each attachment became (from evidence.collected).
        listed: list[dict[str, Any]] = ok(api.http.get(path, headers=client.headers))["items"]
        return listed if all(attachment["evidence_id"] for attachment in listed) else None

    attachments = eventually(attachments_named)
    by_source = {item["source_reference"]: item for item in items}
    assert set(by_source) == {ATTACHMENT_SOURCE + a["id"] for a in attachments}
    for attachment in attachments:
        item = by_source[ATTACHMENT_SOURCE + attachment["id"]]
        assert attachment["evidence_id"] == item["id"]
        assert item["collection_method"] == "email"
        assert item["sha256"] == attachment["sha256"]
        assert item["size_bytes"] == attachment["size_bytes"]
        assert item["filename"] == attachment["filename"]
        assert item["received_at"] >= attachment["received_at"]
        assert item["collected_by"]["kind"] == "client_system"
        assert item["collected_by"]["name"] == f"intake, from {SENDER} (Message-ID <{message_id}>)"
        assert message_id in item["description"] and message_id in item["source"]

        record = ok(api.http.get(f"/v1/evidence/{item['id']}", headers=api.admin.headers))
        [collected] = record["custody"]
        assert collected["kind"] == "collected" and collected["position"] == 0
        assert collected["details"]["collection_method"] == "email"
        assert collected["details"]["sha256_at_receipt"] == attachment["sha256"]
        assert collected["details"]["digests_sent_and_matched"] == ["sha-256"]

        content = api.http.get(f"/v1/evidence/{item['id']}/content", headers=api.admin.headers)
        assert content.status_code == 200, content.text
        assert hashlib.sha256(content.content).hexdigest() == attachment["sha256"]
        assert content.content in (LOG, CSV)
        verified = ok(api.http.post(f"/v1/evidence/{item['id']}/verify", headers=api.admin.headers))
        assert verified["result"] == "intact", verified

    # The client sees its own items as a client sees evidence: its integration as the
    # collector, the collection's facts, no hashes of the custody log.
    own = evidence_of(api, client, incident["id"])
    assert {item["id"] for item in own} == {item["id"] for item in items}
    record = ok(api.http.get(f"/v1/evidence/{own[0]['id']}", headers=client.headers))
    assert record["holder"] is None and record["custody_head"] is None
    assert [entry["kind"] for entry in record["custody"]] == ["collected", "verified"]
    assert record["custody"][0]["entry_hash"] is None
    assert record["custody"][0]["details"]["collection_method"] == "email"
    eventually(
        lambda: (
            sum(
                entry["summary"].startswith("evidence submitted by email")
                for entry in api.timeline(client, incident["id"])
            )
            == 2
        )
    )

    # Another client's key: as if there were nothing.
    other = api.new_client("Elsewhere LLP")
    listing = api.http.get(f"/v1/incidents/{incident['id']}/evidence", headers=other.headers)
    assert listing.status_code == 404, listing.text
    for item in items:
        assert api.http.get(f"/v1/evidence/{item['id']}", headers=other.headers).status_code == 404
        content = api.http.get(f"/v1/evidence/{item['id']}/content", headers=other.headers)
        assert content.status_code == 404


async def _last_attachment_event(platform: Platform) -> EventEnvelope:
    connection = await nats.connect(platform.admin_nats_url)
    try:
        message = await connection.jetstream().get_last_msg(
            STREAM, subject_for(ATTACHMENT_RECEIVED)
        )
        assert message.data is not None
        return EventEnvelope.FromString(message.data)
    finally:
        await connection.close()


async def _publish_again(platform: Platform, events: list[EventEnvelope]) -> None:
    """Each event once more, under a message id of its own, so that JetStream's duplicate
    window lets it through; then waits until the gateway's consumer has settled everything."""
    connection = await nats.connect(platform.admin_nats_url)
    try:
        js = connection.jetstream()
        for event in events:
            headers = {"Nats-Msg-Id": f"again-{uuid.uuid4()}"}
            await js.publish(subject_for(event.type), event.SerializeToString(), headers=headers)
        for _ in range(300):
            info = await js.consumer_info(STREAM, "gateway")
            if info.num_pending == 0 and info.num_ack_pending == 0:
                return
            await asyncio.sleep(0.1)
        pytest.fail(f"the gateway's consumer did not settle: {info}")
    finally:
        await connection.close()


def test_an_attachment_event_delivered_again_makes_no_second_item(
    platform: Platform, api: Api
) -> None:
    _, incident, _ = reported_by_mail(platform, api)
    first = items_of(api, incident["id"])
    event = asyncio.run(_last_attachment_event(platform))
    assert event.incident_id == incident["id"] and event.type == ATTACHMENT_RECEIVED
    assert event.actor.kind == "client_system"
    received = event.attachment_received
    assert received.sha256 in {hashlib.sha256(content).hexdigest() for _, _, content in ATTACHED}
    # The same event (the gateway's inbox knows it), and the same fact under a new event id (only
    # evidence's source reference knows it).
    again = EventEnvelope()
    again.CopyFrom(event)
    again.id = str(uuid.uuid4())
    asyncio.run(_publish_again(platform, [event, again]))

    after = evidence_of(api, api.admin, incident["id"])
    assert [(item["id"], item["custody_length"]) for item in after] == [
        (item["id"], item["custody_length"]) for item in first
    ]
    parked = ok(
        api.http.get(
            "/v1/admin/dead-letters", params={"service": "gateway"}, headers=api.admin.headers
        )
    )["items"]
    assert [letter for letter in parked if letter["incident_id"] == incident["id"]] == []


async def _call_the_gateways_step(platform: Platform, events: list[EventEnvelope]) -> list[Any]:
    """The gateway's remote step for each event, run here against the platform's intake and
    evidence with tokens signed as the gateway signs them; what each raised, if anything."""
    tokens = ScopeTokens(private_key(platform.scope_token_key))
    intake = open_channel(f"127.0.0.1:{platform.grpc_ports['intake']}", tokens=tokens)
    evidence = open_channel(f"127.0.0.1:{platform.grpc_ports['evidence']}", tokens=tokens)
    try:
        move = AttachmentMover(IntakeServiceStub(intake), EvidenceServiceStub(evidence))
        return await asyncio.gather(*(move(event) for event in events), return_exceptions=True)
    finally:
        await intake.close()
        await evidence.close()


async def _collect_directly(
    platform: Platform, metadata: evidence_pb2.ItemMetadata, content: bytes, *, times: int = 1
) -> list[evidence_pb2.EvidenceRecord | BaseException]:
    """Evidence's CollectEvidence, `times` at once, as the gateway would call it for the
    incident's client; each call's record or error."""
    tokens = ScopeTokens(private_key(platform.scope_token_key))
    channel = open_channel(f"127.0.0.1:{platform.grpc_ports['evidence']}", tokens=tokens)
    current_scope.set(Scope(subject="test", role="system", clients=frozenset({metadata.client_id})))

    async def upload() -> Any:
        yield evidence_pb2.CollectEvidenceRequest(metadata=metadata)
        yield evidence_pb2.CollectEvidenceRequest(chunk=content)

    stub = EvidenceServiceStub(channel)
    try:
        return await asyncio.gather(
            *(stub.CollectEvidence(upload(), timeout=10) for _ in range(times)),
            return_exceptions=True,
        )
    finally:
        await channel.close()


def refusal(answers: list[evidence_pb2.EvidenceRecord | BaseException]) -> grpc.aio.AioRpcError:
    [error] = answers
    assert isinstance(error, grpc.aio.AioRpcError), error
    return error


def field_of(error: grpc.aio.AioRpcError) -> str | None:
    return dict(error.trailing_metadata() or ()).get(FIELD_METADATA_KEY)


def test_evidence_keeps_one_item_per_attachment_and_refuses_bytes_not_hashed_at_receipt(
    platform: Platform, api: Api
) -> None:
    client, incident, _ = reported_by_mail(platform, api)
    items = items_of(api, incident["id"])
    event = asyncio.run(_last_attachment_event(platform))
    assert event.incident_id == incident["id"]

    # The gateway's step twice at once, as two replicas offered the same event would run it.
    assert asyncio.run(_call_the_gateways_step(platform, [event, event])) == [None, None]
    # An event naming the attachment with another digest: evidence names the item it has.
    forged = EventEnvelope()
    forged.CopyFrom(event)
    forged.attachment_received.sha256 = hashlib.sha256(b"other bytes").hexdigest()
    [refused] = asyncio.run(_call_the_gateways_step(platform, [forged]))
    assert isinstance(refused, AttachmentNotCollected), refused
    assert "ALREADY_EXISTS" in str(refused) and "was collected as evidence" in str(refused)
    assert len(evidence_of(api, api.admin, incident["id"])) == 2

    # Bytes that are not those intake hashed when the mail came: refused, nothing kept.
    metadata = evidence_pb2.ItemMetadata(
        client_id=client.id,
        incident_id=incident["id"],
        filename="changed.log",
        acquisition="copy",
        collector=event.actor,
        expected_sha256=hashlib.sha256(LOG).hexdigest(),
        collection_method="email",
        source_reference=ATTACHMENT_SOURCE + str(uuid.uuid4()),
    )
    error = refusal(
        asyncio.run(_collect_directly(platform, metadata, LOG + b"tampered on the way"))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_of(error) == "expected_sha256"
    assert error.details().startswith("the content's sha-256 is")
    assert "recorded when the mail was received" in error.details()
    assert [item["id"] for item in evidence_of(api, api.admin, incident["id"])] == [
        item["id"] for item in items
    ]
    # The same source collected three times at once (replicas offered one event): one item.
    answers = asyncio.run(_collect_directly(platform, metadata, LOG, times=3))
    assert all(isinstance(answer, evidence_pb2.EvidenceRecord) for answer in answers), answers
    assert len({answer.item.id for answer in answers}) == 1  # type: ignore[union-attr]
    assert len(evidence_of(api, api.admin, incident["id"])) == 3
    # An item by email must name its attachment and the digest taken at receipt.
    metadata.ClearField("source_reference")
    error = refusal(asyncio.run(_collect_directly(platform, metadata, LOG)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_of(error) == "source_reference"
