"""Idempotent event consumption: a durable pull consumer, an inbox, and ack after commit.

Each event id is recorded in the service's own inbox table in the same transaction as the
handler's effect, so a redelivered event (after a crash, a lost ack, a NATS restart) has one
effect. The message is acknowledged only after that transaction committed. A fetched batch
shares one transaction, without a savepoint per message (one costs more than most handlers):
when a handler fails, the batch is rolled back and applied again without the failing message,
which alone is retried. Poison is parked as a dead letter (firebreak.dead_letters), never retried
for ever nor dropped unseen: a message no redelivery can fix (malformed, or data the
database refuses) at once, one whose handler keeps failing after `max_deliveries`. An event of
a newer schema version is early, not poison: it waits for a replica that reads it.

An event whose work is a call to another service (the gateway's, which alone may call them) has
a remote step instead, run before the batch's transaction so that no connection or lock is held
while it waits; the step must be idempotent itself, since a failure between it and the commit
runs it again at the next delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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
from sqlalchemy import Column, DateTime, Executable, MetaData, String, Table, delete, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.bus import ConsumerLost, PullFeed, ensure_consumer, ensure_stream
from firebreak.database import is_transient, is_unavailable, reading, upsert_insert
from firebreak.dead_letters import DeadLetters, ParkReason
from firebreak.dead_letters.store import describe
from firebreak.events import SCHEMA_VERSION, MalformedEvent, NewerSchemaVersion, parse_event
from firebreak.outbox import Outbox
from firebreak.settings import Settings
from firebreak.telemetry import record_error

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

Handler = Callable[[AsyncConnection, EventEnvelope], Awaitable[None]]
# An event's work outside the service's database: a call to another service (module docstring).
RemoteStep = Callable[[EventEnvelope], Awaitable[None]]

# JetStream keeps an event a week (firebreak.bus), so it cannot come again after that; the
# inbox remembers it a day longer, then forgets it.
INBOX_RETENTION = timedelta(days=8)
IDLE_WAIT_SECONDS = 1.0
MAX_RETRY_DELAY_SECONDS = 60.0
MAX_NEWER_SCHEMA_DELAY_SECONDS = 300.0


def define_inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("event_id", String(36), primary_key=True),
        Column("event_type", String(100), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, index=True),
    )


@dataclass(frozen=True)
class DeliveryPolicy:
    """How often a failing message is offered again, and how soon.

    The count is enforced here, not by the server's `max_deliver` (left unlimited in
    firebreak.bus): JetStream would silently stop offering the message, leaving it in the
    stream where no one sees it; a consumer that gives up parks it where an admin does. A
    message that waited for an upgrade (newer schema) still counts its deliveries then."""

    max_deliveries: int = 5
    retry_delay_seconds: float = 2.0
    newer_schema_delay_seconds: float = 30.0
    known_schema_version: int = SCHEMA_VERSION  # the newest this consumer reads

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        return cls(
            max_deliveries=settings.max_deliveries,
            retry_delay_seconds=settings.retry_delay_seconds,
            newer_schema_delay_seconds=settings.newer_schema_delay_seconds,
        )


class Outcome(enum.Enum):
    DONE = "ack"
    RETRY = "nak"  # offered again after a delay that doubles each delivery
    WAIT = "nak until upgraded"  # a newer schema's event, offered again until a replica reads it
    PARK = "park, then term"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: ParkReason | None = None  # why it is parked
    error: str = ""


APPLIED = Verdict(Outcome.DONE)


class ClientMismatch(Exception):
    """The event names another client than the incident it changes belongs to."""


@dataclass(frozen=True)
class IncidentOwners:
    """Where a service keeps the client each incident it knows belongs to. An event naming
    another client for a known incident is forged or corrupt: it is parked, never applied.

    An incident's client never changes, so an owner once committed is kept in memory (the
    newest OWNERS_KEPT): the next events of the incident cost no read of it."""

    incident_id: Column[str]
    client_id: Column[str]
    _kept: dict[str, str] = field(default_factory=dict, init=False, compare=False, repr=False)

    async def owner(self, connection: AsyncConnection, incident_id: str) -> str | None:
        """The incident's client; None while the incident is not known here. What is read is
        noted on the connection, and kept once its transaction committed (`keep`): it may
        have been written earlier in that transaction, which may yet roll back."""
        if (kept := self._kept.get(incident_id)) is not None:
            return kept
        query = select(self.client_id).where(self.incident_id == incident_id).limit(1)
        owner: str | None = (await connection.execute(query)).scalar()
        if owner is not None:
            connection.info.setdefault(OWNERS_READ, {})[incident_id] = owner
        return owner

    def kept(self, incident_id: str) -> str | None:
        """The incident's client if kept here; None when it must be read."""
        return self._kept.get(incident_id)

    def keep(self, read: dict[str, str]) -> None:
        """Keeps owners read (`owners_read`) in a transaction that has committed."""
        for incident_id, owner in read.items():
            if len(self._kept) >= OWNERS_KEPT:
                del self._kept[next(iter(self._kept))]  # the oldest
            self._kept[incident_id] = owner

    async def mismatch(self, connection: AsyncConnection, envelope: EventEnvelope) -> str:
        """Why the event must not be applied to its incident; "" when it may (the incident is
        the client's, or not known here yet)."""
        owner = await self.owner(connection, envelope.incident_id)
        if owner is None or owner == envelope.client_id:
            return ""
        return (
            f"names client {envelope.client_id}; incident {envelope.incident_id} belongs to "
            f"client {owner}"
        )


