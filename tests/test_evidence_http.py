"""Evidence over HTTP against the real platform (SQLite and PostgreSQL): submitting an item
streams it to evidence, which keeps it encrypted under its content address with its digests
fixed; downloads give back exactly those bytes; clients see their own items and the client-safe
part of the custody log; bad input is a problem naming the field, with nothing kept."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.evidence_client import (
    blob_path,
    record,
    repr_digest,
    submit,
    submit_once_known,
    verify,
)
from tests.gateway_client import Api, Tenant, eventually
from tests.lifecycle_client import ok, report_triaged
from tests.review_client import said

CONTENT = b"2026-11-26T09:10:02Z sshd[311]: Accepted password for root from 203.0.113.9\n" * 50


def stored_files(api: Api) -> set[Path]:
    """Every file under the evidence store: blobs, and uploads in progress."""
    root = api.platform.var_dir / "evidence"
    return {path for path in root.rglob("*") if path.is_file()}


def test_an_item_is_kept_encrypted_with_its_digests_and_comes_back_as_it_went_in(
    api: Api,
) -> None:
    client = api.new_client()
    incident = report_triaged(api, client)
    content = CONTENT + uuid.uuid4().bytes

    def attempt() -> httpx.Response | None:
        response = api.http.post(
            f"/v1/incidents/{incident}/evidence",
            params={
                "filename": "auth.log",
                "description": "sshd log from the bastion",
                "source": "bastion-1:/var/log/auth.log",
                "acquisition": "export",
                "collected_at": "2026-11-26T09:30:00+00:00",
            },
            content=content,
            headers=client.headers
            | {"Repr-Digest": repr_digest(content), "Content-Type": "text/plain"},
        )
        # Evidence learns of the incident from incident.reported, a moment after triage.
        return None if response.status_code == 404 else response

    created: httpx.Response = eventually(attempt)
    assert created.status_code == 201, created.text
    item = created.json()
    assert created.headers["location"] == f"/v1/evidence/{item['id']}"
    assert item["sha256"] == hashlib.sha256(content).hexdigest()
    assert item["sha512"] == hashlib.sha512(content).hexdigest()
    assert item["size_bytes"] == len(content)
    assert item["collected_by"]["kind"] == "client_system"

    # At rest the content is encrypted: the plaintext is nowhere in its blob.
    stored = blob_path(api.platform, item["sha256"]).read_bytes()
    assert stored.startswith(b"FBEV") and b"sshd[311]" not in stored

    download = api.http.get(f"/v1/evidence/{item['id']}/content", headers=client.headers)
    assert download.status_code == 200, download.text
    assert download.content == content
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["repr-digest"] == repr_digest(content)
    assert 'filename="auth.log"' in download.headers["content-disposition"]

    staff_view = record(api, api.admin, item["id"])
    assert [entry["kind"] for entry in staff_view["custody"]] == ["collected", "accessed"]
    collected = staff_view["custody"][0]["details"]
    assert collected["sha256"] == item["sha256"]
    assert collected["source"] == "bastion-1:/var/log/auth.log"
    assert staff_view["custody"][1]["prev_hash"] == staff_view["custody"][0]["entry_hash"]
    assert staff_view["custody_head"] == staff_view["custody"][1]["entry_hash"]

    listed = api.http.get(f"/v1/incidents/{incident}/evidence", headers=client.headers)
    assert listed.status_code == 200, listed.text
    assert [listed_item["id"] for listed_item in listed.json()["items"]] == [item["id"]]


def test_the_same_bytes_twice_are_one_blob_two_items_and_two_custody_logs(api: Api) -> None:
    client = api.new_client()
    incident = report_triaged(api, client)
    content = os.urandom(3000)
    first = submit_once_known(api, client, incident, content, filename="disk.img")
    second = submit_once_known(api, api.admin, incident, content, filename="copy-of-disk.img")
    assert first["id"] != second["id"]
    assert first["sha256"] == second["sha256"]
    blobs = list(blob_path(api.platform, first["sha256"]).parent.glob(f"{first['sha256']}*"))
    assert len(blobs) == 1
    for item, collector in ((first, "client_system"), (second, "admin")):
        custody = record(api, api.admin, item["id"])["custody"]
        assert [(entry["kind"], entry["actor"]["kind"]) for entry in custody] == [
            ("collected", collector)
        ]
    for item in (first, second):
        download = api.http.get(f"/v1/evidence/{item['id']}/content", headers=api.admin.headers)
        assert download.content == content


def test_another_clients_evidence_is_not_found(api: Api) -> None:
    owner, other = api.new_client(), api.new_client()
    incident = report_triaged(api, owner)
    item = submit_once_known(api, owner, incident, b"owner's secret")
    walled = api.new_person("responder", clients=[other.id])
    outsiders: list[Tenant] = [other, api.new_person("client", client_id=other.id), walled]
    for outsider in outsiders:
        answers = {
            "read": api.http.get(f"/v1/evidence/{item['id']}", headers=outsider.headers),
            "download": api.http.get(
                f"/v1/evidence/{item['id']}/content", headers=outsider.headers
            ),
            "transfer": api.http.post(
                f"/v1/evidence/{item['id']}/transfers",
                json={"to": walled.person_id, "purpose": "analysis", "location": "lab"},
                headers=outsider.headers,
            ),
            "verify": api.http.post(f"/v1/evidence/{item['id']}/verify", headers=outsider.headers),
            "list": api.http.get(f"/v1/incidents/{incident}/evidence", headers=outsider.headers),
            "submit": submit(api, outsider, incident, b"planted"),
        }
        for what, answer in answers.items():
            assert answer.status_code == 404, (what, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
            assert owner.id not in answer.text and "owner's secret" not in answer.text
    # Nothing of theirs was recorded or kept.
    custody = record(api, api.admin, item["id"])["custody"]
    assert [entry["kind"] for entry in custody] == ["collected"]
    listed = api.http.get(f"/v1/incidents/{incident}/evidence", headers=owner.headers)
    assert len(listed.json()["items"]) == 1


@pytest.fixture
def known_incident(api: Api) -> tuple[Tenant, str]:
    """A client's incident that evidence already knows of (an item was stored for it)."""
    client = api.new_client()
    incident = report_triaged(api, client)
    submit_once_known(api, client, incident, b"first item")
    return client, incident


