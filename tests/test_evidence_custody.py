"""The chain of custody against the real platform (SQLite and PostgreSQL): transfers released
and received (with the content re-hashed), seals, legal hold, disposal, and verification that
catches a flipped byte in a blob, an edited, deleted or reordered custody row, and a log
rewritten with fresh hashes after its heads were signed."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, update

from firebreak.api.evidence.v1 import evidence_pb2, evidence_pb2_grpc
from firebreak.database import create_engine
from firebreak.launcher import Platform
from services.evidence import custody_log
from services.evidence.custody_chain import Entry, entry_hash
from services.evidence.models import custody_entries, items
from tests.evidence_client import (
    blob_path,
    evidence_database_url,
    record,
    run_sql,
    submit_once_known,
    verify,
)
from tests.gateway_client import Api, Person, Tenant, eventually
from tests.lifecycle_client import ok, report_triaged, run
from tests.review_client import said
from tests.service_channel import service_channel


@pytest.fixture
def evidence_stub(api: Api) -> Iterator[evidence_pb2_grpc.EvidenceServiceStub]:
    with service_channel(api.platform, "evidence") as channel:
        yield evidence_pb2_grpc.EvidenceServiceStub(channel)


def unique_content() -> bytes:
    return b"disk image of laptop FB-" + uuid.uuid4().bytes * 4000


def transfer(api: Api, caller: Tenant, evidence_id: str, to: Person) -> dict[str, Any]:
    response = api.http.post(
        f"/v1/evidence/{evidence_id}/transfers",
        json={"to": to.person_id, "purpose": "imaging", "location": "Lab 2, safe 4"},
        headers=caller.headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def receipt_of(api: Api, caller: Tenant, evidence_id: str, transfer_id: str) -> Any:
    return api.http.post(
        f"/v1/evidence/{evidence_id}/transfers/{transfer_id}/receipt",
        json={"location": "Lab 2, bench 1"},
        headers=caller.headers,
    )


def integrity_failures(api: Api, incident_id: str) -> list[dict[str, Any]]:
    return [
        entry
        for entry in api.timeline(api.admin, incident_id)
        if entry["type"] == "evidence.integrity_failed"
    ]


def test_a_transfer_is_released_by_the_holder_and_confirmed_by_the_receiver(api: Api) -> None:
    client = api.new_client()
    manager, receiver = api.new_person("manager"), api.new_person("responder")
    incident = report_triaged(api, client)
    content = unique_content()
    item = submit_once_known(api, manager, incident, content, filename="laptop.img")
    assert record(api, manager, item["id"])["holder"]["id"] == manager.person_id

    released = transfer(api, manager, item["id"], receiver)
    assert released["status"] == "pending"
    assert released["from"]["id"] == manager.person_id
    assert released["to"]["id"] == receiver.person_id
    assert record(api, manager, item["id"])["pending_transfer"]["id"] == released["id"]
    again = api.http.post(
        f"/v1/evidence/{item['id']}/transfers",
        json={"to": receiver.person_id, "purpose": "x", "location": "y"},
        headers=manager.headers,
    )
    assert again.status_code == 409 and "pending" in again.json()["detail"], again.text

    # Only the receiver named confirms; anyone else is told who may.
    refused = receipt_of(api, manager, item["id"], released["id"])
    assert refused.status_code == 403, refused.text
    assert "to whom it was released" in refused.json()["detail"]
    missing = receipt_of(api, receiver, item["id"], str(uuid.uuid4()))
    assert missing.status_code == 404, missing.text

    received = receipt_of(api, receiver, item["id"], released["id"])
    assert received.status_code == 200, received.text
    assert received.json()["status"] == "received"
    assert received.json()["content_matches"] is True
    twice = receipt_of(api, receiver, item["id"], released["id"])
    assert twice.status_code == 409, twice.text

    after = record(api, manager, item["id"])
    assert after["holder"]["id"] == receiver.person_id and after["pending_transfer"] is None
    kinds = [entry["kind"] for entry in after["custody"]]
    assert kinds == ["collected", "transferred", "received"]
    released_entry, received_entry = after["custody"][1]["details"], after["custody"][2]["details"]
    assert released_entry["from"]["id"] == manager.person_id
    assert released_entry["to"]["id"] == receiver.person_id
    assert (released_entry["purpose"], released_entry["location"]) == ("imaging", "Lab 2, safe 4")
    assert received_entry["sha256"] == item["sha256"] and received_entry["content_matches"]
    assert received_entry["location"] == "Lab 2, bench 1"
    assert after["custody"][2]["actor"]["id"] == receiver.person_id


@pytest.mark.parametrize(
    ("to", "complaint"),
    [("contact", "not staff"), ("walled", "may not work on"), ("nobody", "no person")],
)
def test_evidence_is_released_only_to_staff_who_may_work_on_the_client(
    api: Api, to: str, complaint: str
) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    incident = report_triaged(api, client)
    item = submit_once_known(api, manager, incident, unique_content())
    receiver_id = {
        "contact": lambda: api.new_person("client", client_id=client.id).person_id,
        "walled": lambda: api.new_person("responder", clients=[api.new_client().id]).person_id,
        "nobody": lambda: str(uuid.uuid4()),
    }[to]()
    refused = api.http.post(
        f"/v1/evidence/{item['id']}/transfers",
        json={"to": receiver_id, "purpose": "imaging", "location": "lab"},
        headers=manager.headers,
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "to"
    assert complaint in refused.json()["detail"]


def test_receipt_re_hashes_the_content_and_a_change_is_an_integrity_failure(api: Api) -> None:
    client = api.new_client()
    manager, receiver = api.new_person("manager"), api.new_person("responder")
    incident = report_triaged(api, client)
    item = submit_once_known(api, manager, incident, unique_content())
    released = transfer(api, manager, item["id"], receiver)
    flip_a_byte(api.platform, item["sha256"])

    received = receipt_of(api, receiver, item["id"], released["id"])
    assert received.status_code == 200, received.text
    assert received.json()["content_matches"] is False
    entry = record(api, manager, item["id"])["custody"][-1]
    assert entry["kind"] == "received" and entry["details"]["content_matches"] is False
    failure = eventually(lambda: integrity_failures(api, incident))[0]
    assert any(
        name == "difference" and "re-hashed at receipt" in value for name, value in said(failure)
    )


def test_a_sealed_item_is_not_downloaded_until_unsealed(api: Api) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    incident = report_triaged(api, client)
    item = submit_once_known(api, manager, incident, unique_content())
    sealed = api.http.post(
        f"/v1/evidence/{item['id']}/seal", json={"reason": "bag 17"}, headers=manager.headers
    )
    assert sealed.status_code == 200 and sealed.json()["sealed"] is True, sealed.text
    twice = api.http.post(f"/v1/evidence/{item['id']}/seal", headers=manager.headers)
    assert twice.status_code == 409, twice.text
    refused = api.http.get(f"/v1/evidence/{item['id']}/content", headers=manager.headers)
    assert refused.status_code == 409 and "sealed" in refused.json()["detail"], refused.text
    ok(api.http.post(f"/v1/evidence/{item['id']}/unseal", headers=manager.headers))
    download = api.http.get(f"/v1/evidence/{item['id']}/content", headers=manager.headers)
    assert download.status_code == 200, download.text
    kinds = [entry["kind"] for entry in record(api, manager, item["id"])["custody"]]
    assert kinds == ["collected", "sealed", "unsealed", "accessed"]


def dispose(api: Api, caller: Tenant, evidence_id: str) -> Any:
    return api.http.delete(
        f"/v1/evidence/{evidence_id}",
        params={"method": "destroyed", "authorised_by": "Client's counsel, letter of 2 March"},
        headers=caller.headers,
    )


def test_disposal_waits_for_the_incident_to_end_and_for_any_legal_hold(api: Api) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    incident = report_triaged(api, client)
    content = unique_content()
    item = submit_once_known(api, manager, incident, content)
    twin = submit_once_known(api, manager, incident, content, filename="same-bytes.img")

    still_open = dispose(api, manager, item["id"])
    assert still_open.status_code == 409, still_open.text
    assert "still open (triaged)" in still_open.json()["detail"]

    held = api.http.post(
        f"/v1/evidence/{item['id']}/legal-hold",
        json={"held": True, "reason": "Litigation hold from the client's counsel"},
        headers=manager.headers,
    )
    assert held.status_code == 200 and held.json()["legal_hold"] is True, held.text
    ok(run(api, manager, incident, "decline", {"reason": "A planned maintenance window"}))

    def incident_ended() -> bool:
        answer = dispose(api, manager, item["id"])
        assert answer.status_code == 409, answer.text
        return "legal hold" in answer.json()["detail"]

    eventually(incident_ended)  # evidence learns the incident ended from incident.declined
    released = api.http.post(
        f"/v1/evidence/{item['id']}/legal-hold",
        json={"held": False, "reason": "Matter settled"},
        headers=manager.headers,
    )
    assert released.status_code == 200, released.text

    disposed = dispose(api, manager, item["id"])
    assert disposed.status_code == 200, disposed.text
    assert disposed.json()["disposed_at"] is not None
    last = disposed.json()["custody"][-1]
    assert last["kind"] == "disposed"
    assert last["details"]["method"] == "destroyed"
    assert last["details"]["authorised_by"] == "Client's counsel, letter of 2 March"
    assert last["details"]["content_removed"] is False  # the twin still holds the same bytes
    assert blob_path(api.platform, item["sha256"]).exists()
    gone = api.http.get(f"/v1/evidence/{item['id']}/content", headers=manager.headers)
    assert gone.status_code == 409 and "disposed" in gone.json()["detail"], gone.text
    assert api.http.get(f"/v1/evidence/{twin['id']}/content", headers=manager.headers).content == (
        content
    )

    # The last item holding the bytes takes the blob with it: file deleted, data key erased.
    last_one = dispose(api, manager, twin["id"])
    assert last_one.status_code == 200, last_one.text
    assert last_one.json()["custody"][-1]["details"]["content_removed"] is True
    assert not blob_path(api.platform, item["sha256"]).exists()
    [(wrapped_key,)] = run_sql(
        api.platform, "SELECT wrapped_key FROM blobs WHERE sha256 = :sha256", sha256=item["sha256"]
    )
    assert wrapped_key is None
    # The records and their logs remain, and verify as intact.
    assert record(api, manager, item["id"])["disposed_at"] is not None
    assert verify(api, manager, item["id"])["result"] == "intact"

    # The same bytes collected again come back as a new item with a new blob.
    other_incident = report_triaged(api, client)
    again = submit_once_known(api, manager, other_incident, content)
    download = api.http.get(f"/v1/evidence/{again['id']}/content", headers=manager.headers)
    assert download.content == content


# --- Tampering ---------------------------------------------------------------------------------


def flip_a_byte(platform: Platform, sha256: str) -> None:
    path = blob_path(platform, sha256)
    stored = bytearray(path.read_bytes())
    stored[9 + 12 + 100] ^= 0x01  # inside the first chunk's ciphertext
    path.write_bytes(bytes(stored))


def edit_a_row(platform: Platform, evidence_id: str) -> None:
    run_sql(
        platform,
        "UPDATE custody_entries SET actor_name = 'Mallory' "
        "WHERE evidence_id = :evidence_id AND position = 1",
        evidence_id=evidence_id,
    )


def delete_a_row(platform: Platform, evidence_id: str) -> None:
    run_sql(
        platform,
        "DELETE FROM custody_entries WHERE evidence_id = :evidence_id AND position = 2",
        evidence_id=evidence_id,
    )


def reorder_two_rows(platform: Platform, evidence_id: str) -> None:
    where = "WHERE evidence_id = :evidence_id AND position = "
    run_sql(
        platform,
        f"UPDATE custody_entries SET position = -1 {where} 1",
        f"UPDATE custody_entries SET position = 1 {where} 2",
        f"UPDATE custody_entries SET position = 2 {where} -1",
        evidence_id=evidence_id,
    )


TAMPERING: dict[str, tuple[Callable[[Platform, dict[str, Any]], None], str]] = {
    "flipped-byte": (
        lambda platform, item: flip_a_byte(platform, item["sha256"]),
        "blob: chunk 0 fails authentication",
    ),
    "edited-row": (
        lambda platform, item: edit_a_row(platform, item["id"]),
        "custody: entry 1 (accessed) was changed after it was recorded",
    ),
    "deleted-row": (
        lambda platform, item: delete_a_row(platform, item["id"]),
        "custody: entry 3 (unsealed) is where entry 2 should be",
    ),
    "reordered-rows": (
        lambda platform, item: reorder_two_rows(platform, item["id"]),
        "custody: entry 1 (sealed) does not follow the entry before it",
    ),
}


@pytest.mark.parametrize("tampering", list(TAMPERING))
def test_verify_finds_tampering_and_raises_an_integrity_failure(api: Api, tampering: str) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    incident = report_triaged(api, client)
    item = submit_once_known(api, manager, incident, unique_content())
    download = api.http.get(f"/v1/evidence/{item['id']}/content", headers=manager.headers)
    assert download.status_code == 200, download.text
    ok(api.http.post(f"/v1/evidence/{item['id']}/seal", headers=manager.headers))
    ok(api.http.post(f"/v1/evidence/{item['id']}/unseal", headers=manager.headers))
    intact = verify(api, manager, item["id"])
    assert (intact["result"], intact["differences"]) == ("intact", [])
    # collected, accessed, sealed, unsealed, verified

    tamper, expected = TAMPERING[tampering]
    tamper(api.platform, item)
    found = verify(api, manager, item["id"])

    assert found["result"] == "tampered"
    differences = [f"{d['what']}: {d['detail']}" for d in found["differences"]]
    assert any(difference.startswith(expected) for difference in differences), differences
    after = record(api, manager, item["id"])
    assert after["last_verification"] == "tampered"
    assert after["custody"][-1]["kind"] == "verified"
    assert after["custody"][-1]["details"]["result"] == "tampered"
    failure = eventually(lambda: integrity_failures(api, incident))[0]
    detail = expected.split(": ", 1)[1]
    assert any(name == "difference" and detail in value for name, value in said(failure))
    if tampering == "flipped-byte":
        # A download never hands out altered bytes: the stream breaks off at the bad chunk.
        with pytest.raises(httpx.RemoteProtocolError):
            api.http.get(f"/v1/evidence/{item['id']}/content", headers=manager.headers)


async def _rewrite_from_position_1(url: str, evidence_id: str) -> None:
    """What someone with the database but not the signing key could do: change an entry and
    recompute every hash after it, and the item's head, so the chain itself checks out."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            rows = await custody_log.entry_rows(connection, evidence_id)
            previous = rows[0].entry_hash
            for row in rows[1:]:
                stored = custody_log.stored_entry(row).entry
                actor = stored.actor
                if row.position == 1:
                    actor = type(actor)(id=actor.id, kind=actor.kind, name="Mallory")
                rewritten = Entry(
                    evidence_id=stored.evidence_id,
                    position=stored.position,
                    kind=stored.kind,
                    actor=actor,
                    recorded_at=stored.recorded_at,
                    details=stored.details,
                    prev_hash=previous,
                )
                previous = entry_hash(rewritten)
                await connection.execute(
                    update(custody_entries)
                    .where(custody_entries.c.seq == row.seq)
                    .values(
                        actor_name=actor.name, prev_hash=rewritten.prev_hash, entry_hash=previous
                    )
                )
            await connection.execute(
                update(items).where(items.c.id == evidence_id).values(custody_head=previous)
            )
            check = await connection.execute(
                select(items.c.custody_length).where(items.c.id == evidence_id)
            )
            assert check.scalar_one() == len(rows)
    finally:
        await engine.dispose()


