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
import nats.errors
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from nats.aio.client import Client as NATS
from nats.js.api import StreamConfig
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak import bus
from firebreak.bus_auth import BusLogin
from firebreak.consumer import (
    INBOX_RETENTION,
    DeliveryPolicy,
    EventConsumer,
    Handler,
    IncidentOwners,
)
from firebreak.database import answers, is_postgres
from firebreak.dead_letters.server import DEAD_LETTER_SERVICE, serve_dead_letters
from firebreak.grpc_scope import KnownIncidents
from firebreak.grpc_server import create_server, mark_serving, set_health
from firebreak.grpc_tls import server_credentials
from firebreak.metrics import serve_metrics
from firebreak.metrics_sampler import MetricsSampler, connected_client
from firebreak.outbox import PUBLISHED_RETENTION, Outbox
from firebreak.scope_token import public_key
from firebreak.settings import Settings, SettingsError
from firebreak.startup_migration import ensure_migrated

log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL_SECONDS = 3600.0
STREAM_RETRY_SECONDS = 1.0
DATABASE_WATCH_SECONDS = 5.0


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
    owners: IncidentOwners | None = None  # which client each incident it knows belongs to
    # Further gRPC services of the same process: (servicer, add_..._to_server, full name).
    more_servicers: tuple[tuple[object, Callable[[Any, grpc.aio.Server], None], str], ...] = ()
    # Background work of the service's own (notify's timers): each runs until the event is set,
    # and is stopped with the consumer, before the gRPC server and the relay's last pass.
    workers: tuple[tuple[str, Callable[[asyncio.Event], Coroutine[Any, Any, None]]], ...] = ()

    def __post_init__(self) -> None:
        if (self.handlers is None) != (self.inbox is None):
            raise ValueError(f"{self.name}: consuming events takes both handlers and an inbox")


def scope_token_key(settings: Settings) -> Ed25519PublicKey:
    """The key that verifies the gateway's scope tokens: a service serves no call without one."""
    if settings.scope_token_public_key is None:
        raise SettingsError(
            "FIREBREAK_SCOPE_TOKEN_PUBLIC_KEY is required: a service answers only calls whose "
            "scope token the gateway signed"
        )
    return public_key(settings.scope_token_public_key)


async def run_service(settings: Settings, process: ServiceProcess) -> None:
    """Serves gRPC as soon as the database is migrated; connects to NATS in the background and
    runs the relay and consumer once it answers, so a NATS outage never keeps a service from
    serving. Runs until SIGTERM or SIGINT, then shuts down gracefully; exits 1 if a worker
    failed."""
    scope_key = scope_token_key(settings)  # before anything starts: fails fast without it
    # First of all, so that a stop during start-up is graceful too.
    shutdown_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, shutdown_requested.set)
    stop_serving_metrics = serve_metrics(settings)  # early: a scrape sees a start that hangs
    await ensure_migrated(process.engine, process.name)

    owners = process.owners  # where the scope check finds an incident's client
    server, health_servicer = create_server(
        settings.grpc_max_concurrent_rpcs,
        scope_key=scope_key,
        incidents=None if owners is None else KnownIncidents(process.engine, owners),
    )
    process.add_servicer(process.servicer, server)
    for servicer, add_servicer, _ in process.more_servicers:
        add_servicer(servicer, server)
    dead_letters = None  # every consuming service serves its own (firebreak.dead_letters)
    if process.handlers is not None and process.inbox is not None:
        dead_letters = serve_dead_letters(
            server,
            service=process.name,
            engine=process.engine,
            outbox=process.outbox,
            inbox=process.inbox,
            handlers=process.handlers,
            owners=process.owners,
        )
    address = settings.grpc_listen_addr or settings.grpc_addr(process.name)
    credentials = server_credentials(settings)
    if credentials is None:
        server.add_insecure_port(address)
    else:
        server.add_secure_port(address, credentials)
    await server.start()
    health_server = await serve_health(settings, health_servicer, address)
    names = [process.grpc_service, *(name for _, _, name in process.more_servicers)]
    if dead_letters is not None:
        names.append(DEAD_LETTER_SERVICE)
    await mark_serving(health_servicer, names)
    log.info("%s serving gRPC on %s", process.name, address)

    stream = bus.stream_config(settings.stream_replicas, settings.stream_max_bytes)
    consumer = None
    if process.handlers is not None and process.inbox is not None:
        consumer = EventConsumer(
            durable=settings.durable_prefix + process.name,
            handlers=process.handlers,
            outbox=process.outbox,
            inbox=process.inbox,
            batch_size=settings.consumer_batch_size,
            stream=stream,
            dead_letters=dead_letters,
            delivery=DeliveryPolicy.from_settings(settings),
            owners=process.owners,
        )
    stop_consuming, stop_relaying = asyncio.Event(), asyncio.Event()
    # What needs no NATS starts at once.
    consuming = [
        asyncio.create_task(work(stop_consuming), name=name) for name, work in process.workers
    ]
    housekeeping = asyncio.create_task(
        keep_house(process.outbox, consumer, stop_consuming), name="housekeeping"
    )
    watching = asyncio.create_task(
        watch_database(process.engine, health_servicer, names, stop_consuming),
        name="database watch",
    )
    connecting = asyncio.create_task(
        connect_bus(settings, process.name, stream), name="NATS connection"
    )
    sampler = MetricsSampler(
        service=process.name,
        engine=process.engine,
        nats=lambda: connected_client(connecting),
        consumes=consumer is not None,
    )
    sampling = asyncio.create_task(
        sampler.run(stop_consuming, settings.metrics_sample_seconds), name="metrics"
    )
    requested = asyncio.create_task(shutdown_requested.wait())
    workers = [*consuming, housekeeping, watching]
    done, _ = await asyncio.wait(
        [requested, connecting, *workers], return_when=asyncio.FIRST_COMPLETED
    )
    nats_client, relay = None, None
    if connecting in done and connecting.exception() is None:
        nats_client = connecting.result()
        # Connected: not a failure, even when a shutdown was asked for at the same moment.
        done -= {connecting}
    if nats_client is not None and not done:
        relay = asyncio.create_task(
            process.outbox.run_relay(nats_client, stop_relaying, stream), name="outbox relay"
        )
        workers.append(relay)
        if consumer is not None:
            consuming_events = asyncio.create_task(
                consumer.run(nats_client, stop_consuming), name="consumer"
            )
            consuming.append(consuming_events)
            workers.append(consuming_events)
        done, _ = await asyncio.wait([requested, *workers], return_when=asyncio.FIRST_COMPLETED)
    failed = [task for task in done if task is not requested]
    for task in failed:
        log.error("%s stopped unexpectedly", task.get_name(), exc_info=task.exception())
    requested.cancel()
    connecting.cancel()  # NATS never answered: its events wait in the outbox for the next start

    # Graceful shutdown, in order: stop taking work; finish the messages and requests in hand;
    # publish the events they produced; drain the bus.
    log.info("%s shutting down", process.name)
    await health_servicer.enter_graceful_shutdown()
    stop_consuming.set()
    await asyncio.gather(*consuming, housekeeping, watching, connecting, return_exceptions=True)
    await server.stop(settings.shutdown_grace_seconds)
    if health_server is not None:
        await health_server.stop(None)  # it answered NOT_SERVING since the shutdown began
    stop_relaying.set()
    if relay is not None:
        await asyncio.gather(relay, return_exceptions=True)
    if nats_client is not None:
        await close_bus(nats_client)
    await sampling  # stopped with the consumer; it reads the database
    stop_serving_metrics()
    await process.engine.dispose()
    log.info("%s stopped", process.name)
    if failed:
        raise SystemExit(1)  # a worker died: that is a bug; let the supervisor restart us


