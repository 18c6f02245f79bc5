"""The outbox and inbox contracts, against a real nats-server and each real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import nats.js.errors
import pytest
import sqlalchemy.event
from nats.aio.client import Client as NATS
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import Column, MetaData, Select, String, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak import bus
from firebreak.api.events.v1 import events_pb2
from firebreak.consumer import EventConsumer, Handler, define_inbox_table
from firebreak.database import create_engine, create_schema, is_postgres, reading
from firebreak.events import INCIDENT_REPORTED, INCIDENT_TRIAGED, STREAM, new_event, subject_for
from firebreak.launcher import local_scope_token_key
from firebreak.outbox import Outbox, define_outbox_table
from firebreak.settings import Settings
from services.gateway import models as gateway_models
from services.gateway.backends import Backends
from tests.conftest import BACKENDS, NatsServer

metadata = MetaData()
outbox_table = define_outbox_table(metadata)
inbox_table = define_inbox_table(metadata)
effects = Table("effects", metadata, Column("event_id", String(36)))


@pytest.fixture(params=BACKENDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "postgresql":
        make_database: Callable[[str], str] = request.getfixturevalue("postgres")
        url = make_database("contract")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'contract.db'}"
    engine = create_engine(url)
    await create_schema(engine, metadata)
    yield engine
    await engine.dispose()


def reported_event(incident_id: str = "inc-1") -> events_pb2.EventEnvelope:
    return new_event(
        INCIDENT_REPORTED,
        incident_id=incident_id,
        client_id="client-1",
        producer="test",
        payload=events_pb2.IncidentReported(
            reference="INC-2026-000001", title="t", impact="minor", urgency="low"
        ),
    )


async def count(engine: AsyncEngine, query: Select[int]) -> int:
    async with reading(engine) as connection:
        return (await connection.execute(query)).scalar_one()


async def test_only_committed_events_are_published_once_with_their_id(
    engine: AsyncEngine, client: NATS
) -> None:
    outbox = Outbox(engine, outbox_table)
    committed, rolled_back = reported_event("kept"), reported_event("discarded")
    trace.set_tracer_provider(TracerProvider())
    with trace.get_tracer("test").start_as_current_span("request"):
        async with outbox.transaction() as connection:
            await outbox.add(connection, committed)
    with pytest.raises(RuntimeError):
        async with outbox.transaction() as connection:
            await outbox.add(connection, rolled_back)
            raise RuntimeError("the unit of work failed")

    statements: list[str] = []
    sqlalchemy.event.listen(engine.sync_engine, "before_cursor_execute", _noting(statements))
    assert await outbox.publish_pending(client, client.jetstream()) == 1
    assert (
        await outbox.publish_pending(client, client.jetstream()) == 0
    )  # marked sent: nothing left
    # On PostgreSQL the mark's commit does not wait for the disk: a lost mark only publishes
    # again, which JetStream drops as a duplicate. Nothing else is committed so.
    relaxed = [s for s in statements if "synchronous_commit" in s]
    assert relaxed == (["SET LOCAL synchronous_commit = off"] if is_postgres(engine) else [])
    published = await count(
        engine, select(func.count()).where(outbox_table.c.published_at.is_not(None))
    )
    assert published == 1

    js = client.jetstream()
    info = await js.stream_info(STREAM)
    assert info.state.messages == 1
    message = await js.get_last_msg(STREAM, subject_for(INCIDENT_REPORTED))
    assert events_pb2.EventEnvelope.FromString(message.data).id == committed.id
    assert message.headers is not None
    assert message.headers["Nats-Msg-Id"] == committed.id
    assert message.headers["traceparent"].startswith("00-")


async def test_the_relay_publishes_promptly_after_commit(engine: AsyncEngine, client: NATS) -> None:
    # A poll interval far longer than the test: only the commit's wake-up can publish in time.
    outbox = Outbox(engine, outbox_table, poll_seconds=3600)
    stopping = asyncio.Event()
    relay = asyncio.create_task(outbox.run_relay(client, stopping, bus.stream_config()))
    await asyncio.sleep(0.2)  # the relay is idle and waiting
    async with outbox.transaction() as connection:
        await outbox.add(connection, reported_event())
    js = client.jetstream()
    published_while_running = False
    for _ in range(100):
        if (await js.stream_info(STREAM)).state.messages == 1:
            published_while_running = True
            break
        await asyncio.sleep(0.02)
    stopping.set()
    await asyncio.wait_for(relay, 5)  # shutdown does not wait out the poll interval
    assert published_while_running


async def run_consumer_until_settled(consumer: EventConsumer, client: NATS, durable: str) -> None:
    """Runs the consumer until it has acknowledged everything in the stream."""
    js = client.jetstream()
    stopping = asyncio.Event()
    task = asyncio.create_task(consumer.run(client, stopping))
    info = None
    try:
        for _ in range(300):
            await asyncio.sleep(0.05)
            try:
                info = await js.consumer_info(STREAM, durable)
            except nats.js.errors.NotFoundError:
                continue  # the consumer has not made its durable consumer yet
            if info.num_pending == 0 and info.num_ack_pending == 0:
                return
        pytest.fail(f"{durable} did not acknowledge everything: {info}")
    finally:
        stopping.set()
        await task


class Recorder:
    """A handler that notes the id of each event it is given; with `effect`, it also writes a
    row in the same transaction, and fails (after writing) the first `failures` times it is
    given the event `fail_for`."""

    def __init__(
        self, *, effect: bool = False, fail_for: str | None = None, failures: int = 1
    ) -> None:
        self.ids: list[str] = []
        self._effect = effect
        self._fail_for = fail_for
        self._failures = failures

    async def __call__(self, connection: AsyncConnection, event: events_pb2.EventEnvelope) -> None:
        self.ids.append(event.id)
        if self._effect:
            await connection.execute(effects.insert().values(event_id=event.id))
        if event.id == self._fail_for and self.ids.count(event.id) <= self._failures:
            raise RuntimeError("this attempt fails after writing")


def consumer_for(
    engine: AsyncEngine, durable: str, handlers: dict[str, Handler], outbox: Outbox | None = None
) -> EventConsumer:
    return EventConsumer(
        durable=durable,
        handlers=handlers,
        outbox=outbox or Outbox(engine, outbox_table),
        inbox=inbox_table,
        batch_size=16,
        stream=bus.stream_config(),
    )


async def test_a_redelivered_event_is_applied_once_and_both_deliveries_are_acked(
    engine: AsyncEngine, client: NATS
) -> None:
    handler = Recorder(effect=True)
    consumer = consumer_for(engine, "contract", {INCIDENT_REPORTED: handler})
    event = reported_event()
    js = client.jetstream()
    for delivery in range(3):
        await js.publish(
            subject_for(INCIDENT_REPORTED),
            event.SerializeToString(),
            headers={"Nats-Msg-Id": f"{event.id}-{delivery}"},
        )
    await run_consumer_until_settled(consumer, client, "contract")

    assert handler.ids == [event.id]
    assert await count(engine, select(func.count()).select_from(effects)) == 1
    assert await count(engine, select(func.count()).select_from(inbox_table)) == 1
    info = await js.consumer_info(STREAM, "contract")
    assert info.num_redelivered == 0  # the duplicates were acked, not failed and retried


async def test_a_failed_handler_leaves_no_trace_and_the_event_comes_again(
    engine: AsyncEngine, client: NATS
) -> None:
    event = reported_event()
    flaky = Recorder(effect=True, fail_for=event.id)
    consumer = consumer_for(engine, "flaky", {INCIDENT_REPORTED: flaky})
    await client.jetstream().publish(subject_for(INCIDENT_REPORTED), event.SerializeToString())
    await run_consumer_until_settled(consumer, client, "flaky")

    assert flaky.ids == [event.id, event.id]
    assert await count(engine, select(func.count()).select_from(effects)) == 1


async def test_a_failed_handler_undoes_only_its_own_event_of_a_batch(
    engine: AsyncEngine, client: NATS
) -> None:
    events = [reported_event(f"inc-{number}") for number in range(5)]
    ids = [event.id for event in events]
    flaky = Recorder(effect=True, fail_for=ids[2])
    consumer = consumer_for(engine, "batch", {INCIDENT_REPORTED: flaky})
    js = client.jetstream()
    for event in events:
        await js.publish(subject_for(INCIDENT_REPORTED), event.SerializeToString())
    pulling = await js.pull_subscribe(subject_for(INCIDENT_REPORTED), durable="batch")
    batch = await pulling.fetch(len(events), timeout=5)
    await pulling.unsubscribe()
    assert len(batch) == len(events)
    statements: list[str] = []
    sqlalchemy.event.listen(engine.sync_engine, "before_cursor_execute", _noting(statements))

    await consumer.process(batch)
    # The failure rolled the batch back; it was applied again without the failed event, which
    # its handler saw once.
    assert flaky.ids == [ids[0], ids[1], ids[2], ids[0], ids[1], ids[3], ids[4]]
    assert await effect_ids(engine) == sorted(ids[:2] + ids[3:])
    # A batch shares its transaction with no savepoint per event: one costs more than most
    # handlers.
    assert statements and not [s for s in statements if "SAVEPOINT" in s.upper()]

    # The failed event alone comes again, and is applied then.
    await run_consumer_until_settled(consumer, client, "batch")
    assert flaky.ids[7:] == [ids[2]]
    assert await effect_ids(engine) == sorted(ids)
    assert await count(engine, select(func.count()).select_from(inbox_table)) == len(ids)


async def effect_ids(engine: AsyncEngine) -> list[str]:
    async with reading(engine) as connection:
        return sorted((await connection.execute(select(effects.c.event_id))).scalars().all())


def _noting(statements: list[str]) -> Callable[..., None]:
    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    return note


async def test_a_malformed_message_is_dropped_not_retried(
    engine: AsyncEngine, client: NATS
) -> None:
    handler = Recorder()
    consumer = consumer_for(engine, "strict", {INCIDENT_REPORTED: handler})
    js = client.jetstream()
    await js.publish(subject_for(INCIDENT_REPORTED), b"\xff\x00 not protobuf")
    await js.publish(subject_for(INCIDENT_REPORTED), reported_event().SerializeToString())
    await run_consumer_until_settled(consumer, client, "strict")
    assert len(handler.ids) == 1
    info = await js.consumer_info(STREAM, "strict")
    assert info.num_pending == 0 and info.num_redelivered == 0


async def test_an_event_on_the_wrong_subject_is_dropped(engine: AsyncEngine, client: NATS) -> None:
    handler = Recorder()
    consumer = consumer_for(
        engine, "subjects", {INCIDENT_REPORTED: handler, INCIDENT_TRIAGED: handler}
    )
    # An incident.reported envelope published as if it were incident.triaged.
    await client.jetstream().publish(
        subject_for(INCIDENT_TRIAGED), reported_event().SerializeToString()
    )
    await run_consumer_until_settled(consumer, client, "subjects")
    assert handler.ids == []


async def test_a_consumer_recreates_its_stream_when_nats_lost_it(
    engine: AsyncEngine, client: NATS
) -> None:
    handler = Recorder()
    consumer = consumer_for(engine, "survivor", {INCIDENT_REPORTED: handler})
    js = client.jetstream()
    stopping = asyncio.Event()
    task = asyncio.create_task(consumer.run(client, stopping))
    try:
        await asyncio.sleep(0.3)
        await js.delete_stream(STREAM)  # as after a NATS whose store was wiped
        event = reported_event()
        for _ in range(100):  # the consumer puts the stream back; then the event can land
            await asyncio.sleep(0.1)
            try:
                await js.publish(subject_for(INCIDENT_REPORTED), event.SerializeToString())
                break
            except nats.js.errors.NoStreamResponseError:
                continue
        for _ in range(100):
            if handler.ids:
                break
            await asyncio.sleep(0.05)
    finally:
        stopping.set()
        await task
    assert handler.ids == [event.id]


async def test_old_published_events_and_old_inbox_entries_are_pruned(
    engine: AsyncEngine, client: NATS
) -> None:
    outbox = Outbox(engine, outbox_table)
    old, recent, unpublished = reported_event("old"), reported_event("recent"), reported_event()
    for event in (old, recent):
        async with outbox.transaction() as connection:
            await outbox.add(connection, event)
    assert await outbox.publish_pending(client, client.jetstream()) == 2
    async with outbox.transaction() as connection:
        await outbox.add(connection, unpublished)

    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(
            update(outbox_table)
            .where(outbox_table.c.event_id == old.id)
            .values(published_at=now - timedelta(days=3))
        )
    assert await outbox.prune(now - timedelta(days=1)) == 1
    async with reading(engine) as connection:
        kept = set((await connection.execute(select(outbox_table.c.event_id))).scalars())
    assert kept == {recent.id, unpublished.id}  # never an event still to be published

    consumer = consumer_for(engine, "pruned", {INCIDENT_REPORTED: Recorder()}, outbox)
    await run_consumer_until_settled(consumer, client, "pruned")
    async with engine.begin() as connection:
        await connection.execute(
            update(inbox_table)
            .where(inbox_table.c.event_id == old.id)
            .values(processed_at=now - timedelta(days=9))
        )
    assert await consumer.prune_inbox(now - timedelta(days=8)) == 1
    assert await count(engine, select(func.count()).select_from(inbox_table)) == 1


async def test_the_gateway_prunes_its_published_person_events(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """The gateway's outbox (person.registered / person.changed) is pruned like a service's."""
    settings = Settings.from_environment(
        {
            "FIREBREAK_NATS_URL": nats_server.url,
            "FIREBREAK_VAR_DIR": str(tmp_path),
            "FIREBREAK_SCOPE_TOKEN_KEY": local_scope_token_key(tmp_path),
        }
    )
    engine = create_engine(settings.database_url("gateway"))
    await create_schema(engine, gateway_models.metadata)
    outbox = Outbox(engine, gateway_models.outbox)
    published_long_ago, waiting = reported_event("old"), reported_event("waiting")
    for event in (published_long_ago, waiting):
        async with outbox.transaction() as connection:
            await outbox.add(connection, event)
    async with engine.begin() as connection:
        await connection.execute(
            update(gateway_models.outbox)
            .where(gateway_models.outbox.c.event_id == published_long_ago.id)
            .values(published_at=datetime.now(UTC) - timedelta(days=3))
        )
    outbox_rows = select(gateway_models.outbox.c.event_id)

    backends = Backends.open(settings, engine)
    try:
        for _ in range(200):
            async with reading(engine) as connection:
                kept = set((await connection.execute(outbox_rows)).scalars())
            if published_long_ago.id not in kept:
                break
            await asyncio.sleep(0.05)
    finally:
        await backends.close()
    assert kept == {waiting.id}  # the old row pruned; the other one published, not pruned
