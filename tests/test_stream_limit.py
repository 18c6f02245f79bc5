"""A full stream refuses new events (discard: new) instead of deleting unread ones: the events
wait in the outbox, and the relay publishes them once the stream has room again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak import bus
from firebreak import outbox as outbox_module
from firebreak.database import create_engine, create_schema, reading
from firebreak.events import STREAM
from firebreak.outbox import Outbox, PublishIncomplete, define_outbox_table
from tests.conftest import NatsServer
from tests.test_outbox_and_inbox import reported_event

metadata = MetaData()
outbox_table = define_outbox_table(metadata)
EVENTS = 40
SMALL_STREAM_BYTES = 4096  # room for about a dozen events of about 300 bytes


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'limit.db'}")
    await create_schema(engine, metadata)
    yield engine
    await engine.dispose()


@pytest.fixture
async def client(nats_server: NatsServer) -> AsyncIterator[NATS]:
    connection = await nats.connect(nats_server.url)
    yield connection
    await connection.close()


async def pending_rows(engine: AsyncEngine) -> int:
    async with reading(engine) as connection:
        query = select(func.count()).where(outbox_table.c.published_at.is_(None))
        return (await connection.execute(query)).scalar_one()


async def run_relay_until(
    outbox: Outbox, client: NATS, stream_max_bytes: int, done: asyncio.Event
) -> None:
    stopping = asyncio.Event()
    config = bus.stream_config(max_bytes=stream_max_bytes)
    relay = asyncio.create_task(outbox.run_relay(client, stopping, config))
    await done.wait()
    stopping.set()
    await relay


async def test_a_full_stream_keeps_events_in_the_outbox_until_it_has_room(
    engine: AsyncEngine, client: NATS, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A refused publish is never answered (see _publish_all): it fails when its ack wait ends,
    # which need not be seconds here.
    monkeypatch.setattr(outbox_module, "PUBLISH_ACK_TIMEOUT_SECONDS", 0.5)
    js = client.jetstream()
    await bus.ensure_stream(js, bus.stream_config(max_bytes=SMALL_STREAM_BYTES))
    outbox = Outbox(engine, outbox_table, poll_seconds=0.05)
    async with outbox.transaction() as connection:
        for number in range(EVENTS):
            await outbox.add(connection, reported_event(f"inc-{number}"))

    with pytest.raises(PublishIncomplete):
        await outbox.publish_pending(client, js)
    full = (await js.stream_info(STREAM)).state
    assert 0 < full.messages < EVENTS
    assert await pending_rows(engine) == EVENTS - full.messages

    # The relay keeps trying; the stream keeps refusing, and deletes none of what it holds.
    tried = asyncio.Event()
    relaying = asyncio.create_task(run_relay_until(outbox, client, SMALL_STREAM_BYTES, tried))
    await asyncio.sleep(0.5)
    tried.set()
    await relaying
    state = (await js.stream_info(STREAM)).state
    assert (state.first_seq, state.messages) == (1, full.messages)
    assert await pending_rows(engine) == EVENTS - full.messages

    # Room again (here: a release with a larger FIREBREAK_STREAM_MAX_BYTES; in time, the oldest
    # events ageing out): the relay publishes the rest, each once.
    drained = asyncio.Event()
    relaying = asyncio.create_task(run_relay_until(outbox, client, 1024 * 1024, drained))
    for _ in range(200):
        if await pending_rows(engine) == 0:
            break
        await asyncio.sleep(0.05)
    drained.set()
    await relaying
    state = (await js.stream_info(STREAM)).state
    assert (state.first_seq, state.messages) == (1, EVENTS)
    assert await pending_rows(engine) == 0