async def serve_health(
    settings: Settings, health_servicer: health.aio.HealthServicer, address: str
) -> grpc.aio.Server | None:
    """With FIREBREAK_GRPC_HEALTH_PORT, a plaintext server of grpc.health.v1 alone, on the host
    of the main server's `address`: kubelet's grpc probes cannot do TLS, and this lets the main
    port stay mTLS-only. It shares the main server's health servicer, so it tells the same
    status; serving nothing else, it gives a caller without a certificate no way in."""
    if settings.grpc_health_port is None:
        return None
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    host, _, _ = address.rpartition(":")
    health_address = f"{host}:{settings.grpc_health_port}"
    server.add_insecure_port(health_address)
    await server.start()
    log.info("grpc.health.v1 alone, in plaintext, on %s", health_address)
    return server


async def connect_bus(
    settings: Settings, name: str, stream: StreamConfig, link: bus.LinkState | None = None
) -> NATS:
    """Connects to NATS, waiting as long as it takes, and makes sure the stream exists;
    `link` follows the connection's state."""
    client = await bus.connect(
        settings.bus_url,
        name=f"{name}-{settings.instance_id}",
        link=link,
        login=BusLogin.from_settings(settings),
    )
    last_error = ""
    while True:
        try:
            await bus.ensure_stream(client.jetstream(), stream)
        except Exception as error:  # NATS went away again, or refuses the configuration
            if str(error) != last_error:
                log.error("could not create or update stream %s: %s", stream.name, error)
            last_error = str(error)
            await asyncio.sleep(STREAM_RETRY_SECONDS)
            continue
        return client


async def close_bus(client: NATS) -> None:
    """Drains a connected client; one that is reconnecting has nothing to drain."""
    try:
        if client.is_connected:
            await client.drain()
        else:
            await client.close()
    except nats.errors.Error as error:
        log.warning("closing the NATS connection: %s", error)


async def watch_database(
    engine: AsyncEngine,
    health_servicer: health.aio.HealthServicer,
    names: list[str],
    stopping: asyncio.Event,
) -> None:
    """Keeps grpc.health.v1 telling whether the service's PostgreSQL answers (NATS is not part
    of it: the service serves without). A SQLite file cannot go away, so it is not watched."""
    if not is_postgres(engine):
        await stopping.wait()  # returning early would read as the worker dying
        return
    serving = True
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), DATABASE_WATCH_SECONDS)
        if stopping.is_set():
            return
        answered = await answers(engine, DATABASE_WATCH_SECONDS)
        if answered != serving:
            serving = answered
            log.warning("database %s", "answers again" if answered else "does not answer")
            status = health_pb2.HealthCheckResponse.SERVING
            await set_health(
                health_servicer,
                names,
                status if answered else health_pb2.HealthCheckResponse.NOT_SERVING,
            )


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
