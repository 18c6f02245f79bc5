"""A large item streams through: uploaded from a body generated on the fly (nothing holds it
whole, here or in the platform), its digests checked on arrival, and downloaded back
identical. How flat the memory stays is the bench's to measure, not this test's."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import AsyncIterator, Iterator

import httpx

from tests.evidence_client import record, submit_once_known
from tests.gateway_client import Api
from tests.lifecycle_client import report_triaged

MIB = 1024 * 1024
SIZE_MIB = 300


def pieces(seed: bytes) -> Iterator[bytes]:
    """SIZE_MIB pieces of one MiB, each different (its number in front of random bytes)."""
    for number in range(SIZE_MIB):
        yield number.to_bytes(8, "big") + seed[8:]


async def body(seed: bytes) -> AsyncIterator[bytes]:
    for piece in pieces(seed):
        yield piece


def b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def digests(chunks: Iterator[bytes]) -> tuple[str, str, int]:
    sha256, sha512, size = hashlib.sha256(), hashlib.sha512(), 0
    for chunk in chunks:
        sha256.update(chunk)
        sha512.update(chunk)
        size += len(chunk)
    return sha256.hexdigest(), sha512.hexdigest(), size


async def test_an_item_of_hundreds_of_mib_streams_in_and_out_unchanged(api: Api) -> None:
    client = api.new_client()
    incident = report_triaged(api, client)
    submit_once_known(api, client, incident, b"evidence knows the incident now")
    seed = os.urandom(MIB)
    sha256, sha512, size = digests(pieces(seed))
    assert size == SIZE_MIB * MIB

    async with httpx.AsyncClient(base_url=api.platform.gateway_url, timeout=300) as http:
        created = await http.post(
            f"/v1/incidents/{incident}/evidence",
            params={"filename": "disk.img", "acquisition": "image"},
            content=body(seed),
            # Checked on arrival: a body that arrived otherwise would be refused, not kept.
            headers=client.headers
            | {"Repr-Digest": f"sha-256=:{b64(sha256)}:, sha-512=:{b64(sha512)}:"},
        )
        assert created.status_code == 201, created.text
        item = created.json()
        assert (item["sha256"], item["sha512"], item["size_bytes"]) == (sha256, sha512, size)

        back256, back512, back_size = hashlib.sha256(), hashlib.sha512(), 0
        async with http.stream(
            "GET", f"/v1/evidence/{item['id']}/content", headers=client.headers
        ) as download:
            assert download.status_code == 200
            assert int(download.headers["content-length"]) == size
            async for chunk in download.aiter_bytes():
                back256.update(chunk)
                back512.update(chunk)
                back_size += len(chunk)
    assert (back256.hexdigest(), back512.hexdigest(), back_size) == (sha256, sha512, size)
    kinds = [entry["kind"] for entry in record(api, api.admin, item["id"])["custody"]]
    assert kinds == ["collected", "accessed"]
