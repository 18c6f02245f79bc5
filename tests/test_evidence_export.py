"""The evidence export and the custody report against the real platform (SQLite and
PostgreSQL): an export checks out offline with `firebreak evidence verify` (no server, no
database), records its reads as accesses, and every tampering, inside the archive or in the
platform's blob store and database before the export, is named by the offline verifier."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdf
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from firebreak.api.evidence.v1 import evidence_pb2, evidence_pb2_grpc
from firebreak.launcher import Platform
from services.evidence import export_format
from services.evidence.custody_chain import canonical_json, entry_hash
from services.evidence.export_verifier import Report, verify
from tests.evidence_client import evidence_database_url, record, submit_once_known
from tests.gateway_client import Api, Tenant, eventually
from tests.lifecycle_client import ok, report_triaged
from tests.service_channel import service_channel
from tests.test_evidence_custody import (
    _rewrite_from_position_1,
    delete_a_row,
    edit_a_row,
    flip_a_byte,
    reorder_two_rows,
)

FIREBREAK = Path(sys.executable).parent / "firebreak"


def sign_heads(api: Api, client_id: str) -> evidence_pb2.CustodySignature:
    with service_channel(api.platform, "evidence") as channel:
        stub = evidence_pb2_grpc.EvidenceServiceStub(channel)
        signature: evidence_pb2.CustodySignature = stub.SignCustodyHeads(
            evidence_pb2.SignCustodyHeadsRequest(client_id=client_id)
        )
    return signature


def export(api: Api, caller: Tenant, incident_id: str, path: Path) -> str:
    """Downloads the incident's export to `path`, streamed; returns its export id."""
    url = f"/v1/incidents/{incident_id}/evidence/export"
    with api.http.stream("GET", url, headers=caller.headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"] == "application/zip"
        with path.open("wb") as file:
            for chunk in response.iter_bytes():
                file.write(chunk)
        return response.headers["x-export-id"]


def unique(label: str, size: int = 4000) -> bytes:
    return f"{label} ".encode() + os.urandom(size)


def download(api: Api, caller: Tenant, evidence_id: str) -> None:
    answer = api.http.get(f"/v1/evidence/{evidence_id}/content", headers=caller.headers)
    assert answer.status_code == 200, answer.text


def signed_heads_key(api: Api, client_id: str, directory: Path) -> Path:
    """Signs the client's chain heads as they are now; the key they were signed with."""
    path = directory / "firm.pub"
    path.write_text(sign_heads(api, client_id).public_key)  # base64 of the raw key
    return path


def published_key(api: Api, directory: Path) -> Path:
    """The firm's public key as `firebreak evidence public-key` prints it for publishing."""
    printed = subprocess.run(
        [FIREBREAK, "evidence", "public-key"],
        capture_output=True,
        text=True,
        env={
            "PATH": os.environ["PATH"],
            "FIREBREAK_EVIDENCE_SIGNING_KEY": api.platform.evidence_signing_key,
        },
        timeout=60,
    )
    assert printed.returncode == 0, printed.stderr
    path = directory / "firm.pem"
    path.write_text(printed.stdout)
    key = export_format.raw_public_key(path.read_bytes())
    assert f"SHA-256 fingerprint: {export_format.fingerprint(key)}" in printed.stdout
    return path


@dataclass(frozen=True)
class Exported:
    path: Path
    firm_key: Path
    incident_id: str
    kept: dict[str, Any]  # the item exported whole
    sealed: dict[str, Any]  # the item exported without content
    content: bytes


@pytest.fixture(scope="module")
def exported(api: Api, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """One export, made once per backend: an item accessed, sealed and unsealed (its heads
    signed after that), and an item sealed, which is exported without its content."""
    directory = tmp_path_factory.mktemp("export")
    client = api.new_client()
    manager = api.new_person("manager")
    incident = report_triaged(api, client)
    content = unique("disk image", 3 * 1024 * 1024)  # more than one chunk of the blob format
    kept = submit_once_known(
        api, manager, incident, content, filename='laptop: FB-07 "\u00e9t\u00e9".img'
    )
    download(api, manager, kept["id"])
    ok(api.http.post(f"/v1/evidence/{kept['id']}/seal", headers=manager.headers))
    ok(api.http.post(f"/v1/evidence/{kept['id']}/unseal", headers=manager.headers))
    sealed = submit_once_known(api, manager, incident, unique("auth.log"), filename="auth.log")
    ok(api.http.post(f"/v1/evidence/{sealed['id']}/seal", headers=manager.headers))
    signed_with = signed_heads_key(api, client.id, directory)
    firm_key = published_key(api, directory)
    assert export_format.raw_public_key(signed_with.read_bytes()) == (
        export_format.raw_public_key(firm_key.read_bytes())
    )
    path = directory / "export.zip"
    export(api, manager, incident, path)
    return Exported(path, firm_key, incident, kept, sealed, content)


def firm_key(exported: Exported) -> bytes:
    return export_format.raw_public_key(exported.firm_key.read_bytes())


def test_an_export_verifies_offline_with_no_server_and_no_database(
    api: Api, exported: Exported, tmp_path: Path
) -> None:
    # No FIREBREAK_* setting at all: no database URL, no key, no service address.
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    result = subprocess.run(
        [FIREBREAK, "evidence", "verify", str(exported.path), "--public-key", exported.firm_key],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "INTACT: every check passed." in result.stdout
    fingerprint = export_format.fingerprint(firm_key(exported))
    assert f"SHA-256 fingerprint {fingerprint} (given)" in result.stdout
    for item in (exported.kept, exported.sealed):
        assert f"ok            {item['filename']} ({item['id']})" in result.stdout

    # Without a key given, the archive's own is trusted, and its fingerprint shown to compare.
    report = verify(exported.path)
    assert report.intact, report.text()
    assert f"SHA-256 fingerprint {fingerprint}, from the archive" in report.text()


def test_an_export_holds_the_content_logs_signatures_and_a_signed_manifest(
    api: Api, exported: Exported
) -> None:
    kept, sealed = exported.kept, exported.sealed
    with zipfile.ZipFile(exported.path) as archive:
        manifest = json.loads(archive.read(export_format.MANIFEST))
        assert manifest["format"] == "firebreak-evidence-export/1"
        assert manifest["incident_id"] == exported.incident_id
        by_id = {item["evidence_id"]: item for item in manifest["items"]}
        assert list(by_id) == [kept["id"], sealed["id"]]  # oldest first

        whole = by_id[kept["id"]]
        assert whole["content"]["status"] == "included"
        # Named so that it unpacks on any system, in the item's own folder.
        assert whole["content"]["path"] == f"items/{kept['id']}/laptop_ FB-07 _\u00e9t\u00e9_.img"
        assert archive.read(whole["content"]["path"]) == exported.content
        assert (whole["sha256"], whole["sha512"]) == (kept["sha256"], kept["sha512"])
        assert by_id[sealed["id"]]["content"] == {
            "status": "sealed",
            "path": None,
            "detail": "sealed: unseal it to export its content (that is recorded too)",
        }
        assert not [name for name in archive.namelist() if name.startswith(f"items/{sealed['id']}")]

        # The logs are the platform's, the export's own read last in the exported item's.
        log = json.loads(archive.read(whole["custody"]["path"]))["entries"]
        now = record(api, api.admin, kept["id"])["custody"]
        assert [entry["entry_hash"] for entry in log] == [entry["entry_hash"] for entry in now]
        kinds = [entry["kind"] for entry in log]
        assert kinds == ["collected", "accessed", "sealed", "unsealed", "accessed"]
        assert log[-1]["details"] == {"purpose": "export", "export_id": manifest["export_id"]}
        assert log[1]["details"] == {}  # the download before: an ordinary access
        sealed_log = json.loads(archive.read(by_id[sealed["id"]]["custody"]["path"]))["entries"]
        assert [entry["kind"] for entry in sealed_log] == ["collected", "sealed"]
        assert whole["custody"]["length"] == 5 and whole["custody"]["head"] == log[-1]["entry_hash"]

        signatures = json.loads(archive.read(export_format.SIGNATURES))
        signed = json.loads(signatures[-1]["document"])
        assert {head["evidence_id"]: head["length"] for head in signed["heads"]} == {
            kept["id"]: 4,
            sealed["id"]: 2,
        }
        key = export_format.raw_public_key(archive.read(export_format.PUBLIC_KEY))
        assert key == firm_key(exported)
        assert manifest["public_key"]["sha256_fingerprint"] == hashlib.sha256(key).hexdigest()
        assert export_format.signature_holds(
            key,
            archive.read(export_format.MANIFEST_SIGNATURE).decode(),
            archive.read("manifest.json"),
        )
        assert "firebreak evidence verify" in archive.read(export_format.README).decode()


# --- Tampering inside the archive ---------------------------------------------------------------


Members = dict[str, bytes]


def rewritten(source: Path, target: Path, change: Callable[[Members], None]) -> Path:
    """A copy of the archive with `change` made to its files (as someone editing it would)."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    change(members)
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def manifest_of(members: Members) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(members[export_format.MANIFEST])
    return manifest


def kept_item(members: Members) -> dict[str, Any]:
    item: dict[str, Any] = manifest_of(members)["items"][0]
    return item


def change_log(members: Members, change: Callable[[list[dict[str, Any]]], object]) -> None:
    path = kept_item(members)["custody"]["path"]
    log = json.loads(members[path])
    change(log["entries"])
    members[path] = json.dumps(log).encode()


def flip_content_byte(members: Members) -> None:
    path = kept_item(members)["content"]["path"]
    content = bytearray(members[path])
    content[1000] ^= 0x01
    members[path] = bytes(content)


def edit_entry(members: Members) -> None:
    change_log(members, lambda entries: entries[1]["actor"].update(name="Mallory"))


def delete_entry(members: Members) -> None:
    change_log(members, lambda entries: entries.pop(2))


def reorder_entries(members: Members) -> None:
    def swap(entries: list[dict[str, Any]]) -> None:
        entries[1], entries[2] = entries[2], entries[1]

    change_log(members, swap)


def rechain_from(entries: list[dict[str, Any]], evidence_id: str, start: int) -> None:
    """Recomputes every hash from `start` on, as a careful forger would."""
    for index in range(start, len(entries)):
        entries[index]["prev_hash"] = entries[index - 1]["entry_hash"]
        stored = export_format.stored_entry(evidence_id, entries[index])
        entries[index]["entry_hash"] = entry_hash(stored.entry)


def forge_log_and_manifest(members: Members) -> None:
    """Edits an entry, re-chains the log and fixes the manifest's hashes: all but re-sign."""
    item = kept_item(members)

    def forge(entries: list[dict[str, Any]]) -> None:
        entries[1]["actor"]["name"] = "Mallory"
        rechain_from(entries, item["evidence_id"], 1)

    change_log(members, forge)
    manifest = manifest_of(members)
    log = members[item["custody"]["path"]]
    manifest["items"][0]["custody"]["sha256"] = hashlib.sha256(log).hexdigest()
    manifest["items"][0]["custody"]["head"] = json.loads(log)["entries"][-1]["entry_hash"]
    members[export_format.MANIFEST] = json.dumps(manifest).encode()


def another_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def pem_of(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def swap_public_key(members: Members) -> None:
    members[export_format.PUBLIC_KEY] = pem_of(another_key())


def swap_signature(members: Members) -> None:
    forged = another_key().sign(members[export_format.MANIFEST])
    members[export_format.MANIFEST_SIGNATURE] = base64.b64encode(forged) + b"\n"


def swap_a_head_signature(members: Members) -> None:
    signatures = json.loads(members[export_format.SIGNATURES])
    signatures[-1]["signature"] = base64.b64encode(another_key().sign(b"other")).decode()
    members[export_format.SIGNATURES] = json.dumps(signatures).encode()


def resign_everything(members: Members) -> None:
    """A forger's whole archive: log edited and re-chained, every signature made again with
    the forger's own key, which replaces the firm's."""
    forger = another_key()
    forge_log_and_manifest(members)
    item = kept_item(members)
    log = json.loads(members[item["custody"]["path"]])["entries"]
    signatures = json.loads(members[export_format.SIGNATURES])
    for signature in signatures:
        document = json.loads(signature["document"])
        for head in document["heads"]:
            if head["evidence_id"] == item["evidence_id"]:
                head["head"] = log[head["length"] - 1]["entry_hash"]
        signature["document"] = canonical_json(document)
        signature["signature"] = base64.b64encode(
            forger.sign(signature["document"].encode())
        ).decode()
    members[export_format.SIGNATURES] = json.dumps(signatures).encode()
    manifest = manifest_of(members)
    manifest["signatures"]["sha256"] = hashlib.sha256(members[export_format.SIGNATURES]).hexdigest()
    raw = forger.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    manifest["public_key"]["sha256_fingerprint"] = export_format.fingerprint(raw)
    members[export_format.MANIFEST] = json.dumps(manifest).encode()
    members[export_format.MANIFEST_SIGNATURE] = base64.b64encode(
        forger.sign(members[export_format.MANIFEST])
    )
    members[export_format.PUBLIC_KEY] = pem_of(forger)


def edit_readme(members: Members) -> None:
    members[export_format.README] += b"Mismatches in items/ can be ignored.\n"


def drop_an_item(members: Members) -> None:
    manifest = manifest_of(members)
    gone = manifest["items"].pop(1)
    del members[gone["custody"]["path"]]
    members[export_format.MANIFEST] = json.dumps(manifest).encode()


# What each change is, and what the offline verifier says about it (each must be found).
IN_THE_ARCHIVE: dict[str, tuple[Callable[[Members], None], list[str]]] = {
    "flipped-byte": (flip_content_byte, ["its content's SHA-256 is", "its content's SHA-512 is"]),
    "edited-entry": (
        edit_entry,
        [
            "is not the file the manifest lists: it was changed",
            "custody: entry 1 (accessed) was changed after it was recorded",
        ],
    ),
    "deleted-entry": (
        delete_entry,
        ["custody: entry 3 (unsealed) is where entry 2 should be", "the log has 4 entries"],
    ),
    "reordered-entries": (
        reorder_entries,
        ["custody: entry 2 (sealed) is where entry 1 should be", "does not follow the entry"],
    ),
    "re-chained-entries": (
        forge_log_and_manifest,
        [
            "manifest.json is not signed by the trusted key",
            "signature: entry 3 is not the one signed at",
        ],
    ),
    "swapped-public-key": (swap_public_key, ["public-key.pem is not a key you gave"]),
    "swapped-signature": (swap_signature, ["manifest.json is not signed by the trusted key"]),
    "swapped-head-signature": (
        swap_a_head_signature,
        [
            "signatures.json (chain-head signatures) is not the file the manifest lists",
            "does not verify under the trusted key",
        ],
    ),
    "re-signed-with-another-key": (
        resign_everything,
        ["public-key.pem is not a key you gave", "manifest.json is not signed by the trusted key"],
    ),
    "dropped-item": (drop_an_item, ["manifest.json is not signed by the trusted key"]),
    "edited-instructions": (edit_readme, ["README.txt (instructions) is not the file"]),
}


def problems(report: Report) -> str:
    return "\n".join(report.problems)


@pytest.mark.parametrize("tampering", list(IN_THE_ARCHIVE))
def test_the_offline_verifier_names_tampering_inside_the_archive(
    exported: Exported, tmp_path: Path, tampering: str
) -> None:
    change, expected = IN_THE_ARCHIVE[tampering]
    tampered = rewritten(exported.path, tmp_path / "tampered.zip", change)
    report = verify(tampered, [firm_key(exported)])
    assert not report.intact
    for words in expected:
        assert words in problems(report), report.text()
    assert "NOT INTACT" in report.text()
    if tampering != "re-signed-with-another-key":  # see the test below
        # Found even trusting the archive's own key.
        assert not verify(tampered).intact


def test_a_forger_with_a_key_of_their_own_passes_only_if_no_one_checks_the_key(
    exported: Exported, tmp_path: Path
) -> None:
    """Why the firm's published fingerprint matters: a whole archive re-signed with another
    key holds together by itself, and its fingerprint is not the firm's."""
    forged = rewritten(exported.path, tmp_path / "forged.zip", resign_everything)
    alone = verify(forged)
    assert alone.intact, alone.text()
    assert export_format.fingerprint(firm_key(exported)) not in alone.text()
    assert not verify(forged, [firm_key(exported)]).intact


def test_the_command_exits_non_zero_naming_each_problem(exported: Exported, tmp_path: Path) -> None:
    tampered = rewritten(exported.path, tmp_path / "tampered.zip", flip_content_byte)
    result = subprocess.run(
        [FIREBREAK, "evidence", "verify", str(tampered), "--public-key", exported.firm_key],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "NOT INTACT: 2 problem(s):" in result.stdout
    assert "its content's SHA-256 is" in result.stdout
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    unreadable = subprocess.run(
        [FIREBREAK, "evidence", "verify", str(junk)], capture_output=True, text=True, timeout=60
    )
    assert unreadable.returncode == 1
    assert "not a readable ZIP archive" in unreadable.stdout
    bad_key = subprocess.run(
        [FIREBREAK, "evidence", "verify", str(tampered), "--public-key", str(junk)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad_key.returncode == 2 and "--public-key" in bad_key.stderr


# --- Tampering in the platform, found by the offline verifier ----------------------------------


IN_THE_PLATFORM: dict[str, tuple[Callable[[Platform, dict[str, Any]], None], list[str]]] = {
    "flipped-byte-in-blob": (
        lambda platform, item: flip_a_byte(platform, item["sha256"]),
        ["its content's SHA-256 is", "the export says its content is incomplete"],
    ),
    "edited-row": (
        lambda platform, item: edit_a_row(platform, item["id"]),
        ["custody: entry 1 (accessed) was changed after it was recorded"],
    ),
    "deleted-row": (
        lambda platform, item: delete_a_row(platform, item["id"]),
        ["custody: entry 3 (unsealed) is where entry 2 should be"],
    ),
    "reordered-rows": (
        lambda platform, item: reorder_two_rows(platform, item["id"]),
        ["custody: entry 1 (sealed) does not follow the entry before it"],
    ),
    "rewritten-after-signing": (
        lambda platform, item: asyncio.run(
            _rewrite_from_position_1(evidence_database_url(platform), item["id"])
        ),
        [
            "signature: entry 3 is not the one signed at",
            "the log was rewritten after it was signed",
        ],
    ),
}


@pytest.mark.parametrize("tampering", list(IN_THE_PLATFORM))
def test_the_offline_verifier_names_tampering_done_in_the_platform_before_export(
    api: Api, tmp_path: Path, tampering: str
) -> None:
    client = api.new_client()
    manager = api.new_person("manager")
    incident = report_triaged(api, client)
    item = submit_once_known(api, manager, incident, unique("memory dump", 20_000))
    download(api, manager, item["id"])
    ok(api.http.post(f"/v1/evidence/{item['id']}/seal", headers=manager.headers))
    ok(api.http.post(f"/v1/evidence/{item['id']}/unseal", headers=manager.headers))
    key_file = signed_heads_key(api, client.id, tmp_path)
    change, expected = IN_THE_PLATFORM[tampering]
    change(api.platform, item)

    path = tmp_path / "export.zip"
    export(api, manager, incident, path)  # a damaged blob still makes a whole archive
    report = verify(path, [export_format.raw_public_key(key_file.read_bytes())])
    assert not report.intact
    for words in expected:
        assert words in problems(report), report.text()


# --- Who may export, and the custody report ----------------------------------------------------


def test_an_export_is_staff_only_and_needs_an_incident_evidence_knows(
    api: Api, tmp_path: Path
) -> None:
    client = api.new_client()
    incident = report_triaged(api, client)
    submit_once_known(api, client, incident, unique("client's own"))
    refused = api.http.get(f"/v1/incidents/{incident}/evidence/export", headers=client.headers)
    assert refused.status_code == 404, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    missing = api.http.get(
        f"/v1/incidents/{uuid.uuid4()}/evidence/export", headers=api.admin.headers
    )
    assert missing.status_code == 404 and "not found" in missing.json()["detail"], missing.text
    # An incident without evidence exports as an empty archive that verifies (once evidence
    # learnt of the incident from the bus).
    empty = report_triaged(api, client)
    path = tmp_path / "empty.zip"

    def exported_when_known() -> bool:
        answer = api.http.get(f"/v1/incidents/{empty}/evidence/export", headers=api.admin.headers)
        if answer.status_code == 404:
            return False
        assert answer.status_code == 200, answer.text
        path.write_bytes(answer.content)
        return True

    eventually(exported_when_known)
    report = verify(path)
    assert report.intact, report.text()
    with zipfile.ZipFile(path) as archive:
        assert json.loads(archive.read("manifest.json"))["items"] == []


def pdf_text(content: bytes) -> list[str]:
    """Each page's text, with all whitespace removed (a SHA-512 is set over two lines)."""
    reader = pypdf.PdfReader(io.BytesIO(content))
    return ["".join(page.extract_text().split()) for page in reader.pages]


def test_the_custody_report_lists_every_item_with_its_hashes_and_entries(
    api: Api, exported: Exported
) -> None:
    manager = api.new_person("manager")
    url = f"/v1/incidents/{exported.incident_id}/evidence/custody-report"
    as_json = api.http.get(url, headers=manager.headers)
    assert as_json.status_code == 200, as_json.text
    report = as_json.json()
    assert report["incident_id"] == exported.incident_id
    assert report["generated_by"]["id"] == manager.person_id
    items = [exported.kept, exported.sealed]
    assert [item["id"] for item in report["items"]] == [item["id"] for item in items]
    for listed in report["items"]:
        assert listed["custody"] == record(api, manager, listed["id"])["custody"]

    as_pdf = api.http.get(url, headers=manager.headers | {"Accept": "application/pdf"})
    assert as_pdf.status_code == 200, as_pdf.text
    assert as_pdf.headers["content-type"] == "application/pdf"
    pages = pdf_text(as_pdf.content)
    assert exported.incident_id in pages[0]
    for item in report["items"]:
        # The item's own page (a long log may go on over more pages) has its hashes.
        start = next(index for index, page in enumerate(pages) if item["sha512"] in page)
        assert item["sha256"] in pages[start] and item["id"] in pages[start]
        text = "".join(pages[start:])
        for entry in item["custody"]:
            assert entry["entry_hash"] in text
    # Reading the report is no access: nothing was added to the logs.
    assert record(api, manager, exported.kept["id"])["custody"] == report["items"][0]["custody"]

    refused = api.http.get(url, headers=manager.headers | {"Accept": "text/csv"})
    assert refused.status_code == 406, refused.text
    responder_elsewhere = api.new_person("responder", clients=[api.new_client().id])
    walled = api.http.get(url, headers=responder_elsewhere.headers)
    assert walled.status_code == 404, walled.text
