"""SQLite behind SQLAlchemy's asyncio API, run as plain synchronous Core on the event loop.

The asyncio extension runs every statement in a greenlet of its own (`greenlet_spawn`), and an
async driver then hops to a thread or back to the loop for each call: per consumed event that
cost twice what the same SQL costs through synchronous Core (docs/architecture.md, where the
CPU goes). A local SQLite call takes microseconds, so these classes keep the asyncio API that
the services are written against and call the synchronous `Engine` underneath directly.

Running inline is only safe with one connection per engine: a second connection of the same
process waiting for SQLite's write lock would block the loop that the holder needs to finish.
So the engine has one connection, and a second user waits for it on an `asyncio.Lock`, without
blocking the loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, create_engine, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction


class InlineTransaction(AsyncTransaction):
    async def start(self, is_ctxmanager: bool = False) -> InlineTransaction:
        sync_connection = self.connection._proxied
        begin = sync_connection.begin_nested if self.nested else sync_connection.begin
        self.sync_transaction = self._assign_proxied(begin())
        if is_ctxmanager:
            self.sync_transaction.__enter__()
        return self

    async def close(self) -> None:
        self._proxied.close()

    async def rollback(self) -> None:
        self._proxied.rollback()

    async def commit(self) -> None:
        self._proxied.commit()

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        self._proxied.__exit__(type_, value, traceback)


class InlineConnection(AsyncConnection):
    """An `AsyncConnection` whose calls run synchronously; it holds the engine's one
    connection from `start` to `close`."""

    engine: InlineEngine

    async def start(self, is_ctxmanager: bool = False) -> InlineConnection:
        if self.sync_connection:
            raise RuntimeError("connection is already started")
        await self.engine.one_connection.acquire()
        try:
            self.sync_connection = self._assign_proxied(self.sync_engine.connect())
        except BaseException:
            self.engine.one_connection.release()
            raise
        return self

    def begin(self) -> InlineTransaction:
        assert self._proxied
        return InlineTransaction(self)

    def begin_nested(self) -> InlineTransaction:
        assert self._proxied
        return InlineTransaction(self, nested=True)

    async def execute(  # type: ignore[override]
        self,
        statement: Any,
        parameters: Any = None,
        *,
        execution_options: Any = None,
    ) -> Any:
        return self._proxied.execute(statement, parameters, execution_options=execution_options)

    async def exec_driver_sql(  # type: ignore[override]
        self, statement: str, parameters: Any = None, execution_options: Any = None
    ) -> Any:
        return self._proxied.exec_driver_sql(statement, parameters, execution_options)

    async def execution_options(self, **opt: Any) -> InlineConnection:
        self._proxied.execution_options(**opt)
        return self

    async def run_sync(  # type: ignore[override]
        self, fn: Callable[..., Any], *arg: Any, **kw: Any
    ) -> Any:
        return fn(self._proxied, *arg, **kw)

    async def commit(self) -> None:
        self._proxied.commit()

    async def rollback(self) -> None:
        self._proxied.rollback()

    async def invalidate(self, exception: BaseException | None = None) -> None:
        self._proxied.invalidate(exception=exception)

    async def close(self) -> None:
        if self.sync_connection is None:
            return
        connection: Connection = self.sync_connection
        try:
            connection.close()
        finally:
            self.sync_connection = None
            self.engine.one_connection.release()

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        # Closing never waits here, so it needs no task of its own to survive a cancellation.
        await self.close()


class InlineEngine(AsyncEngine):
    _connection_cls = InlineConnection

    def __init__(self, sync_engine: Engine) -> None:
        # AsyncEngine refuses a synchronous driver, which is the point here.
        self.sync_engine = self._assign_proxied(sync_engine)
        self.one_connection = asyncio.Lock()

    def connect(self) -> InlineConnection:
        return InlineConnection(self)

    async def dispose(self, close: bool = True) -> None:
        self.sync_engine.dispose(close=close)


def create_inline_engine(database: str, *, busy_timeout: float) -> InlineEngine:
    def connect() -> sqlite3.Connection:
        # isolation_level=None: the engine's begin event issues BEGIN itself (database.py).
        return sqlite3.connect(
            database, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )

    # One pooled connection that is never waited for: the engine's lock hands it out.
    sync_engine = create_engine(
        "sqlite+pysqlite://",
        creator=connect,
        poolclass=pool.QueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=0,
        hide_parameters=True,
    )
    return InlineEngine(sync_engine)
