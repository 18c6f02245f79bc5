"""Items stored in the database before the blob store and custody logs (revision 0001) survive
the upgrade: 0002 keeps their records and content, and evidence, which alone holds the master
key, moves the content into the encrypted blob store when it starts, opening each item's
custody log with its collection as recorded then. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.events.v1 import events_pb2
from firebreak.database import create_engine
from firebreak.migrations import BASELINE, migrate, upgrade
from firebreak.outbox import Outbox
from services.evidence import custody_log, legacy_import, models, verification
from services.evidence.blob_crypto import MasterKey
from services.evidence.blob_store import BlobStore
from tests.conftest import BACKENDS

COLLECTED_AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres")("evidence_legacy")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'evidence.db'}"
    made = create_engine(url)
    yield made
    await made.dispose()


async def store_the_old_way(engine: AsyncEngine, content: bytes, *, sha256: str) -> str:
    """An item as evidence stored it at revision 0001: its bytes in the row."""
    async with engine.begin() as connection:
        await connection.run_sync(upgrade, "evidence", BASELINE)
        reflected = MetaData()
        await connection.run_sync(reflected.reflect)
        evidence_items = reflected.tables["evidence_items"]
        await connection.execute(
            evidence_items.insert().values(
                id="0b9e8c8e-5b7c-4a57-9d8f-1f0f6d1e2a01",
                incident_id="5b3f1c6a-1111-4c1e-9f1e-000000000001",
                client_id="c1",
                filename="auth.log",
                description="sshd log",
                collected_by="Grace Hopper",
                sha256=sha256,
                size_bytes=len(content),
                content=content,
                collected_at=COLLECTED_AT,
            )
        )
    return "0b9e8c8e-5b7c-4a57-9d8f-1f0f6d1e2a01"


async def test_items_stored_in_the_database_move_into_the_blob_store_when_evidence_starts(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    content = os.urandom(5000)
    evidence_id = await store_the_old_way(
        engine, content, sha256=hashlib.sha256(content).hexdigest()
    )
    await migrate(engine, "evidence")
    store = BlobStore(tmp_path / "store", MasterKey(os.urandom(32)))

    assert await legacy_import.import_legacy(engine, store) == 1
    assert await legacy_import.import_legacy(engine, store) == 0  # once only

    async with engine.connect() as connection:
        item = (
            await connection.execute(select(models.items).where(models.items.c.id == evidence_id))
        ).one()
        blob = (
            await connection.execute(
                select(models.blobs).where(models.blobs.c.sha256 == item.sha256)
            )
        ).one()
        entries = [
            custody_log.stored_entry(row)
            for row in await custody_log.entry_rows(connection, evidence_id)
        ]
        waiting = (await connection.execute(select(models.legacy_contents))).all()
    assert waiting == []
    assert item.sha512 == hashlib.sha512(content).hexdigest()
    assert (item.filename, item.collector_name, item.size_bytes) == (
        "auth.log",
        "Grace Hopper",
        len(content),
    )
    chunks = store.content(
        item.sha256, wrapped_key=blob.wrapped_key, master_key_id=blob.master_key_id
    )
    assert b"".join(chunks) == content
    [collected] = entries
    assert collected.entry.kind == "collected"
    assert collected.entry.actor.name == "Grace Hopper"
    assert collected.entry.details["collected_at"] == "2026-03-01T09:30:00.000000Z"
    assert "held in the database" in collected.entry.details["imported"]

    checked = await verification.verify(
        engine=engine,
        outbox=Outbox(engine, models.outbox),
        store=store,
        client_id=None,
        evidence_id=evidence_id,
        actor=events_pb2.Actor(id="firebreak", kind="system", name="Firebreak"),
        found_by="verify",
        verify_interval=timedelta(days=1),
    )
    assert (checked.result, checked.differences) == ("intact", [])


async def test_content_that_no_longer_matched_its_digest_is_kept_for_verify_to_report(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    content = os.urandom(100)
    recorded = hashlib.sha256(b"what was collected").hexdigest()
    evidence_id = await store_the_old_way(engine, content, sha256=recorded)
    await migrate(engine, "evidence")
    store = BlobStore(tmp_path / "store", MasterKey(os.urandom(32)))
    await legacy_import.import_legacy(engine, store)

    checked = await verification.verify(
        engine=engine,
        outbox=Outbox(engine, models.outbox),
        store=store,
        client_id=None,
        evidence_id=evidence_id,
        actor=events_pb2.Actor(id="firebreak", kind="system", name="Firebreak"),
        found_by="verify",
        verify_interval=timedelta(days=1),
    )
    assert checked.result == "tampered"
    assert [difference.what for difference in checked.differences] == ["blob"]
    assert recorded in checked.differences[0].detail
