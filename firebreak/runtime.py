"""Runs one gRPC service process: schema, bus, server, relay and consumer, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak import bus
from firebreak.consumer import INBOX_RETENTION, EventConsumer, Handler
from firebreak.grpc_server import create_server, mark_serving
from firebreak.outbox import PUBLISHED_RETENTION, Outbox
from firebreak.settings import Settings
from firebreak.startup_migration import ensure_migrated

log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL_SECONDS = 3600.0


@dataclass(frozen=True)
class ServiceProcess:
    """What a service's composition root hands over to be run."""

    name: str
    engine: AsyncEngine
    outbox: Outbox
    servicer: object
    add_servicer: Callable[[Any, grpc.aio.Server], None]  # the generated add_..._to_server
    grpc_service: str  # full name, for grpc.health.v1
    handlers: dict[str, Handler] | None = None  # events consumed, by type
    inbox: Table | None = None
    # Further gRPC services of the same process: (servicer, add_..._to_server, full name).
    more_servicers: tuple[tuple[object, Callable[[Any, grpc.aio.Server], None], str], ...] = ()
    # Background work of the service's own (notify's timers): each runs until the event is set,
    # and is stopped with the consumer, before the gRPC server and the relay's last pass.
    workers: tuple[tuple[str, Callable[[asyncio.Event], Coroutine[Any, Any, None]]], ...] = ()

    def __post_init__(self) -> None:
        if (self.handlers is None) != (self.inbox is None):
            raise ValueError(f"{self.name}: consuming events takes both handlers and an inbox")


async def run_service(settings: Settings, process: ServiceProcess) -> None:
    """Runs until SIGTERM or SIGINT, then shuts down gracefully; exits 1 if a worker failed."""
    # First of all, so that a stop during start-up is graceful too.
    shutdown_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, shutdown_requested.set)
    await ensure_migrated(process.engine, process.name)
    nats_client = await bus.connect(settings.bus_url, name=f"{process.name}-{settings.instance_id}")
    stream = bus.stream_config(settings.stream_replicas)
    await bus.ensure_stream(nats_client.jetstream(), stream)

    server, health_servicer = create_server()
    process.add_servicer(process.servicer, server)
    for servicer, add_servicer, _ in process.more_servicers:
        add_servicer(servicer, server)
    address = settings.grpc_listen_addr or settings.grpc_addr(process.name)
    server.add_insecure_port(address)
    await server.start()
    names = [process.grpc_service, *(name for _, _, name in process.more_servicers)]
    await mark_serving(health_servicer, names)
    log.info("%s serving gRPC on %s", process.name, address)

    consumer = None
    if process.handlers is not None and process.inbox is not None:
        consumer = EventConsumer(
            durable=process.name,
            handlers=process.handlers,
            outbox=process.outbox,
            inbox=process.inbox,
            batch_size=settings.consumer_batch_size,
            stream=stream,
        )
    stop_consuming, stop_relaying = asyncio.Event(), asyncio.Event()
    relay = asyncio.create_task(
        process.outbox.run_relay(nats_client, stop_relaying, stream), name="outbox relay"
    )
    consuming: list[asyncio.Task[None]] = []
    if consumer is not None:
        consuming.append(
            asyncio.create_task(consumer.run(nats_client, stop_consuming), name="consumer")
        )
    consuming += [
        asyncio.create_task(work(stop_consuming), name=name) for name, work in process.workers
    ]
    housekeeping = asyncio.create_task(
        keep_house(process.outbox, consumer, stop_consuming), name="housekeeping"
    )
    workers = [relay, *consuming, housekeeping]
    requested = asyncio.create_task(shutdown_requested.wait())
    done, _ = await asyncio.wait([requested, *workers], return_when=asyncio.FIRST_COMPLETED)
    failed = [task for task in done if task is not requested]
    for task in failed:
        log.error("%s stopped unexpectedly", task.get_name(), exc_info=task.exception())
    requested.cancel()

    # Graceful shutdown, in order: stop taking work; finish the messages and requests in hand;
    # publish the events they produced; drain the bus.
    log.info("%s shutting down", process.name)
    await health_servicer.enter_graceful_shutdown()
    stop_consuming.set()
    await asyncio.gather(*consuming, housekeeping, return_exceptions=True)
    await server.stop(settings.shutdown_grace_seconds)
    stop_relaying.set()
    await asyncio.gather(relay, return_exceptions=True)
    await nats_client.drain()
    await process.engine.dispose()
    log.info("%s stopped", process.name)
    if failed:
        raise SystemExit(1)  # a worker died: that is a bug; let the supervisor restart us


async def keep_house(
    outbox: Outbox, consumer: EventConsumer | None, stopping: asyncio.Event
) -> None:
    """Prunes published outbox rows and old inbox entries, about hourly. A failure is logged
    and tried again next time: housekeeping must never stop the service."""
    while not stopping.is_set():
        now = datetime.now(UTC)
        try:
            await outbox.prune(now - PUBLISHED_RETENTION)
            if consumer is not None:
                await consumer.prune_inbox(now - INBOX_RETENTION)
        except Exception as error:
            log.warning("housekeeping failed; will try again: %s", error)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), HOUSEKEEPING_INTERVAL_SECONDS)
