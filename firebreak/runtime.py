"""Runs one gRPC service process: schema, bus, server, relay and consumer, graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from sqlalchemy import MetaData, Table
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak import bus
from firebreak.consumer import EventConsumer, Handler
from firebreak.database import create_schema
from firebreak.grpc_server import create_server, mark_serving
from firebreak.outbox import Outbox
from firebreak.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceProcess:
    """What a service's composition root hands over to be run."""

    name: str
    engine: AsyncEngine
    metadata: MetaData
    outbox: Outbox
    servicer: object
    add_servicer: Callable[[Any, grpc.aio.Server], None]  # the generated add_..._to_server
    grpc_service: str  # full name, for grpc.health.v1
    handlers: dict[str, Handler] | None = None  # events consumed, by type
    inbox: Table | None = None


async def run_service(settings: Settings, process: ServiceProcess) -> None:
    await create_schema(process.engine, process.metadata)
    nats_client = await bus.connect(settings.bus_url, name=f"{process.name}-{settings.instance_id}")
    js = nats_client.jetstream()
    await bus.ensure_stream(js)

    server, health_servicer = create_server()
    process.add_servicer(process.servicer, server)
    address = settings.grpc_addr(process.name)
    server.add_insecure_port(address)
    await server.start()
    await mark_serving(health_servicer, [process.grpc_service])
    log.info("%s serving gRPC on %s", process.name, address)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)

    workers = [
        asyncio.create_task(process.outbox.run_relay(nats_client, stopping), name="outbox-relay")
    ]
    if process.handlers is not None and process.inbox is not None:
        consumer = EventConsumer(
            durable=process.name,
            handlers=process.handlers,
            outbox=process.outbox,
            inbox=process.inbox,
            batch_size=settings.consumer_batch_size,
        )
        workers.append(asyncio.create_task(consumer.run(js, stopping), name="consumer"))
    stopped = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait([stopped, *workers], return_when=asyncio.FIRST_COMPLETED)
    for task in done - {stopped}:
        # A worker ended on its own: that is a bug; stop the process so it gets restarted.
        log.error("%s stopped unexpectedly", task.get_name(), exc_info=task.exception())
        stopping.set()

    # Graceful shutdown: stop taking work, finish what is in hand, drain the bus, stop serving.
    log.info("%s shutting down", process.name)
    await health_servicer.enter_graceful_shutdown()
    await asyncio.gather(*workers, return_exceptions=True)
    await nats_client.drain()
    await server.stop(settings.shutdown_grace_seconds)
    await process.engine.dispose()
    log.info("%s stopped", process.name)