OWNERS_KEPT = 16384  # incidents whose client a service keeps in memory
OWNERS_READ = "firebreak.owners_read"  # connection.info: owners read in its transaction


def owners_read(connection: AsyncConnection) -> dict[str, str]:
    """Takes the owners `IncidentOwners.owner` read on the connection since last taken (the
    pooled connection outlives each unit: taken at a unit's start, they are a unit before's)."""
    read: dict[str, str] = connection.info.pop(OWNERS_READ, {})
    return read


class RetryLater(Exception):
    """The work cannot be done yet, through no fault of the event's (a service it calls is
    unreachable, or has not heard of the incident yet): offered again, as during a database
    outage, without counting towards parking."""


async def recorded_only(connection: AsyncConnection, envelope: EventEnvelope) -> None:
    """The transaction's part of an event whose work was its remote step: its inbox row."""


class _HandlerFailed(Exception):
    """Rolls back the transaction of a batch in which a handler failed."""

    def __init__(self, message: Msg, envelope: EventEnvelope, error: Exception) -> None:
        super().__init__(str(error))
        self.message = message
        self.envelope = envelope
        self.error = error


class EventConsumer:
    """Feeds the events a service subscribes to into its handlers, once each.

    Without `dead_letters` (a test's own schema) poison is dropped, loudly, instead of parked.
    `remote`: the remote steps of event types whose work is a call to another service; such a
    type needs no handler."""

    def __init__(
        self,
        *,
        durable: str,
        handlers: dict[str, Handler],
        outbox: Outbox,
        inbox: Table,
        batch_size: int,
        stream: StreamConfig,
        dead_letters: DeadLetters | None = None,
        delivery: DeliveryPolicy = DeliveryPolicy(),
        owners: IncidentOwners | None = None,
        remote: dict[str, RemoteStep] | None = None,
    ) -> None:
        self._durable = durable
        self._owners = owners
        self._stream = stream
        self._remote = remote or {}
        self._handlers = dict.fromkeys(self._remote, recorded_only) | handlers
        self._outbox = outbox
        self._inbox = inbox
        self._batch_size = batch_size
        self._dead_letters = dead_letters
        self._delivery = delivery

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
        """Runs the batch's remote steps, applies the rest of it in one transaction, then
        settles each message by its verdict."""
        settled: list[tuple[Msg, Verdict]] = []
        if self._remote:
            remaining = []
            for message in messages:
                failed = await self._remote_step(message)
                if failed is None:
                    remaining.append(message)
                else:
                    settled.append((message, failed))
            messages = remaining
        if messages:
            settled += zip(messages, await self._apply_batch(messages), strict=True)
        for message, verdict in settled:
            await self._settle(message, verdict)

    async def _apply_batch(self, messages: list[Msg]) -> list[Verdict]:
        """Applies the messages in one transaction; each one's verdict."""
        try:
            async with self._outbox.transaction() as connection:
                owners_read(connection)
                verdicts = [await self._apply(connection, message) for message in messages]
                read = owners_read(connection)
            if self._owners is not None:
                self._owners.keep(read)
            return verdicts
        except _HandlerFailed as failure:  # rolled back: every handler's writes are gone
            if is_unavailable(failure.error):
                log.warning("applying %d events failed; will retry: %s", len(messages), failure)
                return [Verdict(Outcome.RETRY)] * len(messages)
            # The failed event has its verdict; the others are applied again without it.
            failed = next(i for i, message in enumerate(messages) if message is failure.message)
            others = messages[:failed] + messages[failed + 1 :]
            verdicts = await self._apply_batch(others) if others else []
            verdicts.insert(failed, self._failed(failure.message, failure.envelope, failure.error))
            return verdicts
        except Exception as error:
            # The commit failed (the database is away, most likely): nothing of the batch
            # happened, and no message is to blame; JetStream will offer them all again.
            if is_unavailable(error):  # an outage, not a bug: one line, no traceback
                log.warning("committing %d events failed; will retry: %s", len(messages), error)
            else:
                log.exception("committing %d events failed; will retry", len(messages))
            return [Verdict(Outcome.RETRY)] * len(messages)

    async def _remote_step(self, message: Msg) -> Verdict | None:
        """Runs the message's remote step, if it has one the inbox does not know done; the
        verdict when it failed (the message then stays out of the transaction), else None.
        A message that cannot be read is left to `_apply`, which parks it."""
        try:
            envelope = parse_event(
                message.data,
                subject=message.subject,
                known_version=self._delivery.known_schema_version,
            )
        except (MalformedEvent, NewerSchemaVersion):
            return None
        step = self._remote.get(envelope.type)
        if step is None:
            return None
        try:
            if await self._owners_refuse(envelope) or await self._applied(envelope.id):
                return None  # `_apply` parks it, or sees it applied before
            with tracer.start_as_current_span(
                f"call for {message.subject}",
                context=propagate.extract(message.headers or {}),
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "nats",
                    "messaging.destination.name": message.subject,
                    "messaging.consumer.group.name": self._durable,
                    "firebreak.incident_id": envelope.incident_id,
                },
            ) as span:
                try:
                    await step(envelope)
                except Exception as error:
                    record_error(span, error)
                    raise
        except Exception as error:
            return self._failed(message, envelope, error)
        return None

    async def _owners_refuse(self, envelope: EventEnvelope) -> bool:
        if self._owners is None:
            return False
        async with reading(self._outbox.engine) as connection:
            owners_read(connection)
            refused = bool(await self._owners.mismatch(connection, envelope))
            self._owners.keep(owners_read(connection))  # read outside any write: committed
        return refused

    async def _applied(self, event_id: str) -> bool:
        """Whether the inbox has the event: its remote step was done and recorded."""
        async with reading(self._outbox.engine) as connection:
            found = await connection.execute(
                select(self._inbox.c.event_id).where(self._inbox.c.event_id == event_id)
            )
            return found.first() is not None

    async def _settle(self, message: Msg, verdict: Verdict) -> None:
        attempts = message.metadata.num_delivered or 1
        if verdict.outcome is Outcome.DONE:
            await _settle(message.ack())
        elif verdict.outcome is Outcome.WAIT:
            delay = self._delivery.newer_schema_delay_seconds
            await _settle(
                message.nak(delay=_backoff(delay, attempts, MAX_NEWER_SCHEMA_DELAY_SECONDS))
            )
        elif verdict.outcome is Outcome.PARK and await self._park(message, verdict):
            await _settle(message.term())
        else:  # to retry, or to park but parking failed: offered again, parked next time
            delay = self._delivery.retry_delay_seconds
            await _settle(message.nak(delay=_backoff(delay, attempts, MAX_RETRY_DELAY_SECONDS)))

    async def _park(self, message: Msg, verdict: Verdict) -> bool:
        """Parks the message; False when it could not be kept (it is then not let go)."""
        assert verdict.reason is not None
        if self._dead_letters is None:
            log.error(
                "dropping the message at stream sequence %d on %s (Nats-Msg-Id %s), %s: %s",
                message.metadata.sequence.stream,
                message.subject,
                (message.headers or {}).get("Nats-Msg-Id", "none"),
                verdict.reason.value,
                verdict.error,
            )
            return True
        try:
            await self._dead_letters.park(message, reason=verdict.reason, error=verdict.error)
        except Exception:
            log.exception(
                "could not park the message at stream sequence %d on %s; will retry",
                message.metadata.sequence.stream,
                message.subject,
            )
            return False
        return True

    async def _apply(self, connection: AsyncConnection, message: Msg) -> Verdict:
        """Runs one event's handler with its inbox row; raises _HandlerFailed when it fails."""
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
                envelope = parse_event(
                    message.data,
                    subject=message.subject,
                    known_version=self._delivery.known_schema_version,
                )
            except NewerSchemaVersion as early:
                self._log_early(message, early)
                return Verdict(Outcome.WAIT)
            except MalformedEvent as error:
                span.set_status(Status(StatusCode.ERROR, str(error)))
                return Verdict(Outcome.PARK, ParkReason.MALFORMED, describe(error))
            span.set_attribute("firebreak.incident_id", envelope.incident_id)
            handler = self._handlers.get(envelope.type)
            if handler is None:
                # Delivered before an upgrade took its type out of the durable's filter (the
                # server still redelivers what was in flight then): nothing here acts on it now.
                log.info(
                    "%s %s is no longer consumed here: acknowledged", envelope.type, envelope.id
                )
                return APPLIED
            if mismatch := await self._client_mismatch(connection, envelope):
                span.set_status(Status(StatusCode.ERROR, "client mismatch"))
                return Verdict(Outcome.PARK, ParkReason.CLIENT_MISMATCH, mismatch)
            try:
                applied = await apply_once(connection, self._inbox, handler, envelope)
            except Exception as error:
                record_error(span, error)
                failure = _HandlerFailed(message, envelope, error)
            else:
                span.set_attribute("firebreak.duplicate", not applied)
                return APPLIED
        # Raised once the span has ended: the span must not record the error's text.
        raise failure

    async def _client_mismatch(self, connection: AsyncConnection, envelope: EventEnvelope) -> str:
        """Why the event must not be applied to its incident's client; "" when it may."""
        if self._owners is None:
            return ""
        mismatch = await self._owners.mismatch(connection, envelope)
        if mismatch:
            # An alert, not a retry: firebreak_dead_letters_total{reason="client_mismatch"}.
            log.error("%s %s %s: parked", envelope.type, envelope.id, mismatch)
        return mismatch

    def _failed(self, message: Msg, envelope: EventEnvelope, error: Exception) -> Verdict:
        if _is_data_exception(error):
            # Redelivery cannot fix a value the database refuses.
            return Verdict(Outcome.PARK, ParkReason.DATA_REFUSED, describe(error))
        attempts = message.metadata.num_delivered or 1
        if is_transient(error) or isinstance(error, RetryLater):
            # An unreachable database or service, or a deadlock with another replica, is no
            # fault of the event's: it does not count towards parking, nor is it a bug.
            log.warning(
                "handling %s %s (stream sequence %d) met %s; will retry",
                envelope.type,
                envelope.id,
                message.metadata.sequence.stream,
                error,
            )
            return Verdict(Outcome.RETRY)
        if attempts >= self._delivery.max_deliveries:
            return Verdict(Outcome.PARK, ParkReason.HANDLER_FAILED, describe(error))
        log.exception(
            "handling %s %s (stream sequence %d, delivery %d) failed; will retry",
            envelope.type,
            envelope.id,
            message.metadata.sequence.stream,
            attempts,
        )
        return Verdict(Outcome.RETRY)

    def _log_early(self, message: Msg, early: NewerSchemaVersion) -> None:
        # Once per event (its first delivery) is enough: it comes again until upgraded.
        level = logging.WARNING if (message.metadata.num_delivered or 1) == 1 else logging.DEBUG
        log.log(
            level,
            "not yet reading the message at stream sequence %d on %s: %s; it waits for an "
            "upgraded replica",
            message.metadata.sequence.stream,
            message.subject,
            early,
        )


