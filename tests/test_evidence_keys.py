"""Encryption at rest and the keys: the blob format refuses any change to a blob; a wrong master
key fails clearly and decrypts nothing; rotating the master key re-wraps data keys without
touching a blob (also through `firebreak evidence rotate-master-key`); evidence will not start
without its keys or with a master key the stored blobs were not wrapped with."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.database import create_engine
from firebreak.migrations import migrate
from firebreak.settings import SettingsError
from services.evidence import keyring
from services.evidence.blob_crypto import (
    BlobCorrupted,
    BlobWriter,
    MasterKey,
    MasterKeyMismatch,
    read_blob,
)
from services.evidence.blob_store import BlobStore
from services.evidence.models import blobs
from tests.conftest import BACKENDS

FIREBREAK = Path(sys.executable).parent / "firebreak"
CHUNK = 16  # small chunks, so that a few bytes make several


def encrypt(content: bytes, key: bytes) -> bytes:
    with tempfile.TemporaryFile() as file:
        writer = BlobWriter(file, key, chunk_bytes=CHUNK)
        for start in range(0, len(content), 5):
            writer.write(content[start : start + 5])
        writer.finish()
        file.seek(0)
        return file.read()


def decrypt(blob: bytes, key: bytes) -> bytes:
    return b"".join(read_blob(io.BytesIO(blob), key))


def record_size() -> int:
    return 12 + CHUNK + 16


def cut_last_chunk(blob: bytes) -> bytes:
    return blob[: 9 + 2 * record_size()]


def swap_first_two_chunks(blob: bytes) -> bytes:
    header, size = blob[:9], record_size()
    return header + blob[9 + size : 9 + 2 * size] + blob[9 : 9 + size] + blob[9 + 2 * size :]


def flip(blob: bytes, at: int) -> bytes:
    changed = bytearray(blob)
    changed[at] ^= 1
    return bytes(changed)


@pytest.mark.parametrize("length", [1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7])
def test_content_of_any_length_comes_back_exactly(length: int) -> None:
    key, content = os.urandom(32), os.urandom(length)
    blob = encrypt(content, key)
    # A byte or two may turn up in any ciphertext by chance; sixteen random ones may not.
    assert length < 16 or content not in blob
    assert decrypt(blob, key) == content


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda blob: flip(blob, 9 + 12 + 3), "chunk 0 fails authentication"),
        (lambda blob: flip(blob, 9 + 3), "chunk 0 fails authentication"),  # a nonce
        (lambda blob: flip(blob, len(blob) - 1), "chunk 3 fails authentication"),  # a tag
        (cut_last_chunk, "chunk 1 fails authentication"),  # now unflagged as last
        (lambda blob: blob[:-5], "chunk 3 fails authentication"),
        (swap_first_two_chunks, "chunk 0 fails authentication"),
        (lambda blob: blob + blob[9 : 9 + record_size()], "chunk 3 fails authentication"),
        (lambda blob: flip(blob, 6), "chunk 0 fails authentication"),  # the chunk size
        (lambda blob: b"XXXX" + blob[4:], "not a format 1 header"),
        (lambda blob: blob[:9], "no content"),
    ],
    ids=[
        "flipped-ciphertext",
        "flipped-nonce",
        "flipped-tag",
        "cut-at-a-chunk-boundary",
        "cut-inside-a-chunk",
        "chunks-swapped",
        "chunk-appended",
        "header-changed",
        "not-a-blob",
        "header-only",
    ],
)
def test_any_change_to_a_blob_is_refused_before_its_bytes_are_handed_out(
    change: Callable[[bytes], bytes], complaint: str
) -> None:
    key = os.urandom(32)
    blob = encrypt(os.urandom(3 * CHUNK + 7), key)  # four chunks, the last one short
    with pytest.raises(BlobCorrupted, match=complaint):
        decrypt(change(blob), key)


def test_a_wrong_master_key_says_so_and_decrypts_nothing() -> None:
    right, wrong = MasterKey(os.urandom(32)), MasterKey(os.urandom(32))
    wrapped = right.wrap(os.urandom(32))
    with pytest.raises(MasterKeyMismatch, match="master key does not match") as refused:
        wrong.unwrap(wrapped, key_id=right.key_id)
    assert right.key_id in str(refused.value) and wrong.key_id in str(refused.value)
    with pytest.raises(BlobCorrupted, match="wrapped data key does not unwrap"):
        right.unwrap(flip(wrapped, 3), key_id=right.key_id)


# --- With a database: rotation and start-up ------------------------------------------------


@pytest.fixture(params=BACKENDS)
async def evidence_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, AsyncEngine]]:
    """Evidence's database at its newest revision: a SQLite file, or a PostgreSQL database."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres")("evidence_keys")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'evidence.db'}"
    engine = create_engine(url)
    await migrate(engine, "evidence")
    yield url, engine
    await engine.dispose()


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


async def store_blob(engine: AsyncEngine, store: BlobStore, content: bytes) -> str:
    upload = store.begin_upload()
    upload.write(content)
    digests = upload.finish()
    store.place(upload, digests.sha256)
    async with engine.begin() as connection:
        await connection.execute(
            blobs.insert().values(
                sha256=digests.sha256,
                sha512=digests.sha512,
                size_bytes=digests.size_bytes,
                wrapped_key=upload.wrapped_key,
                master_key_id=upload.master_key_id,
                stored_at=datetime.now(UTC),
            )
        )
    return digests.sha256


