"""Single alert events go to intake together (issue 14 §6): group commit for PagerDuty Events v2.

A storm of single-event requests would cost a gRPC call and an intake transaction each. Instead
the events of one integration key queue here, and a sender takes up to `MAX_EVENTS` of them
into one SubmitAlerts call, which intake applies in order in one transaction; each request is
answered from that call's answer for its own event, so a 202 still means committed. One call
per key is in flight at a time: a request that finds none goes at once (light traffic waits for
nothing), and under load the next batch gathers while the last one is being committed, so that
batches grow with the load. (A second call in flight was measured to make smaller batches for
no more throughput: intake's transactions of one key's alerts wait for each other anyway.)

What a batch's requests share: intake's rate limit refuses a batch whole, so each of them is
answered 429 (none was taken); a failed call fails each of them as it would fail one. Intake
refusing a batch as invalid (the gateway checks what intake checks, so this is for a rule only
intake knows) sends its events again one by one, so that only the bad one is refused.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

import grpc
from opentelemetry import context as otel_context

from firebreak.api.intake.v1 import intake_pb2
from firebreak.api.intake.v1.intake_pb2_grpc import IntakeServiceStub
from firebreak.scope_token import Scope, current_scope

MAX_EVENTS = 1000  # intake's limit per request
# And in bytes: each event carries its sender's body (an Events v2 body, up to the 64 KiB request
# limit; an Alertmanager alert's, at most 16 KiB), and a call over gRPC's 4 MiB message limit
# would fail every request in it.
MAX_BATCH_BYTES = 3 * 1024 * 1024
# Longer than other calls' (backends.RPC_TIMEOUT_SECONDS): a call of up to MAX_EVENTS events may
# open as many incidents in its transaction, waiting for every other transaction that opens
# incidents of the client (their references are consecutive): on a busy PostgreSQL, the first
# batches of a storm of new keys were seen to take 5 s.
SUBMIT_TIMEOUT_SECONDS = 30.0
SENDERS_PER_KEY = 1  # calls in flight

# The gateway does not know whose alerts they are until intake has found the key: its call
# carries a token of no client, and intake's answer names none.
ALERT_SENDER = Scope(subject="integration-key", role="integration", clients=frozenset())


@dataclass
class Waiting:
    """A request's event, the trace it came in, and where its answer goes."""

    event: intake_pb2.AlertEvent
    trace: otel_context.Context
    answer: asyncio.Future[intake_pb2.SubmitAlertsResponse]


@dataclass
class _Queue:
    waiting: deque[Waiting] = field(default_factory=deque)
    senders: int = 0


class AlertBatches:
    """The queues of single events, by integration key (its hash) and kind."""

    def __init__(self, intake: IntakeServiceStub) -> None:
        self._intake = intake
        self._queues: dict[tuple[str, str], _Queue] = {}
        self._senders: set[asyncio.Task[None]] = set()

    async def submit(
        self, key_hash: str, kind: str, event: intake_pb2.AlertEvent
    ) -> intake_pb2.SubmitAlertsResponse:
        """Intake's answer for this event alone: its refusal, or its one outcome."""
        queue = self._queues.setdefault((key_hash, kind), _Queue())
        answer = asyncio.get_running_loop().create_future()
        queue.waiting.append(Waiting(event, otel_context.get_current(), answer))
        if queue.senders < SENDERS_PER_KEY:
            queue.senders += 1
            sender = asyncio.create_task(self._send(key_hash, kind, queue))
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        result: intake_pb2.SubmitAlertsResponse = await answer
        return result

    async def _send(self, key_hash: str, kind: str, queue: _Queue) -> None:
        current_scope.set(ALERT_SENDER)
        try:
            while queue.waiting:
                await self._call(key_hash, kind, next_batch(queue.waiting))
        except BaseException:
            # Cancelled (the gateway is stopping): what still waits is not sent.
            _fail(list(queue.waiting), asyncio.CancelledError())
            queue.waiting.clear()
            raise
        finally:
            queue.senders -= 1
            if not queue.waiting and not queue.senders:
                # Nothing is kept for a key between storms (nor for a stranger's made-up keys).
                self._queues.pop((key_hash, kind), None)

    async def _call(self, key_hash: str, kind: str, batch: list[Waiting]) -> None:
        request = intake_pb2.SubmitAlertsRequest(
            key_hash=key_hash, kind=kind, events=[waiting.event for waiting in batch]
        )
        # The call joins the trace of the batch's first request, if that has one: a single
        # Events v2 request makes no span of its own (app.py), and the call then starts a trace.
        token = otel_context.attach(batch[0].trace)
        try:
            answer = await self._intake.SubmitAlerts(request, timeout=SUBMIT_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT and len(batch) > 1:
                for waiting in batch:
                    await self._call(key_hash, kind, [waiting])
            else:
                _fail(batch, error)
            return
        except BaseException as error:
            _fail(batch, error)
            if not isinstance(error, Exception):
                raise  # cancelled
            return
        finally:
            otel_context.detach(token)
        for index, waiting in enumerate(batch):
            if answer.refused:
                own = intake_pb2.SubmitAlertsResponse(
                    refused=answer.refused, retry_after_seconds=answer.retry_after_seconds
                )
            else:
                own = intake_pb2.SubmitAlertsResponse(outcomes=[answer.outcomes[index]])
            if not waiting.answer.done():  # its request may have gone (the caller hung up)
                waiting.answer.set_result(own)


def next_batch(waiting: deque[Waiting]) -> list[Waiting]:
    """The next call's events, taken from the front of `waiting`: at most MAX_EVENTS and, but for
    a first event larger on its own, MAX_BATCH_BYTES."""
    batch = [waiting.popleft()]
    size = batch[0].event.ByteSize()
    while waiting and len(batch) < MAX_EVENTS:
        size += waiting[0].event.ByteSize()
        if size > MAX_BATCH_BYTES:
            break
        batch.append(waiting.popleft())
    return batch


def chunks(events: list[intake_pb2.AlertEvent]) -> list[list[intake_pb2.AlertEvent]]:
    """`events` cut, in order, into calls intake takes, as next_batch cuts a queue."""
    parts: list[list[intake_pb2.AlertEvent]] = []
    size = 0
    for event in events:
        event_size = event.ByteSize()
        if not parts or len(parts[-1]) == MAX_EVENTS or size + event_size > MAX_BATCH_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(event)
        size += event_size
    return parts


def _fail(batch: list[Waiting], error: BaseException) -> None:
    """Each request of the batch fails as its own call would have."""
    for waiting in batch:
        if waiting.answer.done():
            continue
        if isinstance(error, asyncio.CancelledError):
            waiting.answer.cancel()
        else:
            waiting.answer.set_exception(error)