async def apply_once(
    connection: AsyncConnection, inbox: Table, handler: Handler, envelope: EventEnvelope
) -> bool:
    """Records the event in the inbox and runs its handler, in the caller's transaction,
    unless the inbox knows it already; returns whether it was applied now."""
    result = await connection.execute(
        _insert_ignoring_duplicates(connection.dialect.name, inbox),
        {
            "event_id": envelope.id,
            "event_type": envelope.type,
            "processed_at": datetime.now(UTC),
        },
    )
    if result.rowcount != 1:
        return False
    await handler(connection, envelope)
    return True


@cache
def _insert_ignoring_duplicates(dialect: str, inbox: Table) -> Executable:
    return upsert_insert(dialect, inbox).on_conflict_do_nothing(index_elements=["event_id"])


def _is_data_exception(error: Exception) -> bool:
    """PostgreSQL's SQLSTATE class 22, data exception: a value longer than its column, a NUL in
    text, a number out of range. The same event fails the same way on every delivery."""
    sqlstate = getattr(error.orig, "sqlstate", None) if isinstance(error, DBAPIError) else None
    return isinstance(sqlstate, str) and sqlstate.startswith("22")


def _backoff(first: float, attempts: int, longest: float) -> float:
    """`first`, doubled each delivery after the first, up to `longest` (or `first` when that
    is longer): an event that keeps failing does not spin."""
    return min(first * 2 ** min(attempts - 1, 30), max(first, longest))


async def _settle(reply: Awaitable[None]) -> None:
    """Acks, naks and terms may fail while NATS is away; JetStream then redelivers, which the
    inbox makes harmless."""
    try:
        await reply
    except nats.errors.Error as error:
        log.warning("could not settle message: %s", error)
