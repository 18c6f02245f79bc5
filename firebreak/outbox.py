"""Transactional outbox: an event is stored in the same transaction as the state it describes,
and a relay publishes it to JetStream after commit, marking it sent only once JetStream acked.

The event id is the Nats-Msg-Id, so a row published twice (a crash between ack and mark) is
dropped by JetStream's duplicate window; consumers' inboxes catch anything older.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import PubAck, StreamConfig
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from sqlalchemy import (
    Column,
    DateTime,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    Text,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.bus import ensure_stream
from firebreak.database import is_postgres, reading, sequence_column
from firebreak.events import STREAM, subject_for
from firebreak.telemetry import record_error

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

PUBLISH_ACK_TIMEOUT_SECONDS = 5.0
ADDED_EVENTS = "firebreak.outbox.added"  # marks a connection whose transaction added events
# Published rows are kept a day for inspection, then deleted.
PUBLISHED_RETENTION = timedelta(days=1)


def define_outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        sequence_column(),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("subject", String(200), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), index=True),
    )


class PublishIncomplete(Exception):
    """Some events of a batch were not acknowledged; they stay pending."""


class Outbox:
    """One service's outbox: its unit of work, the writes into it, and the relay draining it."""

    def __init__(
        self, engine: AsyncEngine, table: Table, *, batch_size: int = 256, poll_seconds: float = 1.0
    ) -> None:
        self._engine = engine
        self._table = table
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        # Built once (docs/architecture.md, where the CPU goes).
        self._insert = table.insert()
        self._mark = (
            update(table)
            .where(table.c.seq.in_(bindparam("seqs", expanding=True)))
            .values(published_at=bindparam("now"))
        )
        pending = select(table).where(table.c.published_at.is_(None)).order_by(table.c.seq)
        self._pending_query = pending.limit(batch_size)
        self._claim_query = self._pending_query.with_for_update(skip_locked=True)

    @property
    def engine(self) -> AsyncEngine:
        """The service's database, which the outbox shares."""
        return self._engine

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One unit of work: commits once at the end, then wakes the relay if it added events."""
        async with self._engine.begin() as connection:
            connection.info.pop(ADDED_EVENTS, None)  # the pooled connection outlives the unit
            yield connection
            added = connection.info.pop(ADDED_EVENTS, False)
        if added:
            self._wake.set()

    async def add(self, connection: AsyncConnection, envelope: EventEnvelope) -> None:
        """Stores the event with the current trace context, to be published after commit."""
        connection.info[ADDED_EVENTS] = True
        headers: dict[str, str] = {}
        propagate.inject(headers)
        await connection.execute(
            self._insert,
            {
                "event_id": envelope.id,
                "subject": subject_for(envelope.type),
                "payload": envelope.SerializeToString(),
                "headers": json.dumps(headers),
                "created_at": datetime.now(UTC),
            },
        )

    async def run_relay(self, client: NATS, stopping: asyncio.Event, stream: StreamConfig) -> None:
        """Publishes pending events until `stopping` is set, then flushes what is left once;
        re-creates `stream` if NATS lost it."""
        # Stopping wakes the relay too, so that an idle wait is on one event, with no task each.
        woken_on_stop = asyncio.ensure_future(stopping.wait())
        woken_on_stop.add_done_callback(lambda _: self._wake.set())
        try:
            await self._relay(client, stopping, stream)
        finally:
            woken_on_stop.cancel()

    async def _relay(self, client: NATS, stopping: asyncio.Event, stream: StreamConfig) -> None:
        js = client.jetstream()  # one context: each would subscribe its own ack inbox
        last_error = ""
        while not stopping.is_set():
            self._wake.clear()
            try:
                published = await self.publish_pending(client, js)
            except Exception as error:  # NATS down or the database busy: keep rows, retry
                if str(error) != last_error:  # every commit retries: say it once
                    log.warning("outbox relay could not publish: %s", error)
                last_error = str(error)
                await self._idle(stopping)
                if client.is_connected:
                    # Connected but not acknowledged: perhaps NATS lost the stream.
                    with contextlib.suppress(Exception):
                        await ensure_stream(js, stream)
                continue
            last_error = ""
            if published < self._batch_size:
                await self._idle(stopping)
        try:
            while await self.publish_pending(client, js) == self._batch_size:
                pass
        except Exception as error:
            log.warning("outbox left events for the next start: %s", error)

    async def prune(self, published_before: datetime) -> int:
        """Deletes events published before the given time; returns how many."""
        table = self._table
        async with self._engine.begin() as connection:
            result = await connection.execute(
                delete(table).where(table.c.published_at < published_before)
            )
        return result.rowcount

    async def _idle(self, stopping: asyncio.Event) -> None:
        """Waits for a commit's wake-up, the poll interval or shutdown, whichever comes first."""
        if stopping.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._poll_seconds):
                await self._wake.wait()

    async def publish_pending(self, client: NATS, js: JetStreamContext) -> int:
        """Publishes one batch of pending events; returns how many JetStream acknowledged."""
        if not client.is_connected:
            # Fail fast: publishing into the reconnect buffer would only time out later.
            raise ConnectionError("not connected to NATS")
        if is_postgres(self._engine):
            # Replicas share the table: each claims rows the others have not locked, and holds
            # the row locks (which block no one else's inserts) until the rows are marked sent.
            async with self._engine.begin() as connection:
                rows = await self._pending(connection, claim=True)
                acked, failures = await self._publish_all(js, rows)
                await self._mark_published(connection, acked)
        else:
            # SQLite locks the whole database for a write transaction, so never hold one while
            # waiting on NATS: read, publish, then mark. (Replicas sharing one SQLite file may
            # both publish a row; JetStream drops the second copy by its message id.)
            async with reading(self._engine) as connection:
                rows = await self._pending(connection, claim=False)
            acked, failures = await self._publish_all(js, rows)
            if acked:
                async with self._engine.begin() as connection:
                    await self._mark_published(connection, acked)
        if failures:
            raise PublishIncomplete(f"{len(failures)} of {len(rows)} not acked: {failures[0]!r}")
        return len(acked)

    async def _pending(self, connection: AsyncConnection, *, claim: bool) -> Sequence[Row[Any]]:
        query = self._claim_query if claim else self._pending_query
        return (await connection.execute(query)).all()

    async def _publish_all(
        self, js: JetStreamContext, rows: Sequence[Row[Any]]
    ) -> tuple[Sequence[Row[Any]], list[BaseException]]:
        """Publishes pipelined; returns the rows JetStream acknowledged and the failures. One
        rejected event does not hold back the others: it stays pending and is tried again."""
        if not rows:
            return [], []
        acks = [await self._publish(js, row) for row in rows]
        # What is not acknowledged in time failed, and the rest still counts. nats-py (2.16)
        # never settles the future of a publish JetStream refused (a full stream): its reply
        # handler raises the error instead of setting it on the future.
        await asyncio.wait(acks, timeout=PUBLISH_ACK_TIMEOUT_SECONDS)
        acked: list[Row[Any]] = []
        failures: list[BaseException] = []
        for row, ack in zip(rows, acks, strict=True):
            if not ack.done():
                ack.cancel()
                failures.append(TimeoutError(f"event {row.event_id} was not acknowledged"))
            elif ack.cancelled():
                failures.append(asyncio.CancelledError())
            elif (error := ack.exception()) is not None:
                failures.append(error)
            else:
                acked.append(row)
        return acked, failures

    async def _mark_published(self, connection: AsyncConnection, rows: Sequence[Row[Any]]) -> None:
        if rows:
            if connection.dialect.name == "postgresql":
                # The commit need not wait for its WAL to reach the disk: a mark lost to a crash
                # only publishes its events again, which JetStream drops as duplicates.
                await connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
            await connection.execute(
                self._mark, {"seqs": [row.seq for row in rows], "now": datetime.now(UTC)}
            )

    async def _publish(self, js: JetStreamContext, row: Row[Any]) -> asyncio.Future[PubAck]:
        """Sends one event; its PRODUCER span lasts until JetStream acknowledges it."""
        headers: dict[str, str] = json.loads(row.headers)
        span = tracer.start_span(
            f"publish {row.subject}",
            context=propagate.extract(headers),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "publish",
                "messaging.destination.name": row.subject,
                "messaging.message.id": row.event_id,
            },
        )
        with trace.use_span(span, end_on_exit=False, record_exception=False):
            propagate.inject(headers)  # the consumer's span continues from this one
        headers["Nats-Msg-Id"] = row.event_id
        try:
            ack = await js.publish_async(row.subject, row.payload, headers=headers, stream=STREAM)
        except Exception as error:
            _end_span(span, error)
            raise
        ack.add_done_callback(lambda done: _end_span(span, _failure(done)))
        return ack


def _failure(done: asyncio.Future[PubAck]) -> BaseException | None:
    if done.cancelled():  # timed out waiting for the ack
        return asyncio.CancelledError()
    return done.exception()


def _end_span(span: trace.Span, error: BaseException | None) -> None:
    if error is not None:
        record_error(span, error)
    span.end()
