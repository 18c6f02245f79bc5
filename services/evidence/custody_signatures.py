"""Ed25519 signatures of each client's custody chain heads, so that someone outside the firm can
check that no entry was rewritten after it was signed (an export carries them with the public
key).

The signed document is canonical JSON (custody_chain.canonical_json) of

    {"format": "firebreak-custody-heads/1", "client_id": …, "signed_at": <UTC, Z>,
     "heads": [{"evidence_id": …, "length": <entries>, "head": <last entry_hash>}, …]}

with every item of the client, ordered by evidence_id. The signature is Ed25519 (RFC 8032) over
the document's UTF-8 bytes; it and the raw 32-byte public key are kept in standard base64. A
chain is consistent with a signature when its entry at position length - 1 still has that hash.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.evidence.custody_chain import canonical_json, timestamp
from services.evidence.models import custody_signatures, items

DOCUMENT_FORMAT = "firebreak-custody-heads/1"


class Signer:
    def __init__(self, seed: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key = base64.b64encode(raw).decode()

    def sign(self, document: str) -> str:
        return base64.b64encode(self._key.sign(document.encode("utf-8"))).decode()


def signature_holds(row: Row[Any]) -> bool:
    """Whether the stored signature is valid for the stored document under its public key."""
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(row.public_key))
        key.verify(base64.b64decode(row.signature), row.document.encode("utf-8"))
    except (InvalidSignature, ValueError):
        return False
    return True


def signed_head(row: Row[Any], evidence_id: str) -> tuple[int, str] | None:
    """(length, head) the signature's document gives the item; None if it does not list it."""
    try:
        heads = json.loads(row.document)["heads"]
    except (ValueError, KeyError, TypeError):
        return None
    for head in heads:
        if isinstance(head, dict) and head.get("evidence_id") == evidence_id:
            return int(head["length"]), str(head["head"])
    return None


async def _heads(connection: AsyncConnection, client_id: str) -> list[dict[str, Any]]:
    rows = await connection.execute(
        select(items.c.id, items.c.custody_length, items.c.custody_head)
        .where(items.c.client_id == client_id, items.c.custody_length > 0)
        .order_by(items.c.id)
    )
    return [
        {"evidence_id": row.id, "length": row.custody_length, "head": row.custody_head}
        for row in rows
    ]


async def latest(connection: AsyncConnection, client_id: str) -> Row[Any] | None:
    query = (
        select(custody_signatures)
        .where(custody_signatures.c.client_id == client_id)
        .order_by(custody_signatures.c.signed_at.desc(), custody_signatures.c.id)
        .limit(1)
    )
    return (await connection.execute(query)).first()


async def sign_client(
    connection: AsyncConnection, *, signer: Signer, client_id: str, now: datetime
) -> Row[Any]:
    """Signs the client's chain heads as they are now, and keeps the signature."""
    document = canonical_json(
        {
            "format": DOCUMENT_FORMAT,
            "client_id": client_id,
            "signed_at": timestamp(now),
            "heads": await _heads(connection, client_id),
        }
    )
    row = (
        await connection.execute(
            custody_signatures.insert()
            .returning(*custody_signatures.c)
            .values(
                id=str(uuid.uuid4()),
                client_id=client_id,
                signed_at=now,
                document=document,
                signature=signer.sign(document),
                public_key=signer.public_key,
            )
        )
    ).one()
    return row


async def sign_changed(connection: AsyncConnection, *, signer: Signer, now: datetime) -> int:
    """Signs the heads of every client whose chains changed since its latest signature (or
    that has none yet); returns how many clients were signed."""
    clients = (await connection.execute(select(items.c.client_id).distinct())).scalars().all()
    signed = 0
    for client_id in sorted(clients):
        previous = await latest(connection, client_id)
        if previous is not None and json.loads(previous.document)["heads"] == await _heads(
            connection, client_id
        ):
            continue
        await sign_client(connection, signer=signer, client_id=client_id, now=now)
        signed += 1
    return signed


async def signatures(connection: AsyncConnection, client_id: str) -> Sequence[Row[Any]]:
    query = (
        select(custody_signatures)
        .where(custody_signatures.c.client_id == client_id)
        .order_by(custody_signatures.c.signed_at, custody_signatures.c.id)
    )
    return (await connection.execute(query)).all()
