"""What an evidence export holds and how its parts are encoded: shared by the service that
writes it (export_archive.py) and the offline verifier that checks it (export_verifier.py).
Pure: no database, no server.

A ZIP (ZIP64 where needed), format `firebreak-evidence-export/1`:

    README.txt                 how to check it, by hand or with `firebreak evidence verify`
    items/<evidence id>/<name> each item's content, decrypted, exactly as collected
    custody/<evidence id>.json {"evidence_id", "entries": [each custody entry, in order]}
    signatures.json            the kept Ed25519 signatures of the client's chain heads that list
                               any of these items, oldest first
    public-key.pem             the firm's Ed25519 public key (SubjectPublicKeyInfo, PEM)
    manifest.json              the items with their hashes as fixed at collection, what became
                               of each one's content, and the SHA-256 of every other file
                               (docs/architecture.md, "Evidence export", has its fields)
    manifest.sig               base64 of the Ed25519 signature of manifest.json's bytes

A custody entry is {"position", "kind", "actor": {"id", "kind", "name"}, "recorded_at",
"details", "prev_hash", "entry_hash"}: the fields custody_chain.entry_hash covers, with the
evidence id from the file, so the chain can be recomputed from the file alone.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)

from services.evidence.custody_chain import Actor, Entry, StoredEntry, timestamp

FORMAT = "firebreak-evidence-export/1"
README = "README.txt"
MANIFEST = "manifest.json"
MANIFEST_SIGNATURE = "manifest.sig"
PUBLIC_KEY = "public-key.pem"
SIGNATURES = "signatures.json"

# What became of an item's content in the archive (the manifest's content.status).
INCLUDED = "included"  # all of it, at content.path
INCOMPLETE = "incomplete"  # reading it back failed part-way: content.path holds what was read
SEALED = "sealed"  # not exported: sealed items are not read until unsealed
DISPOSED = "disposed"  # not exported: gone
UNAVAILABLE = "unavailable"  # not exported: its stored content could not be read at all

README_TEXT = f"""\
Evidence export ({FORMAT})

manifest.json lists every item with its SHA-256 and SHA-512 as fixed at collection, the path of
its content under items/, and its custody log under custody/ with that file's SHA-256;
manifest.sig is the firm's Ed25519 signature of manifest.json, made with the key in
public-key.pem. Each custody log is a hash chain: every entry's entry_hash is the SHA-256 of the
canonical JSON (keys sorted, no whitespace) of its fields, prev_hash being the hash of the entry
before it (64 zeros for the first). signatures.json holds the signatures the firm made of its
chain heads over time, so a log rewritten after one of them no longer matches it.

To check all of it offline: firebreak evidence verify <this file> --public-key <the firm's key>
Without Firebreak: sha256sum/sha512sum the items against the manifest and the first custody
entry (`collected`), and check manifest.sig with any Ed25519 implementation.

A key inside the archive proves nothing by itself: compare its SHA-256 fingerprint (in
manifest.json, public_key) with the one the firm publishes.
"""

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def content_path(evidence_id: str, filename: str) -> str:
    """Where an item's content goes: under its own id, so names never clash, with its
    filename made safe to unpack anywhere (no directories, no control characters)."""
    name = _UNSAFE.sub("_", unicodedata.normalize("NFC", filename)).strip(" .") or "content"
    return f"items/{evidence_id}/{name[:200]}"


def custody_path(evidence_id: str) -> str:
    return f"custody/{evidence_id}.json"


def entry_json(stored: StoredEntry) -> dict[str, Any]:
    entry = stored.entry
    return {
        "position": entry.position,
        "kind": entry.kind,
        "actor": {"id": entry.actor.id, "kind": entry.actor.kind, "name": entry.actor.name},
        "recorded_at": timestamp(entry.recorded_at),
        "details": entry.details,
        "prev_hash": entry.prev_hash,
        "entry_hash": stored.entry_hash,
    }


def stored_entry(evidence_id: str, value: Mapping[str, Any]) -> StoredEntry:
    """An entry as entry_json wrote it; ValueError (or KeyError, TypeError) if it is not one."""
    actor = value["actor"]
    details = value["details"]
    if not isinstance(details, Mapping):
        raise ValueError("details must be an object")
    return StoredEntry(
        Entry(
            evidence_id=evidence_id,
            position=int(value["position"]),
            kind=str(value["kind"]),
            actor=Actor(id=str(actor["id"]), kind=str(actor["kind"]), name=str(actor["name"])),
            recorded_at=datetime.fromisoformat(value["recorded_at"]),
            details=details,
            prev_hash=str(value["prev_hash"]),
        ),
        str(value["entry_hash"]),
    )


def fingerprint(raw_key: bytes) -> str:
    """A public key's SHA-256 fingerprint: hex of the SHA-256 of its raw 32 bytes."""
    return hashlib.sha256(raw_key).hexdigest()


def public_key_pem(raw_key: bytes) -> bytes:
    key = Ed25519PublicKey.from_public_bytes(raw_key)
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def raw_public_key(text: bytes) -> bytes:
    """The raw 32 bytes of an Ed25519 public key given as PEM or as base64 of the raw bytes
    (as custody signatures keep it); ValueError otherwise."""
    if b"-----BEGIN" in text:
        try:
            key = load_pem_public_key(text)
        except UnsupportedAlgorithm as error:
            raise ValueError(str(error)) from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    raw = base64.b64decode(text.strip(), validate=True)
    Ed25519PublicKey.from_public_bytes(raw)  # ValueError unless 32 bytes
    return raw


def signature_holds(raw_key: bytes, signature: str, document: bytes) -> bool:
    """Whether `signature` (base64) is the key's Ed25519 signature of `document`."""
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(base64.b64decode(signature), document)
    except (InvalidSignature, ValueError):
        return False
    return True
