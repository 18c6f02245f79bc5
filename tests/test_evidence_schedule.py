"""A platform of its own with a small evidence limit, second-long schedules and a real SMTP
server: an item over the limit is a 413 with nothing kept (declared or streamed); every item is
re-verified on schedule, which finds tampering on its own and pages the incident's commander
and the firm's managers; the chain heads that changed are signed on schedule."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from firebreak.api.evidence.v1 import evidence_pb2, evidence_pb2_grpc
from firebreak.launcher import Platform
from tests.evidence_client import blob_path, record, submit, submit_once_known
from tests.gateway_client import Api, Tenant, eventually
from tests.lifecycle_client import ok, report_triaged, run
from tests.mail import Mailbox, parts, smtp_server, start_paging_platform
from tests.review_client import said
from tests.service_channel import service_channel

LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def small_platform(
    tmp_path_factory: pytest.TempPathFactory, mailbox: tuple[Mailbox, int]
) -> Iterator[Platform]:
    platform = start_paging_platform(
        tmp_path_factory.mktemp("evidence-schedules"),
        smtp_port=mailbox[1],
        extra_env={
            "FIREBREAK_EVIDENCE_MAX_BYTES": str(LIMIT),
            "FIREBREAK_EVIDENCE_VERIFY_INTERVAL_SECONDS": "1",
            "FIREBREAK_EVIDENCE_SIGN_INTERVAL_SECONDS": "1",
        },
    )
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def small(small_platform: Platform) -> Api:
    return Api(small_platform)


@pytest.fixture(scope="module")
def known(small: Api) -> tuple[Tenant, str]:
    client = small.new_client()
    incident = report_triaged(small, client)
    submit_once_known(small, client, incident, b"evidence knows the incident now")
    return client, incident


def kept(api: Api, client: Tenant, incident: str) -> tuple[int, set[Path]]:
    listed = api.http.get(f"/v1/incidents/{incident}/evidence", headers=client.headers)
    root = api.platform.var_dir / "evidence"
    return len(listed.json()["items"]), {path for path in root.rglob("*") if path.is_file()}


def test_a_declared_size_over_the_limit_is_refused_at_once(
    small: Api, known: tuple[Tenant, str]
) -> None:
    client, incident = known
    before = kept(small, client, incident)
    response = submit(small, client, incident, b"x" * (LIMIT + 1))
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert str(LIMIT) in response.json()["detail"]
    assert kept(small, client, incident) == before


async def test_a_streamed_body_over_the_limit_is_refused_and_nothing_kept(
    small: Api, known: tuple[Tenant, str]
) -> None:
    client, incident = known
    before = kept(small, client, incident)

    async def body() -> AsyncIterator[bytes]:  # no Content-Length: the limit is met mid-stream
        for _ in range(5):
            yield b"y" * (64 * 1024 + 1)

    async with httpx.AsyncClient(base_url=small.platform.gateway_url, timeout=30) as http:
        response = await http.post(
            f"/v1/incidents/{incident}/evidence",
            params={"filename": "big.bin"},
            content=body(),
            headers=client.headers,
        )
    assert response.status_code == 413, response.text
    assert "exceeds the limit" in response.json()["detail"]
    assert kept(small, client, incident) == before


def test_every_item_is_re_verified_on_schedule_and_tampering_is_found_and_paged(
    small: Api, mailbox: tuple[Mailbox, int]
) -> None:
    box, _ = mailbox
    client = small.new_client()
    commander = small.new_person("manager")  # acknowledges: becomes the commander
    walled = small.new_person("manager", clients=[small.new_client().id])
    incident = report_triaged(small, client)
    ok(run(small, commander, incident, "acknowledge"))
    item = submit_once_known(small, commander, incident, b"scheduled check" * 500)

    def verified_on_schedule() -> list[dict[str, Any]]:
        custody = record(small, small.admin, item["id"])["custody"]
        return [entry for entry in custody if entry["details"].get("found_by") == "schedule"]

    first = eventually(verified_on_schedule)[0]
    assert (first["actor"]["kind"], first["details"]["result"]) == ("system", "intact")

    path = blob_path(small.platform, item["sha256"])
    stored = bytearray(path.read_bytes())
    stored[-1] ^= 1
    path.write_bytes(bytes(stored))

    def failure() -> list[dict[str, Any]]:
        return [
            entry
            for entry in small.timeline(small.admin, incident)
            if entry["type"] == "evidence.integrity_failed"
        ]

    [found] = eventually(failure)
    assert "found by schedule" in found["summary"]
    assert ("filename", item["filename"]) in said(found)
    assert record(small, small.admin, item["id"])["last_verification"] == "tampered"
    # Only what the schedule found wrong reaches the timeline, not every routine check.
    verified = [
        entry
        for entry in small.timeline(small.admin, incident)
        if entry["type"] == "evidence.verified"
    ]
    assert all("tampered" in entry["summary"] for entry in verified)

    # The commander and the managers who may see the client are paged; a manager walled off
    # from the client is not.
    def alerted(address: str) -> list[Any]:
        return [mail for mail in box.to(address) if "EVIDENCE INTEGRITY FAILURE" in mail["Subject"]]

    [page] = eventually(lambda: alerted(commander.email))
    assert item["filename"] in page["Subject"]
    text = parts(page)["text/plain"]
    assert "chunk 0 fails authentication" in text and item["id"] in text
    assert alerted(walled.email) == []


def test_chain_heads_that_changed_are_signed_on_schedule(
    small: Api, known: tuple[Tenant, str]
) -> None:
    client, incident = known
    item = submit_once_known(small, client, incident, b"signed on schedule")
    with service_channel(small.platform, "evidence") as channel:
        stub = evidence_pb2_grpc.EvidenceServiceStub(channel)

        def signed_with_the_item() -> dict[str, Any] | None:
            listed = stub.ListCustodySignatures(
                evidence_pb2.ListCustodySignaturesRequest(client_id=client.id)
            )
            for signature in reversed(listed.signatures):
                heads = json.loads(signature.document)["heads"]
                for head in heads:
                    if head["evidence_id"] == item["id"]:
                        return dict(head)
            return None

        head = eventually(signed_with_the_item)
    assert head["length"] >= 1
