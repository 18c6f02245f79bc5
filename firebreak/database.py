"""Engines for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Table,
    Update,
    bindparam,
    event,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, EmulatedDBAPIException
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from firebreak import sqlite_inline

READ_ONLY = "firebreak_read_only"
# How long a write waits for another process's write (a replica sharing the file) to finish.
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
# PostgreSQL's SQLSTATEs for a server shutting down or starting up (class 08, connection
# exception, is matched as a whole).
SERVER_GOING_AWAY = frozenset({"57P01", "57P02", "57P03"})
# The modules of the drivers' own errors (SQLAlchemy's adaptations of them are emulated ones).
DRIVER_MODULES = frozenset({"asyncpg", "sqlite3", "_sqlite3"})
# A pooled PostgreSQL connection idle this long is pinged before use (_ping_idle_connections).
PING_IDLE_SECONDS = 1.0
IDLE_SINCE = "firebreak_idle_since"


class DatabaseUnavailable(Exception):
    """The database cannot be reached now (down, restarting, refusing connections); the same
    request may succeed shortly."""


def is_unavailable(error: BaseException) -> bool:
    """Whether an error means the database is unreachable, rather than a bug or bad data."""
    if isinstance(error, DatabaseUnavailable):
        return True
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or _lost_connection(error.orig)
    return False


def is_transient(error: BaseException) -> bool:
    """Whether the same work may well succeed if simply tried again: the database unreachable,
    or PostgreSQL's SQLSTATE class 40 (a deadlock or serialization failure between replicas)."""
    if is_unavailable(error):
        return True
    sqlstate = getattr(error.orig, "sqlstate", None) if isinstance(error, DBAPIError) else None
    return isinstance(sqlstate, str) and sqlstate.startswith("40")


def _lost_connection(error: BaseException | None) -> bool:
    if isinstance(error, OSError):  # refused, reset, timed out
        return True
    sqlstate = getattr(error, "sqlstate", None)
    return isinstance(sqlstate, str) and (
        sqlstate.startswith("08") or sqlstate in SERVER_GOING_AWAY
    )


def sqlstate(error: BaseException) -> str:
    """The error's SQLSTATE (PostgreSQL) or result code name (SQLite), "" when it has none."""
    orig = error.orig if isinstance(error, DBAPIError) else error
    code = getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)
    return code if isinstance(code, str) else ""


def is_database_error(error: BaseException) -> bool:
    """An error raised by the database or its driver, whose message may quote the values it
    refused (PostgreSQL: 'Key (email)=(…) already exists', 'invalid input syntax: "…"')."""
    module = type(error).__module__
    return (
        isinstance(error, (DBAPIError, EmulatedDBAPIException))
        or module.partition(".")[0] in DRIVER_MODULES
    )


def error_summary(error: BaseException) -> str:
    """A database error as logs and spans show it: its type and code, never its message."""
    code = sqlstate(error)
    return f"{type(error).__name__} ({code})" if code else type(error).__name__


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # hide_parameters: an error's message (logged, put on spans) must not carry the values
        # written.
        engine = create_async_engine(url, pool_size=10, max_overflow=10, hide_parameters=True)
        event.listen(engine.sync_engine, "do_connect", _connect_naming_failures)
        _ping_idle_connections(engine)
        return engine

    database = parsed.database or ":memory:"
    if database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # One connection, called inline on the event loop (see sqlite_inline): SQLite lets one
    # writer in at a time anyway, and a call takes microseconds.
    engine = sqlite_inline.create_inline_engine(database, busy_timeout=SQLITE_BUSY_TIMEOUT_SECONDS)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")  # WAL readers never wait for writers
            return
        # Take the write lock up front: a deferred transaction that reads and then writes fails
        # at once with "database is locked" when another writer got in between, instead of
        # waiting; IMMEDIATE makes it wait for the busy timeout instead.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Pings a pooled connection on checkout only if it sat idle for PING_IDLE_SECONDS, so that
    one the server dropped meanwhile (a restart) is replaced instead of failing the caller.
    A ping on every checkout (pool_pre_ping) cost a round trip per unit of work under load,
    when connections never sit idle; a connection that dies in between fails its unit, which
    its caller retries (consumers redeliver, the gateway answers 503 with Retry-After)."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    def note_idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info[IDLE_SINCE] = time.monotonic()

    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(IDLE_SINCE, 0.0) < PING_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            # The pool discards the connection and checks out another (a new one if need be).
            raise DisconnectionError("a pooled connection was found dead") from error

    event.listen(pool, "connect", note_idle_from)
    event.listen(pool, "checkin", note_idle_from)
    event.listen(pool, "checkout", ping_if_idle)


def _connect_naming_failures(
    dialect: Dialect, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> Any:
    """Connects as the dialect would; asyncpg's errors on connecting (a bare OSError when
    nothing listens, "the database system is starting up") reach callers unwrapped, so they
    are given one name here."""
    try:
        return dialect.connect(*cargs, **cparams)
    except Exception as error:
        if _lost_connection(error):
            raise DatabaseUnavailable(f"cannot connect to the database: {error!r}") from error
        raise


async def answers(engine: AsyncEngine, within_seconds: float) -> bool:
    """Whether the database answers a trivial query within the given time."""
    try:
        async with asyncio.timeout(within_seconds), reading(engine) as connection:
            await connection.exec_driver_sql("SELECT 1")
    except (TimeoutError, DatabaseUnavailable, DBAPIError) as error:
        if isinstance(error, DBAPIError) and not is_unavailable(error):
            raise
        return False
    return True


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads only; on SQLite it does not take the write lock."""
    async with engine.connect() as connection:
        await connection.execution_options(**{READ_ONLY: True})
        yield connection


def is_postgres(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql"


async def create_schema(engine: AsyncEngine, metadata: MetaData) -> None:
    """Creates missing tables of an ad-hoc schema (tests). A service's database is upgraded by
    its migrations instead: firebreak.migrations.migrate."""
    async with engine.begin() as connection:
        if is_postgres(engine):
            # Replicas starting together would otherwise race to create the same tables.
            await connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7031)")
        await connection.run_sync(metadata.create_all, checkfirst=True)


def upsert_insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that supports ON CONFLICT, for the named dialect."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


@cache
def update_by(table: Table, *key_names: str) -> Update:
    """An UPDATE of `table`'s rows whose key columns equal their `key_<name>` parameters (see
    `key_params`), setting the columns the other parameters name. Built once and given its
    values as parameters: a statement built per call with `.values(...)` is coerced and
    cache-keyed value by value on every call, which cost several times what running it did."""
    return update(table).where(*[table.c[name] == bindparam(f"key_{name}") for name in key_names])


def key_params(key: dict[str, Any]) -> dict[str, Any]:
    """`key`'s values as the parameters `update_by` matches rows by."""
    return {f"key_{name}": value for name, value in key.items()}


def sequence_column() -> Column[int]:
    """An auto-incrementing 64-bit key (SQLite only auto-increments a plain INTEGER key)."""
    return Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
