"""Prometheus metrics (firebreak/metrics.py): every process of a real platform serves /metrics
on a port of its own, scraped over HTTP and parsed with prometheus_client's own parser; and
the consumer sampler against a real nats-server, down to events expiring unread.

(tests/test_metrics.py is something else: review's incident metrics.)"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine

from firebreak.database import create_schema
from firebreak.launcher import Platform, free_ports
from firebreak.metrics_sampler import MetricsSampler
from firebreak.outbox import define_outbox_table
from firebreak.settings import GRPC_SERVICES, SERVICES
from tests.conftest import NatsServer
from tests.gateway_client import Api, eventually

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
REPORTS = 3


def scrape(port: int) -> Samples:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    return parsed(response.text)


def exposed() -> Samples:
    """This test process's own metrics, as a scrape of it would get them."""
    return parsed(generate_latest(REGISTRY).decode())


def parsed(exposition: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when the series does not exist yet (a counter never incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


class MeteredPlatform:
    def __init__(self, platform: Platform, metrics_ports: dict[str, int]) -> None:
        self.platform = platform
        self.metrics_ports = metrics_ports

    def scrape(self, service: str) -> Samples:
        return scrape(self.metrics_ports[service])


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeteredPlatform]:
    """A platform whose every process serves /metrics on its own port, sampling often."""
    nats_port, gateway_port, *ports = free_ports(2 + len(GRPC_SERVICES) + len(SERVICES))
    grpc_ports, metrics_ports = ports[: len(GRPC_SERVICES)], ports[len(GRPC_SERVICES) :]
    platform = Platform(
        var_dir=tmp_path_factory.mktemp("metered"),
        nats_port=nats_port,
        gateway_port=gateway_port,
        grpc_ports=dict(zip(GRPC_SERVICES, grpc_ports, strict=True)),
        admin_key="fbk_test_" + secrets.token_urlsafe(24),
        extra_env={
            "FIREBREAK_METRICS_SAMPLE_SECONDS": "0.2",
            "FIREBREAK_OUTBOX_POLL_SECONDS": "0.1",
        },
    )
    by_service = dict(zip(SERVICES, metrics_ports, strict=True))
    try:
        platform.start_nats_server()
        for name in (*GRPC_SERVICES, "gateway"):
            platform.start_service(name, env={"FIREBREAK_METRICS_PORT": str(by_service[name])})
        platform.wait_until_ready()
        yield MeteredPlatform(platform, by_service)
    finally:
        platform.stop()


def test_requests_are_counted_by_route_and_by_rpc(metered: MeteredPlatform) -> None:
    api = Api(metered.platform)
    tenant = api.new_client()
    route = {"method": "POST", "route": "/v1/incidents", "status": "201"}
    rpc = {
        "grpc_service": "firebreak.intake.v1.IntakeService",
        "grpc_method": "ReportIncident",
        "grpc_code": "OK",
    }
    gateway_before = metered.scrape("gateway")
    intake_before = metered.scrape("intake")
    ids = [api.report(tenant).json()["id"] for _ in range(REPORTS)]
    api.incident(tenant, ids[0])
    missing = api.http.get(f"/v1/incidents/{uuid.uuid4()}", headers=tenant.headers)
    assert missing.status_code == 404

    gateway = metered.scrape("gateway")
    requests = "firebreak_http_requests_total"
    assert value(gateway, requests, **route) - value(gateway_before, requests, **route) == REPORTS
    read = {"method": "GET", "route": "/v1/incidents/{incident_id}"}
    assert value(gateway, requests, **read, status="200") >= 1
    assert value(gateway, requests, **read, status="404") >= 1
    # the route template, never the path: no series names an incident
    assert not any(incident_id in str(labels) for _, labels in gateway for incident_id in ids)
    duration = "firebreak_http_request_duration_seconds_count"
    assert value(gateway, duration, method="POST", route="/v1/incidents") >= REPORTS

    intake = metered.scrape("intake")
    handled = "firebreak_grpc_server_handled_total"
    assert value(intake, handled, **rpc) - value(intake_before, handled, **rpc) >= REPORTS
    not_found = {**rpc, "grpc_method": "GetIncident", "grpc_code": "NOT_FOUND"}
    assert value(intake, handled, **not_found) >= 1  # the domain error's code, as mapped
    timing = "firebreak_grpc_server_handling_seconds_count"
    assert value(intake, timing, grpc_service=rpc["grpc_service"], grpc_method="ReportIncident")


def test_every_process_reports_its_outbox_nats_and_the_consumers(
    metered: MeteredPlatform,
) -> None:
    def sampled(process: str, name: str, **labels: str) -> Samples:
        """A scrape of the process once its sampler has set the series."""

        def scraped() -> Samples | None:
            samples = metered.scrape(process)
            return samples if (name, frozenset(labels.items())) in samples else None

        return eventually(scraped, timeout=30)

    for service in SERVICES:
        samples = sampled(service, "firebreak_outbox_pending", service=service)
        assert value(samples, "firebreak_nats_connected", service=service) == 1, service
    intake = sampled("intake", "firebreak_consumer_pending", durable="triage")
    for durable in GRPC_SERVICES:  # every durable consumer, seen from any process
        assert ("firebreak_consumer_redelivered", frozenset({("durable", durable)})) in intake
    triage = sampled("triage", "firebreak_dead_letters_parked", service="triage")
    assert value(triage, "firebreak_dead_letters_parked", service="triage") == 0
    sampled("notify", "firebreak_escalation_timers_pending")


def test_outbox_backlog_and_nats_state_while_nats_is_away(metered: MeteredPlatform) -> None:
    api = Api(metered.platform)
    tenant = api.new_client()

    def intake_says(name: str, check: Callable[[float], bool]) -> Samples:
        def sampled() -> Samples | None:
            samples = metered.scrape("intake")
            return samples if check(value(samples, name, service="intake")) else None

        return eventually(sampled, timeout=30)

    metered.platform.stop_process("nats")
    try:
        intake_says("firebreak_nats_connected", lambda connected: connected == 0)
        for _ in range(REPORTS):
            assert api.report(tenant).status_code == 201
        waiting = intake_says("firebreak_outbox_pending", lambda pending: pending >= REPORTS)
        assert value(waiting, "firebreak_outbox_oldest_pending_age_seconds", service="intake") > 0
    finally:
        metered.platform.start_nats_server()  # same port, same store
    intake_says("firebreak_nats_connected", lambda connected: connected == 1)
    drained = intake_says("firebreak_outbox_pending", lambda pending: pending == 0)
    assert value(drained, "firebreak_outbox_oldest_pending_age_seconds", service="intake") == 0


# --- The consumer sampler against a real nats-server ------------------------------------------


async def test_redeliveries_and_events_that_expire_unread_are_reported(
    nats_server: NatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stream, durable = f"METRICS_{uuid.uuid4().hex[:8]}", f"slow_{uuid.uuid4().hex[:8]}"
    client = await nats.connect(nats_server.url)
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'outbox.db'}")
    metadata = MetaData()
    define_outbox_table(metadata)
    await create_schema(engine, metadata)
    try:
        js = client.jetstream()
        # The stream keeps events a second: a consumer away longer loses what it had not read.
        await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream}.>"], max_age=1.0))
        await js.add_consumer(
            stream,
            ConsumerConfig(
                durable_name=durable,
                ack_policy=AckPolicy.EXPLICIT,
                filter_subject=f"{stream}.wanted",
            ),
        )
        sampler = MetricsSampler(
            service="test", engine=engine, nats=lambda: client, consumes=False, stream=stream
        )
        # Two events read, one refused (nak) and read again: a redelivery, unacknowledged.
        for _ in range(2):
            await js.publish(f"{stream}.wanted", b"event")
        subscription = await js.pull_subscribe_bind(durable, stream)
        read = await subscription.fetch(2, timeout=2)
        await read[0].nak()
        [again] = await subscription.fetch(1, timeout=2)
        assert again.metadata.num_delivered == 2
        # Three more it does not read, and one it does not subscribe to.
        for _ in range(3):
            await js.publish(f"{stream}.wanted", b"event")
        await js.publish(f"{stream}.unwanted", b"another consumer's")
        await sampler.sample()
        samples = exposed()
        assert value(samples, "firebreak_consumer_pending", durable=durable) == 3
        assert value(samples, "firebreak_consumer_ack_pending", durable=durable) == 2
        assert value(samples, "firebreak_consumer_redelivered", durable=durable) == 1
        expired = "firebreak_consumer_events_expired_unread_total"
        assert value(samples, expired, durable=durable) == 0
        for message in (again, read[1]):
            await message.ack_sync()

        # The consumer stays away while the stream lets its three unread events go.
        for _ in range(100):
            if not (await js.stream_info(stream)).state.messages:
                break
            await asyncio.sleep(0.1)
        with caplog.at_level(logging.ERROR, logger="firebreak.metrics_sampler"):
            await sampler.sample()
        samples = exposed()
        assert value(samples, expired, durable=durable) == 3
        assert value(samples, "firebreak_consumer_pending", durable=durable) == 0
        [alarm] = [record for record in caplog.records if record.levelno == logging.ERROR]
        assert durable in alarm.getMessage() and "3 events expired" in alarm.getMessage()

        # Counted once: the next sample finds nothing more gone.
        await sampler.sample()
        assert value(exposed(), expired, durable=durable) == 3
    finally:
        await client.close()
        await engine.dispose()
