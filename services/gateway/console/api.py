"""The console's way to the gateway's API: in process, as the signed-in person.

Each page asks the same routes a script would, over an ASGI transport into this very app, with
the session's token as its bearer. So a page can show only what the person's own API calls
return, through the same permission table, tenant checks and client-safe views: the console
adds no second path to the data that could drift from the first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

TIMEOUT = httpx.Timeout(60.0)


class Refused(Exception):
    """The API refused a call: its status and problem document (RFC 7807)."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        super().__init__(problem.get("detail") or problem.get("title") or str(status))
        self.status = status
        self.problem = problem

    @property
    def message(self) -> str:
        return str(self)


class ConsoleApi:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.http = client

    async def get(self, path: str, **params: Any) -> Any:
        query = {name: value for name, value in params.items() if value not in (None, "")}
        return self.checked(await self.http.get(path, params=query))

    async def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        return self.checked(await self.http.request(method, path, json=body, headers=headers))

    @staticmethod
    def checked(response: httpx.Response) -> Any:
        if response.is_success:
            return response.json() if response.content else None
        try:
            problem = response.json()
        except ValueError:
            problem = {"detail": response.text[:500]}
        if not isinstance(problem, dict):
            problem = {"detail": str(problem)[:500]}
        raise Refused(response.status_code, problem)


@asynccontextmanager
async def console_api(app: FastAPI, token: str) -> AsyncIterator[ConsoleApi]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://gateway.internal",
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    ) as client:
        yield ConsoleApi(client)
