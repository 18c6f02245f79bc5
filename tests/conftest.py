"""Shared fixtures: real nats-server processes, real databases, the real platform processes."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx
import nats
import pytest
from nats.aio.client import Client as NATS

from firebreak import bus
from firebreak.launcher import (
    Platform,
    free_port,
    free_ports,
    nats_server_binary,
    wait_for_port,
)
from firebreak.settings import GRPC_SERVICES, SERVICES
from tests.gateway_client import Api

if TYPE_CHECKING:  # tests.mail builds on this module: imported where used
    from tests.mail import Mailbox

POSTGRES_URL = os.environ.get(
    "FIREBREAK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKEND_PARAMS = {
    "sqlite": pytest.param("sqlite"),
    "postgresql": pytest.param("postgresql", marks=pytest.mark.postgres),
}
BACKENDS = list(BACKEND_PARAMS.values())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keeps each phase's report on the test (rep_setup, rep_call, rep_teardown), so that a
    fixture can tell in its teardown whether the test failed (tests/browser.py)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def on_backend(backend: str, platform_fixture: str) -> pytest.MarkDecorator:
    """Runs a test against one backend's platform of its module. For a timer's or a rule's
    logic, which the database does not change: tests of claims, replicas and restarts, where
    it does, run on both. The module's slow scenarios are spread over the two."""
    return pytest.mark.parametrize(platform_fixture, [BACKEND_PARAMS[backend]], indirect=True)


# --- PostgreSQL -------------------------------------------------------------------------------


def _run_in_thread(coroutine: Coroutine[Any, Any, None]) -> None:
    """Runs a coroutine to completion even when called from inside a running event loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


def _postgres_answers() -> bool:
    async def probe() -> None:
        connection = await asyncpg.connect(POSTGRES_URL, timeout=2)
        await connection.close()

    try:
        _run_in_thread(probe())
    except (OSError, TimeoutError):  # nothing answers; any other error must fail the run
        return False
    return True


@pytest.fixture(scope="session")
def postgres() -> Iterator[Callable[[str], str]]:
    """Creates throw-away databases on the system PostgreSQL; skips where it does not answer."""
    if not _postgres_answers():
        pytest.skip(f"PostgreSQL does not answer at {POSTGRES_URL}")
    created: list[str] = []

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(POSTGRES_URL)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    def create_database(label: str) -> str:
        name = f"firebreak_test_{label}_{uuid.uuid4().hex[:8]}"
        _run_in_thread(run(f'CREATE DATABASE "{name}"'))
        created.append(name)
        base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        return f"{base}/{name}"

    yield create_database
    for name in created:
        _run_in_thread(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """Makes an empty database and returns its URL: a SQLite file, or a throw-away PostgreSQL
    database (skipped where PostgreSQL does not answer, as `postgres` is)."""
    if request.param == "postgresql":
        factory: Callable[[str], str] = request.getfixturevalue("postgres")
        return factory
    return lambda label: f"sqlite+aiosqlite:///{tmp_path / label}.db"


def database_urls(backend: str, postgres_factory: Callable[[str], str] | None) -> dict[str, str]:
    if backend == "sqlite":
        return {}
    assert postgres_factory is not None
    return {service: postgres_factory(service) for service in SERVICES}


# --- NATS -------------------------------------------------------------------------------------


class NatsServer:
    """A nats-server with JetStream on a free loopback port, restartable on the same store."""

    def __init__(self, store: Path) -> None:
        self.port = free_port()
        self.store = store
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                nats_server_binary(),
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.store),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def client(nats_server: NatsServer) -> AsyncIterator[NATS]:
    """A connection to the test's own nats-server, with the stream made."""
    connection = await nats.connect(nats_server.url)
    await bus.ensure_stream(connection.jetstream(), bus.stream_config())
    yield connection
    await connection.close()


# --- The platform -----------------------------------------------------------------------------


