"""`firebreak evidence verify <zip>`: checks an evidence export (export_format.py) offline, with
no server and no database, and names every problem it finds.

It checks that manifest.json is signed by the firm's key; that every file is the one the
manifest lists (SHA-256); that each item's content hashes (SHA-256, SHA-512, size) to what its
custody log's `collected` entry fixed; that each custody log chains (custody_chain.py, the code
evidence itself verifies with) and ends at the head the item recorded; and that every
chain-head signature in the archive holds and agrees with the logs. The key in the archive
proves nothing by itself: give the firm's published key with --public-key, or compare the
fingerprint printed with the one the firm publishes.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.evidence import export_format as fmt
from services.evidence.custody_chain import (
    FIXED_AT_COLLECTION,
    RecordedFacts,
    StoredEntry,
    chain_differences,
)

READ_BYTES = 1024 * 1024


@dataclass(frozen=True)
class SignedHead:
    signed_at: str
    length: int
    head: str


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # what was found, for the reader

    @property
    def intact(self) -> bool:
        return not self.problems

    def text(self) -> str:
        if self.intact:
            verdict = ["INTACT: every check passed."]
        else:
            verdict = [f"NOT INTACT: {len(self.problems)} problem(s):"]
            verdict += [f"  - {problem}" for problem in self.problems]
        return "\n".join([*self.lines, "", *verdict])


def verify(path: Path, public_keys: Sequence[bytes] = ()) -> Report:
    """Checks the export at `path`; `public_keys` are the raw Ed25519 keys to trust (none:
    the one in the archive)."""
    report = Report(lines=[f"Evidence export {path}"])
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        report.problems.append(f"not a readable ZIP archive: {error}")
        return report
    with archive:
        _Check(archive, public_keys, report).run()
    return report


class _Check:
    def __init__(
        self, archive: zipfile.ZipFile, public_keys: Sequence[bytes], report: Report
    ) -> None:
        self.archive = archive
        self.given = list(public_keys)
        self.keys = list(public_keys)
        self.report = report
        self.expected = {fmt.MANIFEST, fmt.MANIFEST_SIGNATURE, fmt.PUBLIC_KEY}

    def problem(self, text: str) -> None:
        self.report.problems.append(text)

    def line(self, text: str) -> None:
        self.report.lines.append(text)

    def read(self, name: str) -> bytes | None:
        try:
            return self.archive.read(name)
        except KeyError:
            self.problem(f"{name} is missing")
        except (zipfile.BadZipFile, OSError) as error:  # e.g. a CRC that does not match
            self.problem(f"{name} cannot be read: {error}")
        return None

    def run(self) -> None:
        names = self.archive.namelist()
        for name, count in Counter(names).items():
            if count > 1:
                self.problem(f"the archive holds {count} files named {name}")
        self.check_key()
        manifest = self.check_manifest()
        if manifest is None:
            return
        self.file(manifest.get("readme") or {}, "instructions")
        heads = self.check_signatures(manifest)
        items = manifest.get("items")
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            self.problem(f"{fmt.MANIFEST} does not list its items")
            return
        for item in items:
            self.check_item(manifest, item, heads.get(str(item.get("evidence_id")), []))
        for name in names:
            if name not in self.expected:
                self.problem(f"{name} is in the archive but not in the manifest")

    def check_key(self) -> None:
        text = self.read(fmt.PUBLIC_KEY)
        try:
            archived = fmt.raw_public_key(text) if text is not None else None
        except ValueError as error:
            self.problem(f"{fmt.PUBLIC_KEY} is not an Ed25519 public key: {error}")
            archived = None
        if self.given:
            for key in self.given:
                self.line(f"  trusted key   SHA-256 fingerprint {fmt.fingerprint(key)} (given)")
            if archived is not None and archived not in self.given:
                self.problem(
                    f"{fmt.PUBLIC_KEY} is not a key you gave: its fingerprint is "
                    f"{fmt.fingerprint(archived)}"
                )
        elif archived is not None:
            self.keys = [archived]
            self.line(
                f"  signing key   SHA-256 fingerprint {fmt.fingerprint(archived)}, from the "
                "archive: compare it with the fingerprint the firm publishes (or pass its key "
                "with --public-key)"
            )

    def signed(self, signature: str, document: bytes) -> bool:
        return any(fmt.signature_holds(key, signature, document) for key in self.keys)

    def check_manifest(self) -> dict[str, Any] | None:
        data = self.read(fmt.MANIFEST)
        signature = self.read(fmt.MANIFEST_SIGNATURE)
        if data is None:
            return None
        if signature is not None and not self.signed(signature.decode("ascii", "replace"), data):
            self.problem(
                f"{fmt.MANIFEST} is not signed by the trusted key ({fmt.MANIFEST_SIGNATURE} does "
                "not verify): the manifest or its signature was changed after export"
            )
        try:
            manifest = json.loads(data)
        except ValueError as error:
            self.problem(f"{fmt.MANIFEST} is not JSON: {error}")
            return None
        if not isinstance(manifest, dict) or manifest.get("format") != fmt.FORMAT:
            self.problem(f"{fmt.MANIFEST} is not a {fmt.FORMAT} manifest")
            return None
        self.line(
            f"  incident      {manifest.get('incident_id')} of client {manifest.get('client_id')}"
        )
        exporter = manifest.get("exported_by") or {}
        self.line(
            f"  exported      {manifest.get('exported_at')} by {exporter.get('name')} "
            f"({exporter.get('kind')}), export {manifest.get('export_id')}"
        )
        stated = (manifest.get("public_key") or {}).get("sha256_fingerprint")
        if self.keys and stated not in {fmt.fingerprint(key) for key in self.keys}:
            self.problem(
                f"{fmt.MANIFEST} names the signing key {stated}, which is not the trusted key"
            )
        return manifest

    def file(self, reference: Mapping[str, Any], what: str) -> bytes | None:
        """A file the manifest lists with its SHA-256, if it is there and unchanged."""
        name = str(reference.get("path"))
        self.expected.add(name)
        data = self.read(name)
        if data is None:
            return None
        if hashlib.sha256(data).hexdigest() != reference.get("sha256"):
            self.problem(f"{name} ({what}) is not the file the manifest lists: it was changed")
        return data

    def check_signatures(self, manifest: Mapping[str, Any]) -> dict[str, list[SignedHead]]:
        """The heads each item was signed with, by the signatures that hold."""
        heads: dict[str, list[SignedHead]] = defaultdict(list)
        data = self.file(manifest.get("signatures") or {}, "chain-head signatures")
        if data is None:
            return heads
        try:
            signatures = json.loads(data)
            assert isinstance(signatures, list)
        except (ValueError, AssertionError):
            self.problem(f"{fmt.SIGNATURES} is not a list of signatures")
            return heads
        for signature in signatures:
            signed_at = signature.get("signed_at")
            document = str(signature.get("document"))
            if not self.signed(str(signature.get("signature")), document.encode("utf-8")):
                self.problem(
                    f"{fmt.SIGNATURES}: the signature of the chain heads at {signed_at} does not "
                    "verify under the trusted key"
                )
                continue
            try:
                signed = json.loads(document)
                for head in signed["heads"]:
                    heads[head["evidence_id"]].append(
                        SignedHead(str(signed_at), int(head["length"]), str(head["head"]))
                    )
            except (ValueError, KeyError, TypeError):
                self.problem(f"{fmt.SIGNATURES}: the document signed at {signed_at} is malformed")
                continue
            if signed.get("client_id") != manifest.get("client_id"):
                self.problem(
                    f"{fmt.SIGNATURES}: the heads signed at {signed_at} are another client's"
                )
        return heads

    def check_item(
        self, manifest: Mapping[str, Any], item: Mapping[str, Any], heads: list[SignedHead]
    ) -> None:
        evidence_id = str(item.get("evidence_id"))
        label = f"{item.get('filename')} ({evidence_id})"
        before, lines = len(self.report.problems), len(self.report.lines)
        entries = self.check_custody(manifest, item)
        if entries is not None:
            self.check_signed_heads(entries, heads)
            self.check_content(item, entries)
        found = self.report.problems[before:]
        self.report.problems[before:] = [f"{label}: {problem}" for problem in found]
        self.report.lines.insert(lines, f"  {'ok  ' if not found else 'FAIL'}          {label}")

    def check_custody(
        self, manifest: Mapping[str, Any], item: Mapping[str, Any]
    ) -> list[StoredEntry] | None:
        custody = item.get("custody") or {}
        data = self.file(custody, "custody log")
        if data is None:
            return None
        evidence_id = str(item.get("evidence_id"))
        try:
            log = json.loads(data)
            if log["evidence_id"] != evidence_id:
                self.problem(f"{custody.get('path')} is the custody log of {log['evidence_id']}")
            entries = [fmt.stored_entry(evidence_id, entry) for entry in log["entries"]]
        except (ValueError, KeyError, TypeError) as error:
            self.problem(f"{custody.get('path')} is not a custody log: {error!r}")
            return None
        facts = {fact: item.get(fact) for fact in FIXED_AT_COLLECTION}
        facts["incident_id"] = manifest.get("incident_id")
        recorded = RecordedFacts(
            length=int(custody.get("length", -1)), head=str(custody.get("head")), fixed=facts
        )
        for difference in chain_differences(entries, recorded):
            self.problem(f"custody: {difference}")
        return entries

    def check_signed_heads(self, entries: list[StoredEntry], heads: list[SignedHead]) -> None:
        at_position = {stored.entry.position: stored.entry_hash for stored in entries}
        for signed in heads:
            if at_position.get(signed.length - 1) != signed.head:
                self.problem(
                    f"signature: entry {signed.length - 1} is not the one signed at "
                    f"{signed.signed_at}: the log was rewritten after it was signed"
                )
        if heads:
            newest = max(heads, key=lambda signed: signed.signed_at)
            self.line(
                f"                entries 0-{newest.length - 1} of {len(entries)} are covered by "
                f"the chain heads signed at {newest.signed_at}"
            )

    def check_content(self, item: Mapping[str, Any], entries: list[StoredEntry]) -> None:
        content = item.get("content") or {}
        status, path = content.get("status"), content.get("path")
        kinds = [stored.entry.kind for stored in entries]
        if path is None:
            seals = [kind for kind in kinds if kind in ("sealed", "unsealed")]
            if status == fmt.DISPOSED and "disposed" in kinds:
                return
            if status == fmt.SEALED and seals[-1:] == ["sealed"]:
                return
            self.problem(
                f"its content is not in the archive ({status}: {content.get('detail')}) and its "
                "custody log does not say it was sealed or disposed of"
            )
            return
        self.expected.add(str(path))
        collected = entries[0].entry.details if entries else {}
        try:
            actual = self.digests(str(path))
        except KeyError:
            self.problem(f"its content {path} is missing")
            return
        except (zipfile.BadZipFile, OSError) as error:
            self.problem(f"its content {path} cannot be read: {error}")
            return
        for name, found, fact in zip(
            ("SHA-256", "SHA-512", "size"), actual, ("sha256", "sha512", "size_bytes"), strict=True
        ):
            if found != collected.get(fact):
                self.problem(
                    f"its content's {name} is {found}; {collected.get(fact)} was fixed at "
                    "collection"
                )
        if status != fmt.INCLUDED:
            self.problem(f"the export says its content is {status}: {content.get('detail')}")

    def digests(self, name: str) -> tuple[str, str, int]:
        sha256, sha512, size = hashlib.sha256(), hashlib.sha512(), 0
        with self.archive.open(name) as member:
            while piece := member.read(READ_BYTES):
                sha256.update(piece)
                sha512.update(piece)
                size += len(piece)
        return sha256.hexdigest(), sha512.hexdigest(), size


def verify_command(path: str, public_keys: Sequence[str]) -> None:
    """`firebreak evidence verify`: prints the report; exits 0 when intact, 1 when not, 2 when
    a key given cannot be read."""
    keys = []
    for key_path in public_keys:
        try:
            keys.append(fmt.raw_public_key(Path(key_path).read_bytes()))
        except (OSError, ValueError) as error:
            print(f"firebreak evidence verify: --public-key {key_path}: {error}", file=sys.stderr)
            raise SystemExit(2) from None
    report = verify(Path(path), keys)
    print(report.text(), flush=True)
    raise SystemExit(0 if report.intact else 1)