WRONG = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()


@pytest.mark.parametrize(
    ("params", "content", "headers", "status", "field"),
    [
        ({}, b"", {}, 422, "content"),
        ({}, CONTENT, {"Repr-Digest": f"sha-256=:{WRONG}:"}, 422, "Repr-Digest"),
        ({}, CONTENT, {"Repr-Digest": "sha-256=abc"}, 422, "Repr-Digest"),
        ({}, CONTENT, {"Repr-Digest": "sha-256=:AAAA:"}, 422, "Repr-Digest"),
        ({"filename": None}, CONTENT, {}, 422, "filename"),
        ({"filename": "../etc/passwd"}, CONTENT, {}, 422, "filename"),
        ({"acquisition": "guesswork"}, CONTENT, {}, 422, "acquisition"),
        ({"collected_at": "2999-01-01T00:00:00+00:00"}, CONTENT, {}, 422, "collected_at"),
        ({"collected_at": "2026-01-01T00:00:00"}, CONTENT, {}, 422, "collected_at"),
        ({"description": "NUL\x00"}, CONTENT, {}, 422, "description"),
    ],
    ids=[
        "no-body",
        "digest-mismatch",
        "digest-malformed",
        "digest-wrong-length",
        "no-filename",
        "filename-with-path",
        "unknown-acquisition",
        "collected-in-the-future",
        "collected-at-without-offset",
        "nul-in-description",
    ],
)
def test_bad_input_is_a_problem_naming_the_field_and_nothing_is_kept(
    api: Api,
    known_incident: tuple[Tenant, str],
    params: dict[str, Any],
    content: bytes,
    headers: dict[str, str],
    status: int,
    field: str,
) -> None:
    client, incident = known_incident
    before = stored_files(api)
    query = {"filename": "x.log"} | params
    response = api.http.post(
        f"/v1/incidents/{incident}/evidence",
        params={key: value for key, value in query.items() if value is not None},
        content=content,
        headers=client.headers | headers,
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in {error["field"] for error in response.json()["errors"]}, response.text
    listed = api.http.get(f"/v1/incidents/{incident}/evidence", headers=client.headers)
    assert len(listed.json()["items"]) == 1  # only the first item
    assert stored_files(api) == before


def test_a_form_upload_is_refused_rather_than_kept_with_its_envelope(
    api: Api, known_incident: tuple[Tenant, str]
) -> None:
    client, incident = known_incident
    before = stored_files(api)
    response = api.http.post(
        f"/v1/incidents/{incident}/evidence",
        params={"filename": "form.txt"},
        files={"file": ("auth.log", CONTENT)},
        headers=client.headers,
    )
    assert response.status_code == 415, response.text
    assert "multipart" in response.json()["detail"]
    assert stored_files(api) == before


def test_an_unknown_incident_is_not_found(api: Api) -> None:
    client = api.new_client()
    missing = str(uuid.uuid4())
    for caller in (client, api.admin):
        response = submit(api, caller, missing, CONTENT)
        assert response.status_code == 404, response.text
        assert response.json()["detail"] == f"incident {missing} not found"
    for path in (f"/v1/evidence/{missing}", f"/v1/evidence/{missing}/content", "/v1/evidence/x"):
        response = api.http.get(path, headers=api.admin.headers)
        assert response.status_code == 404, response.text


def test_a_client_reads_only_the_client_safe_part_of_the_custody_log(api: Api) -> None:
    client = api.new_client()
    contact = api.new_person("client", client_id=client.id)
    manager = api.new_person("manager")
    receiver = api.new_person("responder")
    incident = report_triaged(api, client)
    item = submit_once_known(api, manager, incident, b"memory image" * 100, filename="mem.raw")
    transfer = api.http.post(
        f"/v1/evidence/{item['id']}/transfers",
        json={"to": receiver.person_id, "purpose": "analysis", "location": "Lab 2, safe 4"},
        headers=manager.headers,
    )
    assert transfer.status_code == 201, transfer.text
    receipt = api.http.post(
        f"/v1/evidence/{item['id']}/transfers/{transfer.json()['id']}/receipt",
        headers=receiver.headers,
    )
    assert receipt.status_code == 200, receipt.text
    ok(api.http.post(f"/v1/evidence/{item['id']}/seal", json={}, headers=manager.headers))
    verify(api, manager, item["id"])

    staff = record(api, manager, item["id"])
    assert [entry["kind"] for entry in staff["custody"]] == [
        "collected",
        "transferred",
        "received",
        "sealed",
        "verified",
    ]
    for reader in (client, contact):
        seen = record(api, reader, item["id"])
        assert [entry["kind"] for entry in seen["custody"]] == ["collected", "verified"]
        assert seen["sha256"] == item["sha256"]
        assert seen["holder"] is None and seen["pending_transfer"] is None
        assert seen["custody_head"] is None and seen["custody_length"] is None
        assert seen["collected_by"] == {"id": "", "kind": "staff", "name": "Response team"}
        for entry in seen["custody"]:
            assert entry["actor"]["name"] == "Response team"
            assert entry["entry_hash"] is None and entry["prev_hash"] is None
            assert entry["position"] is None
        assert seen["custody"][1]["details"] == {"result": "intact"}
        text = str(seen)
        for secret in ("Lab 2", receiver.person_id, manager.person_id, "analysis"):
            assert secret not in text
        # Sealed: not even its owner downloads it until it is unsealed.
        sealed = api.http.get(f"/v1/evidence/{item['id']}/content", headers=reader.headers)
        assert sealed.status_code == 409, sealed.text
        assert "sealed" in sealed.json()["detail"]
        # Custody commands are the firm's: a client's key is told the item does not exist.
        refused = api.http.post(f"/v1/evidence/{item['id']}/unseal", headers=reader.headers)
        assert refused.status_code == 404, refused.text


def test_custody_reaches_the_timeline_and_a_client_reads_only_what_it_submitted(
    api: Api,
) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    incident = report_triaged(api, client)
    own = submit_once_known(api, client, incident, b"client's own export", filename="own.csv")
    firms = submit_once_known(api, manager, incident, b"firm's image", filename="firm.img")
    ok(
        api.http.post(
            f"/v1/evidence/{firms['id']}/seal", json={"reason": "court"}, headers=manager.headers
        )
    )
    verify(api, manager, own["id"])

    expected = ["evidence.collected", "evidence.collected", "evidence.sealed", "evidence.verified"]

    def staff_entries() -> list[dict[str, Any]] | None:
        entries = [
            entry
            for entry in api.timeline(api.admin, incident)
            if entry["type"].startswith("evidence.")
        ]
        return entries if [entry["type"] for entry in entries] == expected else None

    entries = eventually(staff_entries)
    assert own["sha256"] in entries[0]["summary"]
    assert entries[2]["summary"] == "evidence sealed"
    manager_name = ok(api.http.get(f"/v1/people/{manager.person_id}", headers=api.admin.headers))[
        "name"
    ]
    assert said(entries[2]) == [("filename", "firm.img"), ("by", manager_name), ("reason", "court")]
    seen = [e for e in api.timeline(client, incident) if e["type"].startswith("evidence.")]
    assert len(seen) == 1
    size = len(b"client's own export")
    assert seen[0]["summary"] == f"evidence submitted ({size} bytes, sha256 {own['sha256']})"
    assert said(seen[0]) == [("filename", "own.csv")]
