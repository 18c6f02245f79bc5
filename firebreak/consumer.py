"""Idempotent event consumption: a durable pull consumer, an inbox, and ack after commit.

Each event id is recorded in the service's own inbox table in the same transaction as the
handler's effect, so a redelivered event (after a crash, a lost ack, a NATS restart) has one
effect. The message is acknowledged only after that transaction committed. A fetched batch
shares one transaction, each message in a savepoint of its own: a failing handler undoes and
retries only its own message. A message no redelivery can fix (malformed, or data the database
refuses) is dropped, loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import cache

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import Column, DateTime, Executable, MetaData, String, Table, delete
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.bus import ConsumerLost, PullFeed, ensure_consumer, ensure_stream
from firebreak.database import upsert_insert
from firebreak.events import MalformedEvent, parse_event
from firebreak.outbox import Outbox

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

Handler = Callable[[AsyncConnection, EventEnvelope], Awaitable[None]]

# JetStream keeps an event a week (firebreak.bus), so it cannot come again after that; the
# inbox remembers it a day longer, then forgets it.
INBOX_RETENTION = timedelta(days=8)
IDLE_WAIT_SECONDS = 1.0
RETRY_DELAY_SECONDS = 2.0
MAX_RETRY_DELAY_SECONDS = 60.0


def define_inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("event_id", String(36), primary_key=True),
        Column("event_type", String(100), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, index=True),
    )


class Outcome(enum.Enum):
    DONE = "ack"
    RETRY = "nak"
    DROP = "term"


class _UndoLoneEvent(Exception):
    """Rolls back the transaction of a one-event batch whose handler failed."""


class EventConsumer:
    """Feeds the events a service subscribes to into its handlers, once each."""

    def __init__(
        self,
        *,
        durable: str,
        handlers: dict[str, Handler],
        outbox: Outbox,
        inbox: Table,
        batch_size: int,
        stream: StreamConfig,
    ) -> None:
        self._durable = durable
        self._stream = stream
        self._handlers = handlers
        self._outbox = outbox
        self._inbox = inbox
        self._batch_size = batch_size

    async def run(self, client: NATS, stopping: asyncio.Event) -> None:
        """Consumes until `stopping` is set; the batch in hand is always finished first."""
        js = client.jetstream()
        feed = await self._open_feed(js, client)
        while not stopping.is_set():
            if not client.is_connected:
                # A pull request sent now would wait in the reconnect buffer and arrive stale.
                await asyncio.sleep(0.2)
                continue
            try:
                messages = await feed.next_batch(IDLE_WAIT_SECONDS)
            except ConsumerLost as error:
                # The stream or consumer is gone (a NATS whose store was lost): make them again.
                log.warning("consumer %s lost (%s); re-creating it", self._durable, error)
                await feed.close()
                feed = await self._reopen_feed(js, client)
                continue
            except nats.errors.Error as error:
                log.warning("pulling from %s failed: %s", self._durable, error)
                await asyncio.sleep(0.5)
                continue
            if messages:
                await self.process(messages)
        # Ask for nothing more, but take what the outstanding request still brings: left in an
        # abandoned inbox, it would wait out its ack wait before JetStream offered it again.
        with contextlib.suppress(ConsumerLost, nats.errors.Error):
            while late := await feed.drain_until_requests_end():
                await self.process(late)
        await feed.close()

    async def prune_inbox(self, processed_before: datetime) -> int:
        """Forgets events processed before the given time; returns how many."""
        async with self._outbox.transaction() as connection:
            result = await connection.execute(
                delete(self._inbox).where(self._inbox.c.processed_at < processed_before)
            )
        return result.rowcount

    async def _reopen_feed(self, js: JetStreamContext, client: NATS) -> PullFeed:
        """Opens the feed again, retrying until NATS answers: recovery must not end the
        consumer."""
        while True:
            await asyncio.sleep(0.5)
            try:
                return await self._open_feed(js, client)
            except (nats.errors.Error, TimeoutError) as error:
                log.warning("re-creating consumer %s failed: %s", self._durable, error)

    async def _open_feed(self, js: JetStreamContext, client: NATS) -> PullFeed:
        await ensure_stream(js, self._stream)
        await ensure_consumer(js, self._durable, list(self._handlers))
        feed = PullFeed(client, self._durable, self._batch_size)
        await feed.open()
        return feed

    async def process(self, messages: list[Msg]) -> None:
        """Applies a batch in one transaction, then settles each message by its outcome."""
        # A lone event's transaction is its savepoint: a savepoint costs more than the insert.
        isolate = len(messages) > 1
        try:
            async with self._outbox.transaction() as connection:
                outcomes = [
                    await self._apply(connection, message, isolate=isolate) for message in messages
                ]
                if not isolate and outcomes[0] is not Outcome.DONE:
                    raise _UndoLoneEvent
        except _UndoLoneEvent:
            pass  # rolled back: the failed handler's writes are gone
        except Exception:
            # The commit failed: nothing of the batch happened; JetStream will offer it again.
            log.exception("committing %d events failed; will retry", len(messages))
            outcomes = [Outcome.RETRY] * len(messages)
        for message, outcome in zip(messages, outcomes, strict=True):
            if outcome is Outcome.DONE:
                await _settle(message.ack())
            elif outcome is Outcome.RETRY:
                await _settle(message.nak(delay=_retry_delay(message)))
            else:
                await _settle(message.term())

    async def _apply(self, connection: AsyncConnection, message: Msg, *, isolate: bool) -> Outcome:
        """Runs one event's handler with its inbox row; `isolate`: in a savepoint of its own."""
        headers = message.headers or {}
        with tracer.start_as_current_span(
            f"process {message.subject}",
            context=propagate.extract(headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "process",
                "messaging.destination.name": message.subject,
                "messaging.consumer.group.name": self._durable,
                "messaging.message.id": headers.get("Nats-Msg-Id", ""),
            },
        ) as span:
            try:
                envelope = parse_event(message.data, subject=message.subject)
            except MalformedEvent as error:
                # Redelivery cannot fix a malformed message: drop it, loudly.
                log.error("dropping malformed message on %s: %s", message.subject, error)
                span.set_status(Status(StatusCode.ERROR, str(error)))
                return Outcome.DROP
            span.set_attribute("firebreak.incident_id", envelope.incident_id)
            try:
                async with connection.begin_nested() if isolate else contextlib.nullcontext():
                    applied = await self._record_in_inbox(connection, envelope)
                    if applied:
                        await self._handlers[envelope.type](connection, envelope)
            except Exception as error:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, str(error)))
                if _is_data_exception(error):
                    # Redelivery cannot fix a value the database refuses: drop it, loudly.
                    log.error(
                        "dropping %s %s (stream sequence %d): the database refuses its data: %s",
                        envelope.type,
                        envelope.id,
                        message.metadata.sequence.stream,
                        error,
                    )
                    return Outcome.DROP
                log.exception("handling %s %s failed; will retry", envelope.type, envelope.id)
                return Outcome.RETRY
            span.set_attribute("firebreak.duplicate", not applied)
            return Outcome.DONE

    async def _record_in_inbox(self, connection: AsyncConnection, envelope: EventEnvelope) -> bool:
        result = await connection.execute(
            _insert_ignoring_duplicates(connection.dialect.name, self._inbox),
            {
                "event_id": envelope.id,
                "event_type": envelope.type,
                "processed_at": datetime.now(UTC),
            },
        )
        return result.rowcount == 1


@cache
def _insert_ignoring_duplicates(dialect: str, inbox: Table) -> Executable:
    return upsert_insert(dialect, inbox).on_conflict_do_nothing(index_elements=["event_id"])


def _is_data_exception(error: Exception) -> bool:
    """PostgreSQL's SQLSTATE class 22, data exception: a value longer than its column, a NUL in
    text, a number out of range. The same event fails the same way on every delivery."""
    sqlstate = getattr(error.orig, "sqlstate", None) if isinstance(error, DBAPIError) else None
    return isinstance(sqlstate, str) and sqlstate.startswith("22")


def _retry_delay(message: Msg) -> float:
    """Backs off exponentially, so an event that keeps failing does not spin."""
    attempts = message.metadata.num_delivered or 1
    return min(RETRY_DELAY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_DELAY_SECONDS)


async def _settle(reply: Awaitable[None]) -> None:
    """Acks, naks and terms may fail while NATS is away; JetStream then redelivers, which the
    inbox makes harmless."""
    try:
        await reply
    except nats.errors.Error as error:
        log.warning("could not settle message: %s", error)
