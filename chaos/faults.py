"""The faults the harness injects, each as an injection, a hold and a restoration."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import httpx
import nats
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.observe import EventWatcher
from firebreak.bus import ACK_WAIT_SECONDS
from firebreak.events import STREAM
from firebreak.launcher import Platform
from tests.private_postgres import PrivatePostgres

COME_BACK_TIMEOUT_SECONDS = 120.0


@dataclass
class Stage:
    """What the faults act on: the platform's processes, its database, the stream's reader."""

    platform: Platform
    postgres: PrivatePostgres
    watcher: EventWatcher
    # Where each supervised service label answers its health check: a gRPC port, or the
    # gateway's HTTP port (labels starting "gateway").
    ports: dict[str, int] = field(default_factory=dict)
    nats_labels: list[str] = field(default_factory=lambda: ["nats"])


@dataclass
class Fault:
    name: str
    inject: Callable[[], Awaitable[None]]
    restore: Callable[[], Awaitable[None]]
    hold: float = 0.0  # seconds between injection and restoration


async def serving(stage: Stage, label: str) -> bool:
    port = stage.ports[label]
    if label.startswith("gateway"):
        async with httpx.AsyncClient(timeout=1) as http:
            try:
                return (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
            except httpx.HTTPError:
                return False
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def come_back(stage: Stage, label: str, dead: subprocess.Popen[str]) -> None:
    """Waits until the supervisor has started `label` again and it answers its health check."""
    deadline = time.monotonic() + COME_BACK_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        current = stage.platform.processes.get(label)
        if current is not None and current is not dead and current.poll() is None:
            if await serving(stage, label):
                return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{label} did not come back within {COME_BACK_TIMEOUT_SECONDS:g}s")


def kill(stage: Stage, *labels: str) -> Fault:
    """kill -9 of one or more processes at once; the launcher's supervision restarts them."""
    killed: dict[str, subprocess.Popen[str]] = {}

    async def inject() -> None:
        for label in labels:
            killed[label] = stage.platform.processes[label]
        for label in labels:
            os.kill(killed[label].pid, signal.SIGKILL)

    async def restore() -> None:
        await asyncio.gather(*(come_back(stage, label, killed[label]) for label in labels))

    return Fault(f"kill -9 {'+'.join(labels)}", inject, restore)


async def resubscribe(watcher: EventWatcher) -> None:
    """The watcher reads on where it stopped, once its connection is back (it reconnects on
    its own, in its own time)."""
    deadline = time.monotonic() + COME_BACK_TIMEOUT_SECONDS
    while True:
        try:
            await watcher.subscribe()
            return
        except (nats.errors.Error, TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def stop_nats(stage: Stage, outage: float) -> Fault:
    """The one nats-server stopped (gracefully, out of supervision) and started again later
    on the same port and store."""

    async def inject() -> None:
        await asyncio.to_thread(stage.platform.stop_process, "nats")

    async def restore() -> None:
        await asyncio.to_thread(stage.platform.start_nats_server)
        await resubscribe(stage.watcher)

    return Fault(f"nats-server stopped {outage:g}s", inject, restore, outage)


def kill_nats_server(stage: Stage, label: str, outage: float) -> Fault:
    """kill -9 of one server of a NATS cluster, kept down for `outage` s, then started again."""
    launch = stage.platform.launches[label]
    command, env = launch.command, launch.env

    async def inject() -> None:
        await asyncio.to_thread(stage.platform.kill, label)

    async def restore() -> None:
        stage.platform.launch(label, command, env)
        await resubscribe(stage.watcher)

    return Fault(f"kill -9 {label} ({outage:g}s down)", inject, restore, outage)


def kill_postgres(stage: Stage, outage: float) -> Fault:
    """SIGKILL to every PostgreSQL process, as a crash; started again after `outage` s
    (crash recovery replays its WAL)."""

    async def inject() -> None:
        await asyncio.to_thread(stage.postgres.stop, kill=True)

    async def restore() -> None:
        await asyncio.to_thread(stage.postgres.start)

    return Fault(f"postgres kill -9 ({outage:g}s down)", inject, restore, outage)


def pause(stage: Stage, label: str, extra: float) -> Fault:
    """SIGSTOP of a consumer for longer than its ack wait (its messages are redelivered), then
    SIGCONT: it finishes the batch it held, which others may have handled meanwhile."""
    held: list[int] = []

    async def inject() -> None:
        held.append(stage.platform.processes[label].pid)
        os.kill(held[0], signal.SIGSTOP)

    async def restore() -> None:
        os.kill(held[0], signal.SIGCONT)

    hold = ACK_WAIT_SECONDS + extra
    return Fault(f"SIGSTOP {label} {hold:g}s", inject, restore, hold)


async def kill_nats_leader(
    stage: Stage, urls: list[str], outage: float, figures: dict[str, object]
) -> Fault:
    """kill -9 of the cluster's server leading the stream, down for `outage` s; `figures` gets
    how long until the stream had a new leader."""
    # The admin's login: the cluster refuses a connection without one, as a single server does.
    probe = await nats.connect(servers=stage.platform.admin_nats_url.split(","), name="chaos-probe")
    info = await probe.jetstream().stream_info(STREAM)
    leader = info.cluster.leader if info.cluster else None
    killed = int(leader.rsplit("-", 1)[1]) if leader else len(urls)
    figures["killed_leader"] = leader is not None
    fault = kill_nats_server(stage, f"nats-{killed}", outage)
    watching: list[asyncio.Task[None]] = []

    async def elected(since: float) -> None:
        try:
            while True:
                await asyncio.sleep(0.1)
                try:
                    state = await probe.jetstream().stream_info(STREAM)
                except (nats.errors.Error, TimeoutError):
                    continue
                if state.cluster and state.cluster.leader not in (None, f"chaos-nats-{killed}"):
                    figures["leader_elected_s"] = round(time.time() - since, 2)
                    return
        finally:
            await probe.close()

    kill_it = fault.inject

    async def inject() -> None:
        since = time.time()
        await kill_it()
        watching.append(asyncio.create_task(elected(since)))

    fault.inject = inject
    return fault
