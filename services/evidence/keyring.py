"""Evidence's keys: the master key that wraps every blob's data key and the Ed25519 key that
signs chain heads, read from settings; the check that the master key is the one the stored
blobs were wrapped with; its rotation (`firebreak evidence rotate-master-key`); and the
signing key's public half, for the firm to publish (`firebreak evidence public-key`)."""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.database import create_engine, reading
from firebreak.settings import Settings, SettingsError, key_bytes
from services.evidence import export_format
from services.evidence.blob_crypto import MasterKey, MasterKeyMismatch
from services.evidence.custody_signatures import Signer
from services.evidence.models import blobs

MASTER_KEY = "FIREBREAK_EVIDENCE_MASTER_KEY"
SIGNING_KEY = "FIREBREAK_EVIDENCE_SIGNING_KEY"


def _required(variable: str, value: str | None, what: str) -> bytes:
    if not value:
        raise SettingsError(
            f"{variable} is required: {what}, base64 of 32 random bytes (`openssl rand -base64 "
            "32`); `make run` and the tests make one, a deployment takes it from its Secret"
        )
    return key_bytes(variable, value)


def master_key(settings: Settings) -> MasterKey:
    return MasterKey(
        _required(MASTER_KEY, settings.evidence_master_key, "the key that wraps evidence keys")
    )


def signer(settings: Settings) -> Signer:
    return Signer(
        _required(SIGNING_KEY, settings.evidence_signing_key, "the Ed25519 custody signing key")
    )


async def check_master_key(engine: AsyncEngine, key: MasterKey) -> None:
    """Refuses to start (SettingsError, one line) when stored blobs were wrapped with another
    master key: serving would only fail on every read."""
    async with reading(engine) as connection:
        others = (
            await connection.execute(
                select(blobs.c.master_key_id, func.count())
                .where(blobs.c.wrapped_key.is_not(None), blobs.c.master_key_id != key.key_id)
                .group_by(blobs.c.master_key_id)
            )
        ).all()
    if others:
        found = ", ".join(f"{count} with key {key_id}" for key_id, count in others)
        raise SettingsError(
            f"{MASTER_KEY} does not match the stored evidence: it is key {key.key_id}, and "
            f"blobs are wrapped {found}. Configure the key they were stored with (or finish "
            "its rotation); evidence cannot be decrypted with this one"
        )


async def rotate_master_key(connection: AsyncConnection, *, old: MasterKey, new: MasterKey) -> int:
    """Re-wraps every blob's data key from `old` to `new`, in the caller's transaction: all or
    nothing. No blob file is read or written. Returns how many keys were re-wrapped."""
    rows = (
        await connection.execute(
            select(blobs.c.sha256, blobs.c.wrapped_key, blobs.c.master_key_id).where(
                blobs.c.wrapped_key.is_not(None)
            )
        )
    ).all()
    for row in rows:
        data_key = old.unwrap(row.wrapped_key, key_id=row.master_key_id)
        await connection.execute(
            update(blobs)
            .where(blobs.c.sha256 == row.sha256)
            .values(wrapped_key=new.wrap(data_key), master_key_id=new.key_id)
        )
    return len(rows)


def rotate_master_key_command(new_key: str) -> None:
    """`firebreak evidence rotate-master-key`: the new key (base64 of 32 bytes) on standard
    input, the current one in FIREBREAK_EVIDENCE_MASTER_KEY. Stop evidence first; start it
    again with the new key once this has succeeded."""
    settings = Settings.from_environment()

    async def rotate() -> int:
        old = master_key(settings)
        new = MasterKey(key_bytes("the new master key (standard input)", new_key))
        engine = create_engine(settings.database_url("evidence"))
        try:
            async with engine.begin() as connection:
                return await rotate_master_key(connection, old=old, new=new)
        finally:
            await engine.dispose()

    try:
        count = asyncio.run(rotate())
    except (SettingsError, MasterKeyMismatch) as error:
        print(f"firebreak evidence: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    print(
        f"re-wrapped {count} data keys; set {MASTER_KEY} to the new key and start evidence",
        flush=True,
    )


def public_key_command() -> None:
    """`firebreak evidence public-key`: the signing key's public half as PEM, and its
    fingerprint, for the firm to publish: what an export's verifier compares its key with."""
    try:
        public_key = signer(Settings.from_environment()).public_key
    except SettingsError as error:
        print(f"firebreak evidence: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    raw = export_format.raw_public_key(public_key.encode())
    sys.stdout.write(export_format.public_key_pem(raw).decode())
    print(f"SHA-256 fingerprint: {export_format.fingerprint(raw)}", flush=True)
