"""The platform gateway's own database, reached directly (its SQLite file or its PostgreSQL
database): for tests that do what the API never would, such as tampering with the audit log
or ageing a key."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Row
from sqlalchemy.sql import Executable

from firebreak.database import create_engine
from firebreak.launcher import Platform


def gateway_database_url(platform: Platform) -> str:
    return platform.database_urls.get(
        "gateway", f"sqlite+aiosqlite:///{platform.var_dir / 'gateway.db'}"
    )


def on_gateway_database(platform: Platform, statement: Executable) -> list[Row[Any]]:
    """Runs one statement in a transaction of its own; the rows it returns, if any."""

    async def run() -> list[Row[Any]]:
        engine = create_engine(gateway_database_url(platform))
        try:
            async with engine.begin() as connection:
                result = await connection.execute(statement)
                return list(result.all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    # In a thread of its own, so that it runs from async tests too.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()
