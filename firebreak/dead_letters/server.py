"""firebreak.admin.v1.DeadLetterService, as every consuming service serves it for its own dead
letters: list them, replay one through the consumer's own path, or discard it."""

from __future__ import annotations

import json
import logging
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from sqlalchemy import Row, Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.api.admin.v1 import dead_letters_pb2, dead_letters_pb2_grpc
from firebreak.api.events.v1.events_pb2 import Actor
from firebreak.consumer import (
    ClientMismatch,
    Handler,
    IncidentOwners,
    RemoteStep,
    apply_once,
    recorded_only,
)
from firebreak.database import is_unavailable
from firebreak.dead_letters.store import TABLE_NAME, DeadLetters, describe
from firebreak.errors import NotFound
from firebreak.events import MalformedEvent, parse_event, to_timestamp
from firebreak.outbox import Outbox

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

DEAD_LETTER_SERVICE = dead_letters_pb2.DESCRIPTOR.services_by_name["DeadLetterService"].full_name


def serve_dead_letters(
    server: grpc.aio.Server,
    *,
    service: str,
    engine: AsyncEngine,
    outbox: Outbox,
    inbox: Table,
    handlers: dict[str, Handler],
    owners: IncidentOwners | None = None,
) -> DeadLetters:
    """Adds the service's DeadLetterService to `server`; returns its dead letters, which its
    consumer parks into. Its schema defines them beside its inbox."""
    dead_letters = DeadLetters(
        service=service, engine=engine, table=inbox.metadata.tables[TABLE_NAME]
    )
    servicer = DeadLetterServicer(
        dead_letters, outbox=outbox, inbox=inbox, handlers=handlers, owners=owners
    )
    dead_letters_pb2_grpc.add_DeadLetterServiceServicer_to_server(servicer, server)
    return dead_letters


class DeadLetterServicer(dead_letters_pb2_grpc.DeadLetterServiceServicer):
    def __init__(
        self,
        dead_letters: DeadLetters,
        *,
        outbox: Outbox,
        inbox: Table,
        handlers: dict[str, Handler],
        owners: IncidentOwners | None = None,
        remote: dict[str, RemoteStep] | None = None,
    ) -> None:
        self._dead_letters = dead_letters
        self._owners = owners
        self._outbox = outbox
        self._inbox = inbox
        self._remote = remote or {}
        self._handlers = dict.fromkeys(self._remote, recorded_only) | handlers

    async def ListDeadLetters(
        self, request: dead_letters_pb2.ListDeadLettersRequest, context: grpc.aio.ServicerContext
    ) -> dead_letters_pb2.DeadLetterList:
        rows, next_cursor = await self._dead_letters.page(
            limit=request.limit, cursor=request.cursor
        )
        return dead_letters_pb2.DeadLetterList(
            dead_letters=[_dead_letter(row) for row in rows], next_cursor=next_cursor
        )

    async def ReplayDeadLetter(
        self, request: dead_letters_pb2.DeadLetterRef, context: grpc.aio.ServicerContext
    ) -> dead_letters_pb2.ReplayDeadLetterResponse:
        """Handler, inbox row and the dead letter's removal commit together, or not at all; an
        event with a remote step (consumer.py) has it run first, outside the transaction."""
        try:
            await self._remote_step(request.id)
            async with self._outbox.transaction() as connection:
                row = await self._dead_letters.take(connection, request.id)
                if row is None:
                    raise NotFound(f"dead letter {request.id} not found")
                applied = await self._apply(connection, row)
        except NotFound:
            raise
        except Exception as error:
            if is_unavailable(error):
                raise  # nothing was tried: the database is away
            failure = describe(error)
            await self._dead_letters.record_error(request.id, failure)
            log.warning(
                "replaying dead letter %s for %s failed again; it stays: %s",
                request.id,
                _who(request.actor),
                failure,
                exc_info=True,
            )
            return dead_letters_pb2.ReplayDeadLetterResponse(replayed=False, error=failure)
        log.info(
            "replayed dead letter %s (stream sequence %d, event %s) for %s%s",
            row.id,
            row.stream_sequence,
            row.event_id,
            _who(request.actor),
            "" if applied else ": it had been applied before",
        )
        return dead_letters_pb2.ReplayDeadLetterResponse(replayed=True, duplicate=not applied)

    async def DiscardDeadLetter(
        self, request: dead_letters_pb2.DeadLetterRef, context: grpc.aio.ServicerContext
    ) -> dead_letters_pb2.DeadLetter:
        async with self._dead_letters.engine.begin() as connection:
            row = await self._dead_letters.take(connection, request.id)
        if row is None:
            raise NotFound(f"dead letter {request.id} not found")
        log.warning(
            "discarded dead letter %s (stream sequence %d on %s, event %s, %s) for %s, unapplied",
            row.id,
            row.stream_sequence,
            row.subject,
            row.event_id or "unreadable",
            row.reason,
            _who(request.actor),
        )
        return _dead_letter(row)

    async def _remote_step(self, dead_letter_id: str) -> None:
        """The parked event's remote step, as its consumer runs it, if it has one."""
        if not self._remote:
            return
        row = await self._dead_letters.find(dead_letter_id)
        if row is None:
            raise NotFound(f"dead letter {dead_letter_id} not found")
        envelope = parse_event(row.payload, subject=row.subject)
        step = self._remote.get(envelope.type)
        if step is not None:
            with tracer.start_as_current_span(
                f"replay call for {row.subject}",
                context=propagate.extract(json.loads(row.headers)),
                kind=SpanKind.CONSUMER,
            ):
                await step(envelope)

    async def _apply(self, connection: AsyncConnection, row: Row[Any]) -> bool:
        """The parked event through the consumer's path: read as it would be, then its inbox
        row and handler; returns whether it was applied now (not before)."""
        envelope = parse_event(row.payload, subject=row.subject)
        handler = self._handlers.get(envelope.type)
        if handler is None:
            raise MalformedEvent(f"{self._dead_letters.service} handles no {envelope.type}")
        if self._owners is not None and (
            mismatch := await self._owners.mismatch(connection, envelope)
        ):
            raise ClientMismatch(mismatch)  # a replay is no way around the check
        with tracer.start_as_current_span(
            f"replay {row.subject}",
            context=propagate.extract(json.loads(row.headers)),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "process",
                "messaging.destination.name": row.subject,
                "messaging.message.id": envelope.id,
                "firebreak.incident_id": envelope.incident_id,
            },
        ):
            return await apply_once(connection, self._inbox, handler, envelope)


def _dead_letter(row: Row[Any]) -> dead_letters_pb2.DeadLetter:
    return dead_letters_pb2.DeadLetter(
        id=row.id,
        stream_sequence=row.stream_sequence,
        subject=row.subject,
        event_id=row.event_id,
        event_type=row.event_type,
        incident_id=row.incident_id,
        client_id=row.client_id,
        reason=row.reason,
        error=row.error,
        deliveries=row.deliveries,
        parked_at=to_timestamp(row.parked_at),
    )


def _who(actor: Actor) -> str:
    return f"{actor.name} ({actor.kind} {actor.id})" if actor.id else "an unnamed caller"
