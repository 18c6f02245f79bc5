"""A NATS outage does not take the API down: services start and serve without it, reports are
accepted into the outboxes, and everything is handled once NATS is back."""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from firebreak.launcher import Platform
from firebreak.settings import GRPC_SERVICES
from tests.conftest import NatsServer, start_platform
from tests.gateway_client import Api, eventually
from tests.test_resilience import assert_each_handled_exactly_once, submit


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[NatsServer]:
    """The NATS the platform is pointed at, not started: the platform starts in an outage."""
    server = NatsServer(tmp_path / "outage-nats")
    yield server
    server.stop()


@pytest.fixture
def platform_without_nats(tmp_path: Path, outage: NatsServer) -> Iterator[Platform]:
    # The launcher's own nats-server runs too, but every process is sent to `outage`.
    platform = start_platform(tmp_path, extra_env={"FIREBREAK_NATS_URL": outage.url})
    yield platform
    platform.stop()


def pending_outbox_rows(platform: Platform, service: str) -> int:
    with sqlite3.connect(platform.var_dir / f"{service}.db") as database:
        (pending,) = database.execute(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL"
        ).fetchone()
    return int(pending)


def test_a_platform_started_during_a_nats_outage_serves_and_catches_up(
    platform_without_nats: Platform, outage: NatsServer
) -> None:
    platform = platform_without_nats  # started: every service SERVING, the gateway ready
    api = Api(platform)
    ready = api.http.get("/readyz")
    assert (ready.status_code, ready.json()["checks"]) == (200, {"database": True})
    status = api.http.get("/status").json()
    assert status["database"] is True
    assert status["nats"]["connected"] is False
    assert status["services"] == dict.fromkeys(GRPC_SERVICES, "SERVING")

    tenant = api.new_client()
    accepted = submit(api, tenant, 10)  # 201 each, NATS or not
    assert pending_outbox_rows(platform, "intake") == 10

    # A SIGTERM while NATS was never there: a clean exit that leaves the events pending.
    assert platform.stop_process("intake") == 0
    assert pending_outbox_rows(platform, "intake") == 10
    # The gateway too: it used to wait for ever on its housekeeping, which only the stop of a
    # relay (never started without NATS) ended, until the launcher killed it (-9) after 15 s.
    # Shut down cleanly, uvicorn raises the SIGTERM again: the exit is -15.
    assert platform.stop_process("gateway") == -signal.SIGTERM
    log = (platform.var_dir / "logs" / "gateway.log").read_text()
    assert "Application shutdown complete" in log
    platform.start_service("gateway")
    platform.start_service("intake")
    platform.wait_until_ready()
    # The gateway's channel reconnects on its own backoff; calls wait for it to see intake.
    eventually(lambda: api.http.get("/status").json()["services"]["intake"] == "SERVING")
    accepted += submit(api, tenant, 5)

    outage.start()
    eventually(lambda: api.http.get("/status").json()["nats"]["connected"], timeout=30)
    assert_each_handled_exactly_once(api, tenant, accepted)
    assert pending_outbox_rows(platform, "intake") == 0
