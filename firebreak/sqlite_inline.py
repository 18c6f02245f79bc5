"""SQLite for the async engine, called inline on the event loop instead of through a thread.

aiosqlite runs every call (cursor, execute, fetch, close, commit) on a worker thread and wakes the
event loop for each result: four or five thread hops per statement, which was most of the CPU a
consumer spent per event. A local SQLite call takes microseconds, so this connection runs it
right away, with the same surface SQLAlchemy's aiosqlite dialect uses (it is handed over with
`create_async_engine(..., async_creator=...)`).

Running inline is only safe with one connection per engine (see `database.create_engine`): a
second connection of the same process waiting for SQLite's write lock would block the loop
that the holder needs to finish. With one, a second user waits for the pool, asynchronously.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, operation: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        self._cursor.execute(operation, parameters)
        return self

    async def executemany(self, operation: str, parameters: Sequence[Any]) -> InlineCursor:
        self._cursor.executemany(operation, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """The parts of `aiosqlite.Connection` that SQLAlchemy's aiosqlite dialect calls."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection: sqlite3.Connection | None = connection

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            raise ValueError("no active connection")
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._open().isolation_level

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._open().create_function(*args, **kwargs)

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._open().cursor())

    async def commit(self) -> None:
        self._open().commit()

    async def rollback(self) -> None:
        self._open().rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def stop(self) -> None:
        """What the dialect calls to terminate a connection: closing is immediate here."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


async def connect(database: str, *, busy_timeout: float) -> InlineConnection:
    # isolation_level=None: SQLAlchemy's begin event issues BEGIN itself (database.py).
    return InlineConnection(
        sqlite3.connect(
            database, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    )