def test_a_log_rewritten_after_its_heads_were_signed_is_caught_by_the_signature(
    api: Api, evidence_stub: evidence_pb2_grpc.EvidenceServiceStub
) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    incident = report_triaged(api, client)
    item = submit_once_known(api, manager, incident, unique_content())
    ok(api.http.post(f"/v1/evidence/{item['id']}/seal", headers=manager.headers))
    signature = evidence_stub.SignCustodyHeads(
        evidence_pb2.SignCustodyHeadsRequest(client_id=client.id)
    )
    document = json.loads(signature.document)
    assert document["format"] == "firebreak-custody-heads/1"
    assert document["client_id"] == client.id
    head = record(api, manager, item["id"])["custody_head"]
    assert document["heads"] == [{"evidence_id": item["id"], "length": 2, "head": head}]
    public_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(signature.public_key))
    public_key.verify(base64.b64decode(signature.signature), signature.document.encode())
    listed = evidence_stub.ListCustodySignatures(
        evidence_pb2.ListCustodySignaturesRequest(client_id=client.id)
    )
    assert listed.signatures[-1] == signature

    asyncio.run(_rewrite_from_position_1(evidence_database_url(api.platform), item["id"]))
    found = verify(api, manager, item["id"])

    assert found["result"] == "tampered"
    assert [d["what"] for d in found["differences"]] == ["signature"], found
    assert "rewritten after it was signed" in found["differences"][0]["detail"]


