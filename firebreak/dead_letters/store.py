"""Where a service keeps its dead letters, and the metric that counts them."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from nats.aio.msg import Msg
from prometheus_client import Counter
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    table,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.database import reading
from firebreak.keyset_pages import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, encode_cursor, newest_first

log = logging.getLogger(__name__)

TABLE_NAME = "dead_letters"
ERROR_LIMIT = 2000  # characters of an error kept: its type and message, not a whole traceback

PARKED = Counter(
    "firebreak_dead_letters",
    "Messages parked as dead letters by this process, by why",
    ["service", "reason"],
)


class ParkReason(StrEnum):
    HANDLER_FAILED = "handler_failed"  # its handler failed on every one of the max deliveries
    MALFORMED = "malformed"  # not an envelope this service can read: no delivery can fix it
    DATA_REFUSED = "data_refused"  # the database refuses its data (SQLSTATE class 22)
    # It names another client than the incident it changes belongs to: forged or corrupt.
    CLIENT_MISMATCH = "client_mismatch"


def define_dead_letter_table(metadata: MetaData) -> Table:
    return Table(
        TABLE_NAME,
        metadata,
        Column("id", String(36), primary_key=True),
        Column("stream_sequence", BigInteger, nullable=False),
        Column("subject", String(200), nullable=False),
        # "" where the message was not an envelope that said.
        Column("event_id", String(36), nullable=False),
        Column("event_type", String(100), nullable=False),
        Column("incident_id", String(36), nullable=False),
        Column("client_id", String(36), nullable=False),
        Column("payload", LargeBinary, nullable=False),  # the message as it came, for replay
        Column("headers", Text, nullable=False),  # JSON, with the trace context it carried
        Column("reason", String(20), nullable=False),
        Column("error", Text, nullable=False),  # the last one: parking's, or a replay's
        Column("deliveries", Integer, nullable=False),
        Column("parked_at", DateTime(timezone=True), nullable=False, index=True),
    )


def describe(error: BaseException) -> str:
    """An error as a dead letter records it: its type and message."""
    return storable(f"{type(error).__name__}: {error}", ERROR_LIMIT)


def storable(text: str, limit: int) -> str:
    """`text` as any database keeps it: PostgreSQL refuses a NUL in text, and a column its
    length; a poison message may carry either."""
    return text.replace("\x00", "\\x00")[:limit]


@dataclass(frozen=True)
class DeadLetters:
    """One service's dead letters, in its own database."""

    service: str
    engine: AsyncEngine
    table: Table

    async def park(self, message: Msg, *, reason: ParkReason, error: str) -> None:
        """Keeps the message, in a transaction of its own, counts it and logs it; raises when
        it could not be kept (the caller then leaves it to JetStream to offer again)."""
        envelope = _readable_part(message.data)
        sequence = message.metadata.sequence.stream
        deliveries = message.metadata.num_delivered or 1
        row = {
            "id": str(uuid.uuid4()),
            "stream_sequence": sequence,
            "subject": storable(message.subject, 200),
            "event_id": storable(envelope.id, 36),
            "event_type": storable(envelope.type, 100),
            "incident_id": storable(envelope.incident_id, 36),
            "client_id": storable(envelope.client_id, 36),
            "payload": message.data,
            "headers": json.dumps(message.headers or {}),
            "reason": reason.value,
            "error": storable(error, ERROR_LIMIT),
            "deliveries": deliveries,
            "parked_at": datetime.now(UTC),
        }
        async with self.engine.begin() as connection:
            await connection.execute(self.table.insert().values(row))
        PARKED.labels(service=self.service, reason=reason.value).inc()
        # Not the error's text: a database's may quote the event's values. The dead letter
        # keeps it, for the admins who replay it.
        log.error(
            "parked the message at stream sequence %d on %s (event %s) as dead letter %s, "
            "%s after %d deliveries",
            sequence,
            row["subject"],
            row["event_id"] or "unreadable",
            row["id"],
            reason.value,
            deliveries,
        )

    async def page(self, *, limit: int, cursor: str) -> tuple[list[Row[Any]], str]:
        """Newest first, after `cursor`; a limit of 0 is the default. The next page's cursor,
        or "" on the last page."""
        size = min(limit or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        query = newest_first(
            select(self.table), self.table.c.parked_at, self.table.c.id, limit=size, cursor=cursor
        )
        async with reading(self.engine) as connection:
            rows = (await connection.execute(query)).all()
        if len(rows) <= size:
            return list(rows), ""
        last = rows[size - 1]
        return list(rows[:size]), encode_cursor(last.parked_at, last.id)

    async def find(self, dead_letter_id: str) -> Row[Any] | None:
        """The dead letter, left parked (a replay's remote step reads it before its
        transaction takes it)."""
        async with reading(self.engine) as connection:
            found = await connection.execute(
                select(self.table).where(self.table.c.id == dead_letter_id)
            )
            return found.first()

    async def take(self, connection: AsyncConnection, dead_letter_id: str) -> Row[Any] | None:
        """Removes the dead letter in the caller's transaction and returns it; None when there
        is none (or a concurrent replay or discard took it first)."""
        found = (
            await connection.execute(select(self.table).where(self.table.c.id == dead_letter_id))
        ).first()
        if found is None:
            return None
        removed = await connection.execute(
            delete(self.table).where(self.table.c.id == dead_letter_id)
        )
        return found if removed.rowcount == 1 else None

    async def record_error(self, dead_letter_id: str, error: str) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(
                update(self.table)
                .where(self.table.c.id == dead_letter_id)
                .values(error=storable(error, ERROR_LIMIT))
            )


async def count_parked(engine: AsyncEngine) -> int:
    """How many dead letters a service's database holds now (for a gauge)."""
    async with reading(engine) as connection:
        counted = await connection.execute(select(func.count()).select_from(table(TABLE_NAME)))
        return int(counted.scalar_one())


def _readable_part(data: bytes) -> EventEnvelope:
    """What a message says of itself, for an admin to recognise it: its envelope, or an empty
    one when it is not one at all."""
    envelope = EventEnvelope()
    try:
        envelope.ParseFromString(data)
    except Exception:  # protobuf raises DecodeError, sometimes others, on garbage
        return EventEnvelope()
    return envelope
