"""The gateway's HTTP API as the client commands use it: one key, problem+json refusals turned
into exit codes, evidence streamed from and to files (never held whole in memory)."""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from firebreak.client.config import Login
from firebreak.client.errors import CommandFailed, ExitCode, Refused

TIMEOUT_SECONDS = 30.0
# Re-reading a large item (verify) may take the gateway up to its own 600 s.
CONTENT_TIMEOUT_SECONDS = 660.0
CHUNK_BYTES = 256 * 1024
MAX_PAGE = 200  # the API's largest page

Progress = Callable[[int], None]  # told how many more bytes went


@dataclass(frozen=True)
class Download:
    path: Path
    size_bytes: int
    sha256: str
    headers: Mapping[str, str]


class Gateway:
    def __init__(self, login: Login) -> None:
        self.url = login.url
        self._http = httpx.Client(
            base_url=login.url,
            headers={"Authorization": f"Bearer {login.key}"},
            timeout=TIMEOUT_SECONDS,
        )

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def call(self, method: str, path: str, **request: Any) -> Any:
        """The JSON the gateway answered; Refused on a 4xx, CommandFailed when unreachable or
        on a 5xx."""
        try:
            response = self._http.request(method, path, **request)
        except httpx.HTTPError as error:
            raise self._unreachable(error) from None
        checked(response)
        return response.json() if response.content else None

    def pages(self, path: str, params: Mapping[str, str], *, limit: int) -> list[Any]:
        """Up to `limit` items of a paginated list, following next_cursor."""
        items: list[Any] = []
        cursor: str | None = None
        while len(items) < limit:
            query = dict(params) | {"limit": str(min(MAX_PAGE, limit - len(items)))}
            page = self.call("GET", path, params=query | ({"cursor": cursor} if cursor else {}))
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        return items

    def upload(
        self, path: str, source: Path, *, params: Mapping[str, str], progress: Progress
    ) -> Any:
        """POSTs the file as the body, streamed from disk, with its Repr-Digest: the gateway
        keeps nothing unless what arrived hashes to what was read here."""
        size = source.stat().st_size
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),  # refused at once when over the limit
            "Repr-Digest": f"sha-256=:{base64.b64encode(_sha256(source)).decode()}:",
        }
        # httpx's timeouts are per piece sent or read, never for the whole: a large item
        # takes as long as the link needs.
        with source.open("rb") as file:
            return self.call(
                "POST", path, params=params, content=_pieces(file, progress), headers=headers
            )

    def download(
        self, path: str, target: Path, *, progress: Callable[[int, int | None], None]
    ) -> Download:
        """GETs `path` into `target`, streamed: written beside it under a temporary name and
        renamed when complete, so a broken-off download never looks like a whole one; readable
        by its owner only, as it holds evidence. `progress(bytes, total)` after each piece."""
        digest = hashlib.sha256()
        size = 0
        try:
            with self._http.stream("GET", path) as response:
                if not response.is_success:
                    response.read()
                    checked(response)
                length = response.headers.get("Content-Length")
                total = int(length) if length else None
                # mkstemp: created mode 600.
                handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
                try:
                    with os.fdopen(handle, "wb") as file:
                        for piece in response.iter_bytes(CHUNK_BYTES):
                            file.write(piece)
                            digest.update(piece)
                            size += len(piece)
                            progress(len(piece), total)
                    os.replace(partial, target)
                except BaseException:
                    Path(partial).unlink(missing_ok=True)
                    raise
                return Download(target, size, digest.hexdigest(), response.headers)
        except httpx.HTTPError as error:
            raise self._unreachable(error) from None

    def _unreachable(self, error: httpx.HTTPError) -> CommandFailed:
        return CommandFailed(
            ExitCode.UNREACHABLE, f"cannot reach the gateway at {self.url}: {error}"
        )


def checked(response: httpx.Response) -> None:
    """Raises for anything but a 2xx: Refused (exit 1) for a 4xx, unreachable (3) for the rest."""
    if response.is_success:
        return
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        problem = {"title": response.reason_phrase, "detail": response.text[:500]}
    if 400 <= response.status_code < 500:
        raise Refused(response.status_code, problem)
    detail = problem.get("detail") or problem.get("title") or ""
    raise CommandFailed(
        ExitCode.UNREACHABLE,
        f"the gateway failed: {response.status_code} {response.reason_phrase}: {detail}",
    )


def _sha256(source: Path) -> bytes:
    digest = hashlib.sha256()
    with source.open("rb") as file:
        while piece := file.read(CHUNK_BYTES):
            digest.update(piece)
    return digest.digest()


def _pieces(file: BinaryIO, progress: Progress) -> Iterator[bytes]:
    while piece := file.read(CHUNK_BYTES):
        yield piece
        progress(len(piece))
