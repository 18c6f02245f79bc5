"""Samples what requests do not show, every few seconds, each with one cheap query: the
outbox's backlog, NATS's connection, every durable consumer's state, dead letters, and
notify's escalation timers. It also raises the alarm when events expire unread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.client import Client as NATS
from nats.js.api import ConsumerInfo
from sqlalchemy import DateTime, String, column, func, select, table
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.database import reading
from firebreak.dead_letters import count_parked
from firebreak.events import STREAM
from firebreak.metrics import (
    CONSUMER_ACK_PENDING,
    CONSUMER_EVENTS_EXPIRED_UNREAD,
    CONSUMER_PENDING,
    CONSUMER_REDELIVERED,
    DEAD_LETTERS_PARKED,
    ESCALATION_TIMERS_PENDING,
    NATS_CONNECTED,
    OUTBOX_OLDEST_PENDING_AGE,
    OUTBOX_PENDING,
)

log = logging.getLogger(__name__)

# Every service's outbox (firebreak.outbox.define_outbox_table), read by name: only the
# columns the gauges need.
_outbox = table(
    "outbox",
    column("created_at", DateTime(timezone=True)),
    column("published_at", DateTime(timezone=True)),
)
# Notify's running escalations (services/notify/models.py): the step to come is a row, not a
# timer in memory, so "timers pending" is a count.
_escalations = table(
    "escalations", column("status", String), column("next_at", DateTime(timezone=True))
)


@dataclass(frozen=True)
class ConsumerPosition:
    """What a durable consumer had left to read, and how many deliveries it had had."""

    pending: int
    deliveries: int

    @classmethod
    def of(cls, info: ConsumerInfo) -> ConsumerPosition:
        deliveries = info.delivered.consumer_seq if info.delivered is not None else 0
        return cls(pending=info.num_pending or 0, deliveries=deliveries)

    def expired_since(self, earlier: ConsumerPosition) -> int:
        """Events pending then that are neither delivered since nor pending now. The stream
        only lets an event go when it is older than its max age, so these expired unread. A
        lower bound: events that came and went between two samples are not seen."""
        delivered = self.deliveries - earlier.deliveries
        if delivered < 0:  # the consumer was made anew
            return 0
        return max(0, earlier.pending - delivered - self.pending)


class MetricsSampler:
    """One process's gauges. `nats` gives the process's NATS client, None until it has one."""

    def __init__(
        self,
        *,
        service: str,
        engine: AsyncEngine,
        nats: Callable[[], NATS | None],
        consumes: bool,
        stream: str = STREAM,
    ) -> None:
        self._nats = nats
        self._service = service
        self._engine = engine
        self._stream = stream
        self._consumers: dict[str, ConsumerPosition] = {}
        self._failures: dict[str, str] = {}
        self._samples: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("outbox", self._sample_outbox),
            ("consumers", self._sample_consumers),
        ]
        if consumes:  # only consuming services park dead letters
            self._samples.append(("dead letters", self._sample_dead_letters))
        if service == "notify":
            self._samples.append(("escalations", self._sample_escalations))

    async def run(self, stopping: asyncio.Event, interval: float) -> None:
        """Samples every `interval` seconds until `stopping` is set."""
        while not stopping.is_set():
            await self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)

    async def sample(self) -> None:
        """One pass. A part that fails (its database or NATS away) keeps its last values and is
        tried again next time; a sampler must never stop the process."""
        NATS_CONNECTED.labels(self._service).set(self._connected())
        for name, sample in self._samples:
            try:
                await sample()
            except Exception as error:
                if self._failures.get(name) != str(error):  # say each new failure once
                    log.warning("sampling %s for metrics failed: %s", name, error)
                self._failures[name] = str(error)
            else:
                self._failures.pop(name, None)

    def _connected(self) -> bool:
        client = self._nats()
        return client is not None and client.is_connected

    async def _sample_outbox(self) -> None:
        async with reading(self._engine) as connection:
            pending, oldest = (
                await connection.execute(
                    select(func.count(), func.min(_outbox.c.created_at)).where(
                        _outbox.c.published_at.is_(None)
                    )
                )
            ).one()
        OUTBOX_PENDING.labels(self._service).set(pending)
        OUTBOX_OLDEST_PENDING_AGE.labels(self._service).set(_age_seconds(oldest))

    async def _sample_consumers(self) -> None:
        client = self._nats()
        if client is None or not client.is_connected:
            return
        for info in await client.jetstream().consumers_info(self._stream):
            durable = info.config.durable_name
            if durable:
                self._observe_consumer(durable, info)

    def _observe_consumer(self, durable: str, info: ConsumerInfo) -> None:
        CONSUMER_PENDING.labels(durable).set(info.num_pending or 0)
        CONSUMER_ACK_PENDING.labels(durable).set(info.num_ack_pending or 0)
        CONSUMER_REDELIVERED.labels(durable).set(info.num_redelivered or 0)
        position = ConsumerPosition.of(info)
        earlier = self._consumers.get(durable)
        self._consumers[durable] = position
        expired = position.expired_since(earlier) if earlier is not None else 0
        if expired:
            CONSUMER_EVENTS_EXPIRED_UNREAD.labels(durable).inc(expired)
            log.error(
                "%d events expired in stream %s before consumer %s read them: it was away "
                "longer than the stream keeps events (docs/architecture.md)",
                expired,
                self._stream,
                durable,
            )

    async def _sample_dead_letters(self) -> None:
        DEAD_LETTERS_PARKED.labels(self._service).set(await count_parked(self._engine))

    async def _sample_escalations(self) -> None:
        async with reading(self._engine) as connection:
            running = await connection.execute(
                select(func.count())
                .select_from(_escalations)
                .where(_escalations.c.status == "running", _escalations.c.next_at.is_not(None))
            )
        ESCALATION_TIMERS_PENDING.set(running.scalar_one())


def connected_client(connecting: asyncio.Task[NATS]) -> NATS | None:
    """The client a background connection made, once it has made one."""
    if connecting.done() and not connecting.cancelled() and connecting.exception() is None:
        return connecting.result()
    return None


def _age_seconds(created_at: datetime | None) -> float:
    if created_at is None:
        return 0.0
    if created_at.tzinfo is None:  # SQLite keeps no zone; Firebreak writes UTC
        created_at = created_at.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - created_at).total_seconds())
