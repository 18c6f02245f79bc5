"""The platform the harness runs: PostgreSQL as a private cluster (one database per service),
supervision on, and either one of each process or, scaled out, two replicas each of gateway,
intake, triage and notify on a three-server NATS cluster."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import nats.errors

from bench.observe import EventWatcher
from chaos.faults import Stage, serving
from firebreak.launcher import Platform, free_ports, nats_server_binary, wait_for_port
from firebreak.settings import GRPC_SERVICES, SERVICES
from tests.private_postgres import PrivatePostgres

REPLICATED = ("gateway", "intake", "triage", "notify")
CLUSTER_SIZE = 3
READY_TIMEOUT_SECONDS = 120.0


def start_postgres() -> tuple[PrivatePostgres, dict[str, str]]:
    postgres = PrivatePostgres()
    postgres.start()
    return postgres, {service: postgres.create_database(service) for service in SERVICES}


def new_platform(
    var_dir: Path, database_urls: dict[str, str], extra_env: dict[str, str]
) -> Platform:
    nats_port, gateway_port, *grpc_ports = free_ports(2 + len(GRPC_SERVICES))
    return Platform(
        var_dir=var_dir,
        nats_port=nats_port,
        gateway_port=gateway_port,
        grpc_ports=dict(zip(GRPC_SERVICES, grpc_ports, strict=True)),
        admin_key="fbk_chaos_" + secrets.token_urlsafe(24),
        database_urls=database_urls,
        extra_env=extra_env,
    )


def start_single(platform: Platform) -> dict[str, int]:
    """One of each process; the health port of each service label. (Platform.start, with
    longer to become ready: the machine may be busy.)"""
    platform.start_nats_server()
    for name in GRPC_SERVICES:
        platform.start_service(name)
    platform.start_service("gateway")
    platform.wait_until_ready(READY_TIMEOUT_SECONDS)
    platform.supervise()
    return {**platform.grpc_ports, "gateway": platform.gateway_port}


def start_nats_cluster(platform: Platform) -> list[str]:
    """Three nats-servers routed to each other, JetStream on each with its own store and name,
    each with the users and permissions a single local server has; their client URLs."""
    client_ports = free_ports(CLUSTER_SIZE * 2)
    clients, routes = client_ports[:CLUSTER_SIZE], client_ports[CLUSTER_SIZE:]
    route_urls = [f"nats://127.0.0.1:{port}" for port in routes]
    for number in range(CLUSTER_SIZE):
        label = f"nats-{number + 1}"
        cluster = {"name": "chaos", "listen": f"127.0.0.1:{routes[number]}", "routes": route_urls}
        config = platform.nats_server_config(
            label, clients[number], f"chaos-nats-{number + 1}", cluster=cluster
        )
        platform.launch(label, [nats_server_binary(), "-c", str(config)], platform.service_env())
    for port in clients:
        wait_for_port(port)
    return [f"nats://127.0.0.1:{port}" for port in clients]


def start_scaled(platform: Platform) -> dict[str, int]:
    """Two replicas each of REPLICATED, one of the rest; callers reach both replicas of a
    service through a round-robin target naming both. The health port of each label."""
    second = dict(zip(REPLICATED, free_ports(len(REPLICATED)), strict=True))
    targets = {
        f"FIREBREAK_{name.upper()}_ADDR": (
            f"ipv4:127.0.0.1:{platform.grpc_ports[name]},127.0.0.1:{second[name]}"
            if name in second
            else f"127.0.0.1:{platform.grpc_ports[name]}"
        )
        for name in GRPC_SERVICES
    }
    platform.extra_env.update(targets)
    ports: dict[str, int] = {}
    for name in GRPC_SERVICES:
        listen = {"FIREBREAK_GRPC_LISTEN_ADDR": f"127.0.0.1:{platform.grpc_ports[name]}"}
        platform.start_service(name, env=listen)
        ports[name] = platform.grpc_ports[name]
        if name in second:
            listen = {"FIREBREAK_GRPC_LISTEN_ADDR": f"127.0.0.1:{second[name]}"}
            platform.start_service(name, label=f"{name}-2", env=listen)
            ports[f"{name}-2"] = second[name]
    platform.start_service("gateway")
    platform.start_service(
        "gateway", label="gateway-2", env={"FIREBREAK_GATEWAY_PORT": str(second["gateway"])}
    )
    ports["gateway"], ports["gateway-2"] = platform.gateway_port, second["gateway"]
    platform.supervise()
    return ports


async def watch_stream(watcher: EventWatcher) -> None:
    """Starts reading the stream once it is there: services make it in the background, after
    they serve, and a NATS cluster elects its JetStream leader first."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        try:
            await watcher.start()
            return
        except (nats.errors.Error, TimeoutError):
            await watcher.stop()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def wait_until_serving(stage: Stage) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        states = [await serving(stage, label) for label in stage.ports]
        if all(states):
            return
        await asyncio.sleep(0.2)
    down = [label for label in stage.ports if not await serving(stage, label)]
    raise TimeoutError(f"not serving after {READY_TIMEOUT_SECONDS:g}s: {down}")