def start_platform(
    var_dir: Path,
    *,
    database_urls: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> Platform:
    nats_port, gateway_port, inbound_mail_port, *grpc_ports = free_ports(3 + len(GRPC_SERVICES))
    platform = Platform(
        var_dir=var_dir,
        nats_port=nats_port,
        gateway_port=gateway_port,
        grpc_ports=dict(zip(GRPC_SERVICES, grpc_ports, strict=True)),
        admin_key="fbk_test_" + secrets.token_urlsafe(24),
        database_urls=database_urls or {},
        inbound_mail_port=inbound_mail_port,  # reports by email (tests/test_email_reports.py)
        extra_env={
            # Export spans quickly so trace tests need not wait for the default 5 s batch.
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            # Heartbeats of a second or so, missed within a tick of their due time.
            "FIREBREAK_HEARTBEAT_MIN_INTERVAL_SECONDS": "0.1",
            "FIREBREAK_HEARTBEAT_TICK_SECONDS": "0.2",
            **(extra_env or {}),
        },
    )
    try:
        platform.start()
    except BaseException:
        platform.stop()
        raise
    return platform


@pytest.fixture(scope="session", params=BACKENDS)
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """The whole platform as real processes, once per database backend."""
    backend = request.param
    factory = request.getfixturevalue("postgres") if backend == "postgresql" else None
    running = start_platform(
        tmp_path_factory.mktemp(f"platform-{backend}"),
        database_urls=database_urls(backend, factory),
    )
    yield running
    running.stop()


@pytest.fixture(scope="session")
def api(platform: Platform) -> Api:
    return Api(platform)


@contextmanager
def lone_gateway(var_dir: Path, *, admin_key: str, env: dict[str, str]) -> Iterator[Platform]:
    """The gateway process and its NATS alone, on SQLite, without the services (it serves
    without them), for what it does at start-up; ready once /readyz answers 200."""
    nats_port, gateway_port, *grpc_ports = free_ports(2 + len(GRPC_SERVICES))
    platform = Platform(
        var_dir=var_dir,
        nats_port=nats_port,
        gateway_port=gateway_port,
        grpc_ports=dict(zip(GRPC_SERVICES, grpc_ports, strict=True)),
        admin_key=admin_key,
        extra_env=env,
    )
    try:
        platform.start_nats_server()
        gateway = platform.start_service("gateway")
        deadline = time.monotonic() + 30
        while not _answers(f"{platform.gateway_url}/readyz"):
            assert gateway.poll() is None, f"the gateway exited with {gateway.returncode}"
            assert time.monotonic() < deadline, "the gateway was not ready after 30 s"
            time.sleep(0.1)
        yield platform
    finally:
        platform.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# The mail platform's timers, in seconds, so that tests never wait days: a done corrective
# action's effectiveness check falls due this long after (FIREBREAK_EFFECTIVENESS_CHECK_DAYS),
# and a deadline's one reminder goes out this long before it (…_DEADLINE_REMINDER_MINUTES).
EFFECTIVENESS_CHECK_SECONDS = 3.0
DEADLINE_REMINDER_SECONDS = 3.0


@pytest.fixture(scope="session")
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server, and its port. Tests tell their mail apart by recipient."""
    from tests.mail import smtp_server

    with smtp_server() as server:
        yield server


@pytest.fixture(scope="session", params=BACKENDS)
def mail_platform(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    mailbox: tuple[Mailbox, int],
) -> Iterator[Platform]:
    """The platform paging by email through `mailbox`, its timers ticking fast, once per
    backend: for the modules whose tests need no settings of their own."""
    from tests.mail import start_paging_platform

    backend = request.param
    factory = request.getfixturevalue("postgres") if backend == "postgresql" else None
    running = start_paging_platform(
        tmp_path_factory.mktemp(f"mail-platform-{backend}"),
        smtp_port=mailbox[1],
        database_urls=database_urls(backend, factory),
        extra_env={
            "FIREBREAK_EFFECTIVENESS_CHECK_DAYS": str(EFFECTIVENESS_CHECK_SECONDS / 86400),
            "FIREBREAK_DEADLINE_REMINDER_MINUTES": str(DEADLINE_REMINDER_SECONDS / 60),
        },
    )
    yield running
    running.stop()