def test_signing_needs_a_client(evidence_stub: evidence_pb2_grpc.EvidenceServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        evidence_stub.SignCustodyHeads(evidence_pb2.SignCustodyHeadsRequest())
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_manager_signs_a_clients_chain_heads_on_demand_over_http(api: Api) -> None:
    client, other = api.new_client(), api.new_client()
    manager = api.new_person("manager")
    incident = report_triaged(api, client)
    item = submit_once_known(api, manager, incident, unique_content())
    path = f"/v1/clients/{client.id}/custody-signatures"

    signed = ok(api.http.post(path, headers=manager.headers))

    document = json.loads(signed["document"])
    head = record(api, manager, item["id"])["custody_head"]
    assert document["client_id"] == client.id
    assert document["heads"] == [{"evidence_id": item["id"], "length": 1, "head": head}]
    public_key = Ed25519PublicKey.from_public_bytes(base64.b64decode(signed["public_key"]))
    public_key.verify(base64.b64decode(signed["signature"]), signed["document"].encode())
    assert ok(api.http.get(path, headers=manager.headers))["items"][-1] == signed
    # Another client's signatures hold none of this one's items.
    theirs = ok(
        api.http.post(f"/v1/clients/{other.id}/custody-signatures", headers=manager.headers)
    )
    assert json.loads(theirs["document"])["heads"] == []
    missing = api.http.post(
        "/v1/clients/no-such-client/custody-signatures", headers=manager.headers
    )
    assert missing.status_code == 404
