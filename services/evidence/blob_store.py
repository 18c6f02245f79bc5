"""Where encrypted blobs live: <root>/blobs/<sha256[:2]>/<sha256>, named by their content's
SHA-256. Content is written to <root>/tmp/ while it streams in, and moved into place only once
its digest is known and accepted (an atomic rename on the same volume). File work is blocking,
so callers run it in a worker thread."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from services.evidence.blob_crypto import BlobWriter, Digests, MasterKey, digests_of, read_blob

# A temporary file this old belongs to an upload whose process died: no upload lasts a day.
STALE_UPLOAD_SECONDS = 24 * 3600


class Upload:
    """One item's content on its way in: encrypted under a fresh data key into a temporary
    file. Its `wrapped_key` goes into the database with the blob, if the blob is kept."""

    def __init__(self, path: Path, master_key: MasterKey) -> None:
        self.path = path
        data_key = os.urandom(32)
        self.wrapped_key = master_key.wrap(data_key)
        self.master_key_id = master_key.key_id
        self._file: BinaryIO = path.open("xb")
        self._writer = BlobWriter(self._file, data_key)

    @property
    def size_bytes(self) -> int:
        return self._writer.size_bytes

    def write(self, piece: bytes) -> None:
        self._writer.write(piece)

    def finish(self) -> Digests:
        digests = self._writer.finish()
        self._file.close()
        return digests

    def discard(self) -> None:
        """Removes what was written, unless it was moved into place."""
        self._file.close()
        self.path.unlink(missing_ok=True)


class BlobStore:
    def __init__(self, root: Path, master_key: MasterKey) -> None:
        self.master_key = master_key
        self._blobs = root / "blobs"
        self._tmp = root / "tmp"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)

    def path_of(self, sha256: str) -> Path:
        return self._blobs / sha256[:2] / sha256

    def begin_upload(self) -> Upload:
        return Upload(self._tmp / f"{uuid.uuid4()}.part", self.master_key)

    def place(self, upload: Upload, sha256: str) -> None:
        """Moves a finished upload to its content address, replacing any file left there by a
        blob that was disposed of (its data key is gone, so it was unreadable anyway)."""
        target = self.path_of(sha256)
        target.parent.mkdir(exist_ok=True)
        os.replace(upload.path, target)
        _sync_directory(target.parent)

    def set_aside(self, sha256: str) -> Path | None:
        """Moves a blob's file out of its place, to be deleted once the transaction that
        disposed of its last item committed, or restored if it did not; None: no file."""
        aside = self._tmp / f"{sha256}.{uuid.uuid4()}.disposed"
        try:
            os.replace(self.path_of(sha256), aside)
        except FileNotFoundError:
            return None
        return aside

    def restore(self, aside: Path, sha256: str) -> None:
        os.replace(aside, self.path_of(sha256))

    def content(self, sha256: str, *, wrapped_key: bytes, master_key_id: str) -> Iterator[bytes]:
        """The decrypted content, chunk by chunk (blob_crypto.read_blob). The key and the
        file's presence are checked now, before anything is read or sent."""
        data_key = self.master_key.unwrap(wrapped_key, key_id=master_key_id)
        path = self.path_of(sha256)
        path.stat()
        return _chunks(path, data_key)

    def digests(self, sha256: str, *, wrapped_key: bytes, master_key_id: str) -> Digests:
        data_key = self.master_key.unwrap(wrapped_key, key_id=master_key_id)
        with self.path_of(sha256).open("rb") as file:
            return digests_of(file, data_key)

    def remove_stale_uploads(self) -> int:
        """Deletes temporary files of uploads whose process died; returns how many."""
        cutoff = time.time() - STALE_UPLOAD_SECONDS
        removed = 0
        for path in self._tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed


def _chunks(path: Path, data_key: bytes) -> Iterator[bytes]:
    with path.open("rb") as file:
        yield from read_blob(file, data_key)


def _sync_directory(directory: Path) -> None:
    """Makes a rename into `directory` durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
