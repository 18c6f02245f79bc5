"""A service whose new release consumes fewer event types (issue 16, point 5) starts on the
durable its replicas share: the durable's filter subjects shrink in place, and what was in flight
of a type no longer taken is acknowledged, not retried until parked. A real nats-server, SQLite."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.database import create_engine, create_schema
from firebreak.events import INCIDENT_REPORTED, INCIDENT_TRIAGED, STREAM, subject_for
from tests.test_outbox_and_inbox import (
    Recorder,
    consumer_for,
    count,
    inbox_table,
    metadata,
    reported_event,
    run_consumer_until_settled,
)
from tests.test_poison_events import state_change

DURABLE = "shrinking"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'filters.db'}")
    await create_schema(engine, metadata)
    yield engine
    await engine.dispose()


async def test_a_durable_whose_subjects_shrank_is_updated_on_restart(
    engine: AsyncEngine, client: NATS
) -> None:
    js = client.jetstream()
    before = Recorder()
    await js.publish(subject_for(INCIDENT_REPORTED), reported_event("inc-1").SerializeToString())
    await run_consumer_until_settled(
        consumer_for(engine, DURABLE, {INCIDENT_REPORTED: before, INCIDENT_TRIAGED: before}),
        client,
        DURABLE,
    )
    assert len(before.ids) == 1

    # A report in flight when the release changes: a replica of the old one took it and went
    # away without acknowledging it. Then events of both types come.
    in_flight = reported_event("inc-2")
    await js.publish(subject_for(INCIDENT_REPORTED), in_flight.SerializeToString())
    old_replica = await js.pull_subscribe_bind(DURABLE, stream=STREAM)
    [taken] = await old_replica.fetch(1, timeout=5)
    skipped = reported_event("inc-3")
    triaged = state_change(INCIDENT_TRIAGED, "inc-3", version=1, status="triaged")
    for event in (skipped, triaged):
        await js.publish(subject_for(event.type), event.SerializeToString())

    after = Recorder()
    upgraded = consumer_for(engine, DURABLE, {INCIDENT_TRIAGED: after})
    stopping = asyncio.Event()
    running = asyncio.create_task(upgraded.run(client, stopping))
    try:
        for _ in range(300):
            info = await js.consumer_info(STREAM, DURABLE)
            if info.config.filter_subjects == [subject_for(INCIDENT_TRIAGED)]:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail(f"the durable's filter was not updated: {info.config}")
        await taken.nak()  # offered again now rather than after the ack wait
        for _ in range(300):
            info = await js.consumer_info(STREAM, DURABLE)
            if after.ids and info.num_pending == 0 and info.num_ack_pending == 0:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail(f"the upgraded consumer did not settle: {info}")
    finally:
        stopping.set()
        await running

    # The report after the change was never offered; the one in flight was acknowledged at
    # its redelivery (retried, it would still be pending, waiting out its backoff), unapplied.
    assert after.ids == [triaged.id]
    recorded = select(func.count()).where(inbox_table.c.event_id == in_flight.id)
    assert await count(engine, recorded) == 0
