"""Evidence over HTTP as a client system or staff would use it, and the platform's evidence
store and database as someone tampering with them would see them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from firebreak.database import create_engine
from firebreak.launcher import Platform
from tests.gateway_client import Api, Tenant, eventually


def repr_digest(content: bytes) -> str:
    """RFC 9530's Repr-Digest of `content`, with SHA-256 and SHA-512."""
    sha256 = base64.b64encode(hashlib.sha256(content).digest()).decode()
    sha512 = base64.b64encode(hashlib.sha512(content).digest()).decode()
    return f"sha-256=:{sha256}:, sha-512=:{sha512}:"


def submit(
    api: Api,
    caller: Tenant,
    incident_id: str,
    content: bytes,
    *,
    filename: str = "auth.log",
    headers: dict[str, str] | None = None,
    **params: Any,
) -> httpx.Response:
    return api.http.post(
        f"/v1/incidents/{incident_id}/evidence",
        params={"filename": filename, **params},
        content=content,
        headers=caller.headers | (headers or {}),
    )


def submit_once_known(
    api: Api, caller: Tenant, incident_id: str, content: bytes, **params: Any
) -> dict[str, Any]:
    """Submits an item, waiting for evidence to learn of a new incident (from
    incident.reported, a moment after the report) if need be; returns the 201's body."""

    def attempt() -> dict[str, Any] | None:
        response = submit(api, caller, incident_id, content, **params)
        if response.status_code == 404 and response.json()["detail"].startswith("incident"):
            return None
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    return eventually(attempt)  # type: ignore[no-any-return]


def record(api: Api, caller: Tenant, evidence_id: str) -> dict[str, Any]:
    response = api.http.get(f"/v1/evidence/{evidence_id}", headers=caller.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def verify(api: Api, caller: Tenant, evidence_id: str) -> dict[str, Any]:
    response = api.http.post(f"/v1/evidence/{evidence_id}/verify", headers=caller.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def blob_path(platform: Platform, sha256: str) -> Path:
    return platform.var_dir / "evidence" / "blobs" / sha256[:2] / sha256


def evidence_database_url(platform: Platform) -> str:
    return platform.database_urls.get(
        "evidence", f"sqlite+aiosqlite:///{(platform.var_dir / 'evidence.db').resolve()}"
    )


def run_sql(platform: Platform, *statements: str, **params: Any) -> list[Any]:
    """Runs statements on evidence's own database, in one transaction, as someone with access
    to it would; returns the rows of the last one (if it returns any)."""

    async def run() -> list[Any]:
        engine = create_engine(evidence_database_url(platform))
        try:
            async with engine.begin() as connection:
                rows: list[Any] = []
                for statement in statements:
                    result = await connection.execute(text(statement), params)
                    rows = list(result) if result.returns_rows else []
                return rows
        finally:
            await engine.dispose()

    return asyncio.run(run())