async def read_back(engine: AsyncEngine, store: BlobStore, sha256: str) -> bytes:
    async with engine.connect() as connection:
        row = (await connection.execute(blobs.select().where(blobs.c.sha256 == sha256))).one()
    chunks = store.content(sha256, wrapped_key=row.wrapped_key, master_key_id=row.master_key_id)
    return b"".join(chunks)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_rotation_re_wraps_data_keys_without_touching_blobs(
    evidence_database: tuple[str, AsyncEngine], tmp_path: Path
) -> None:
    _, engine = evidence_database
    old, new = MasterKey(os.urandom(32)), MasterKey(os.urandom(32))
    store = BlobStore(tmp_path / "store", old)
    contents = [os.urandom(3000), os.urandom(5)]
    addresses = [await store_blob(engine, store, content) for content in contents]
    files = {sha256: file_digest(store.path_of(sha256)) for sha256 in addresses}

    async with engine.begin() as connection:
        assert await keyring.rotate_master_key(connection, old=old, new=new) == 2

    assert {sha256: file_digest(store.path_of(sha256)) for sha256 in addresses} == files
    rotated = BlobStore(tmp_path / "store", new)
    for sha256, content in zip(addresses, contents, strict=True):
        assert await read_back(engine, rotated, sha256) == content
        with pytest.raises(MasterKeyMismatch):
            await read_back(engine, store, sha256)
    await keyring.check_master_key(engine, new)
    with pytest.raises(SettingsError, match="does not match the stored evidence"):
        await keyring.check_master_key(engine, old)
    # A rotation that starts from the wrong key changes nothing.
    async with engine.begin() as connection:
        with pytest.raises(MasterKeyMismatch):
            await keyring.rotate_master_key(connection, old=old, new=MasterKey(os.urandom(32)))
    assert await read_back(engine, rotated, addresses[0]) == contents[0]


def run_firebreak(
    args: list[str], env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FIREBREAK), *args],
        env=os.environ | env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_rotation_command_and_a_service_that_refuses_a_wrong_key(
    evidence_database: tuple[str, AsyncEngine], tmp_path: Path
) -> None:
    url, engine = evidence_database
    old, new = new_key(), new_key()
    store = BlobStore(tmp_path / "var" / "evidence", MasterKey(base64.b64decode(old)))
    content = os.urandom(2000)
    sha256 = await store_blob(engine, store, content)
    before = file_digest(store.path_of(sha256))
    env = {
        "FIREBREAK_VAR_DIR": str(tmp_path / "var"),
        "FIREBREAK_EVIDENCE_DATABASE_URL": url,
        "FIREBREAK_NATS_URL": "nats://127.0.0.1:1",  # never reached: refused before
        "FIREBREAK_EVIDENCE_SIGNING_KEY": new_key(),
    }

    rotated = run_firebreak(
        ["evidence", "rotate-master-key"], env | {"FIREBREAK_EVIDENCE_MASTER_KEY": old}, new
    )
    assert rotated.returncode == 0, rotated.stderr
    assert "re-wrapped 1 data keys" in rotated.stdout
    assert file_digest(store.path_of(sha256)) == before
    rotated_store = BlobStore(tmp_path / "var" / "evidence", MasterKey(base64.b64decode(new)))
    assert await read_back(engine, rotated_store, sha256) == content

    # Run again from the old key, which no longer matches: refused, nothing changed.
    again = run_firebreak(
        ["evidence", "rotate-master-key"], env | {"FIREBREAK_EVIDENCE_MASTER_KEY": old}, new_key()
    )
    assert again.returncode == 2 and "master key does not match" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr

    # Evidence itself will not start with the old key: one line saying why.
    refused = run_firebreak(["serve", "evidence"], env | {"FIREBREAK_EVIDENCE_MASTER_KEY": old})
    assert refused.returncode == 2, refused.stderr
    assert "FIREBREAK_EVIDENCE_MASTER_KEY does not match the stored evidence" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize(
    ("missing", "complaint"),
    [
        ("FIREBREAK_EVIDENCE_MASTER_KEY", "FIREBREAK_EVIDENCE_MASTER_KEY is required"),
        ("FIREBREAK_EVIDENCE_SIGNING_KEY", "FIREBREAK_EVIDENCE_SIGNING_KEY is required"),
    ],
)
def test_evidence_will_not_start_without_its_keys(
    tmp_path: Path, missing: str, complaint: str
) -> None:
    env = {
        "FIREBREAK_VAR_DIR": str(tmp_path / "var"),
        "FIREBREAK_NATS_URL": "nats://127.0.0.1:1",
        "FIREBREAK_EVIDENCE_MASTER_KEY": new_key(),
        "FIREBREAK_EVIDENCE_SIGNING_KEY": new_key(),
    }
    environment = {name: value for name, value in (os.environ | env).items() if name != missing}
    result = subprocess.run(
        [str(FIREBREAK), "serve", "evidence"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert complaint in result.stderr and "Traceback" not in result.stderr
