"""A service's migration at start, without keeping Alembic in the service's memory.

Alembic and what it loads cost a process about 11 MB that a service never needs again once it
has started. A service whose database is already at its newest revision (a deployment's
migration Job ran first) does nothing; otherwise it runs `firebreak migrate <service>` in a
child process, which takes the same advisory lock as any other replica, and waits for it.
"""

from __future__ import annotations

import asyncio
import importlib
import re
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.database import reading

REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")


class MigrationFailed(RuntimeError):
    """The child process could not upgrade the service's database."""


def versions_dir(service: str) -> Path:
    package = importlib.import_module(f"services.{service}")
    return Path(next(iter(package.__path__))) / "migrations" / "versions"


def head_revision(service: str) -> str:
    """The newest revision: revisions are numbered 0001, 0002, … in their file names."""
    numbers = [
        found.group(1)
        for path in versions_dir(service).iterdir()
        if (found := REVISION_FILE.match(path.name))
    ]
    return max(numbers)


async def current_revision(engine: AsyncEngine) -> str | None:
    try:
        async with reading(engine) as connection:
            result = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return result.scalar_one_or_none()
    except DBAPIError:  # no version table yet: a new database, or one from before migrations
        return None


async def ensure_migrated(engine: AsyncEngine, service: str) -> None:
    """Upgrades the service's database to its newest revision unless it is there already."""
    if await current_revision(engine) == head_revision(service):
        return
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "firebreak.cli", "migrate", service
    )
    if await child.wait() != 0:
        raise MigrationFailed(f"firebreak migrate {service} exited with {child.returncode}")
