"""How a blob is encrypted at rest (format 1), and the master key that wraps each blob's data key.

A blob file is a 9-byte header, then the content in chunks:

    header  = b"FBEV" | format (1 byte, 1) | chunk size C (4 bytes, big-endian)
    chunk i = nonce (12 random bytes) | AES-256-GCM ciphertext of the plaintext piece | tag (16)

Every piece but the last holds exactly C plaintext bytes, the last 1 to C. Each chunk's
associated data is the header, i as 8 bytes big-endian and 1 if it is the last chunk, else 0:
a changed byte fails its chunk's tag, a removed, repeated or reordered chunk fails its index, a
cut at a chunk boundary fails the last-chunk flag, and anything appended fails as well. So a
reader either gets the content exactly as written or an error, never other bytes.

Each blob has its own random 256-bit data key, kept beside it in the database wrapped with the
firm's master key by AES key wrap (RFC 3394). Rotating the master key re-wraps these without
touching a blob; losing it loses every blob.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

MAGIC = b"FBEV"
FORMAT = 1
HEADER = struct.Struct(">4sBI")
CHUNK_BYTES = 1024 * 1024
NONCE_BYTES = 12
TAG_BYTES = 16


class MasterKeyMismatch(Exception):
    """The configured master key is not the one a data key was wrapped with: a configuration
    error, never the content's fault, and nothing is decrypted."""


class BlobCorrupted(Exception):
    """The blob (or its wrapped data key) is not as written: altered, cut short or extended."""


class MasterKey:
    """The firm's key-encryption key. Its id, an HMAC of a fixed label, tells keys apart without
    revealing them, so a wrong key is reported as such rather than as a damaged blob."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the master key is 32 bytes")
        self._key = key
        self.key_id = hmac.new(key, b"firebreak evidence master key", "sha256").hexdigest()[:16]

    def wrap(self, data_key: bytes) -> bytes:
        return aes_key_wrap(self._key, data_key)

    def unwrap(self, wrapped: bytes, *, key_id: str) -> bytes:
        if key_id != self.key_id:
            raise MasterKeyMismatch(
                f"the evidence master key does not match: this content's data key was wrapped "
                f"with master key {key_id}, and FIREBREAK_EVIDENCE_MASTER_KEY is key "
                f"{self.key_id}; nothing can be decrypted until the right key is configured"
            )
        try:
            return aes_key_unwrap(self._key, wrapped)
        except InvalidUnwrap:
            raise BlobCorrupted("its wrapped data key does not unwrap: it was altered") from None


@dataclass(frozen=True)
class Digests:
    sha256: str
    sha512: str
    size_bytes: int


def _associated_data(header: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">QB", index, last)


class BlobWriter:
    """Encrypts content written in pieces of any size into `file`, hashing it as it goes.
    Holds at most one chunk and one piece: memory stays flat whatever the content's size."""

    def __init__(self, file: BinaryIO, data_key: bytes, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self._file = file
        self._aead = AESGCM(data_key)
        self._chunk_bytes = chunk_bytes
        self._header = HEADER.pack(MAGIC, FORMAT, chunk_bytes)
        self._buffer = bytearray()
        self._index = 0
        self._sha256 = hashlib.sha256()
        self._sha512 = hashlib.sha512()
        self.size_bytes = 0
        file.write(self._header)

    def write(self, piece: bytes) -> None:
        self._sha256.update(piece)
        self._sha512.update(piece)
        self.size_bytes += len(piece)
        self._buffer += piece
        # A full chunk is known not to be the last only once more content follows it.
        while len(self._buffer) > self._chunk_bytes:
            self._seal(bytes(self._buffer[: self._chunk_bytes]), last=False)
            del self._buffer[: self._chunk_bytes]

    def finish(self) -> Digests:
        """Writes the last chunk and flushes the file to disk; the content must not be empty."""
        if not self._buffer:
            raise ValueError("a blob holds at least one byte")
        self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()
        self._file.flush()
        os.fsync(self._file.fileno())
        return Digests(self._sha256.hexdigest(), self._sha512.hexdigest(), self.size_bytes)

    def _seal(self, plaintext: bytes, *, last: bool) -> None:
        nonce = os.urandom(NONCE_BYTES)
        associated = _associated_data(self._header, self._index, last)
        self._file.write(nonce + self._aead.encrypt(nonce, plaintext, associated))
        self._index += 1


def read_blob(file: BinaryIO, data_key: bytes) -> Iterator[bytes]:
    """The content, chunk by chunk, each checked before it is handed out; raises BlobCorrupted
    at the first chunk that is not as written."""
    header = file.read(HEADER.size)
    if len(header) != HEADER.size:
        raise BlobCorrupted("its header is cut short")
    magic, version, chunk_bytes = HEADER.unpack(header)
    if magic != MAGIC or version != FORMAT or not 0 < chunk_bytes <= 64 * CHUNK_BYTES:
        raise BlobCorrupted("its header is not a format 1 header")
    aead = AESGCM(data_key)
    record = NONCE_BYTES + chunk_bytes + TAG_BYTES
    current = file.read(record)
    if not current:
        raise BlobCorrupted("it holds no content")
    index = 0
    while current:
        following = file.read(record)
        last = not following
        if len(current) <= NONCE_BYTES + TAG_BYTES:
            raise BlobCorrupted(f"chunk {index} is cut short")
        nonce, sealed = current[:NONCE_BYTES], current[NONCE_BYTES:]
        try:
            yield aead.decrypt(nonce, sealed, _associated_data(header, index, last))
        except InvalidTag:
            raise BlobCorrupted(
                f"chunk {index} fails authentication: altered, cut short, reordered or extended"
            ) from None
        current, index = following, index + 1


def digests_of(file: BinaryIO, data_key: bytes) -> Digests:
    """Reads the whole blob, checking every chunk, and hashes its content."""
    sha256, sha512, size = hashlib.sha256(), hashlib.sha512(), 0
    for piece in read_blob(file, data_key):
        sha256.update(piece)
        sha512.update(piece)
        size += len(piece)
    return Digests(sha256.hexdigest(), sha512.hexdigest(), size)
