"""PostgreSQL's pooled connections are pinged only after sitting idle (firebreak.database): a
busy pool costs no round trip per unit of work, and a connection the server dropped while it
sat idle (a restart) is replaced before use instead of failing its caller. Against a cluster
of the test's own, restarted mid-test."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.database import PING_IDLE_SECONDS, create_engine
from tests.private_postgres import PrivatePostgres, started_cluster

pytestmark = pytest.mark.postgres


@pytest.fixture
def cluster() -> Iterator[PrivatePostgres]:
    yield from started_cluster()


class Pings:
    """Counts the dialect's pings of the engine's pooled connections."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        dialect = engine.sync_engine.dialect
        ping = dialect.do_ping

        def counted(dbapi_connection: Any) -> bool:
            self.count += 1
            return ping(dbapi_connection)

        dialect.do_ping = counted  # type: ignore[method-assign]


async def one_unit(engine: AsyncEngine) -> int:
    async with engine.begin() as connection:
        return int((await connection.execute(text("SELECT 1"))).scalar_one())


async def test_a_busy_pool_is_not_pinged_and_an_idle_connection_is(
    cluster: PrivatePostgres,
) -> None:
    engine = create_engine(cluster.create_database("pings"))
    pings = Pings(engine)
    try:
        for _ in range(20):
            assert await one_unit(engine) == 1
        assert pings.count == 0  # a connection just made or just used is trusted

        await asyncio.sleep(PING_IDLE_SECONDS * 1.5)
        assert await one_unit(engine) == 1
        assert pings.count == 1
    finally:
        await engine.dispose()


async def test_a_connection_dropped_by_a_restart_while_idle_is_replaced_before_use(
    cluster: PrivatePostgres,
) -> None:
    engine = create_engine(cluster.create_database("restarted"))
    pings = Pings(engine)
    try:
        assert await one_unit(engine) == 1
        cluster.stop(kill=True)
        cluster.start()
        await asyncio.sleep(PING_IDLE_SECONDS * 1.5)
        # The pooled connection died with the server; its ping found it, and the unit ran on a
        # new one.
        assert await one_unit(engine) == 1
        assert pings.count == 1
    finally:
        await engine.dispose()
