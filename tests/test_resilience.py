"""Nothing is lost and nothing doubled when NATS or a service goes away, and replicas share work."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from firebreak.api.triage.v1 import triage_pb2, triage_pb2_grpc
from firebreak.events import STREAM
from firebreak.launcher import Platform, free_port
from tests.conftest import BACKENDS, database_urls, start_platform
from tests.gateway_client import Api, Tenant, eventually
from tests.service_channel import service_channel

FLOW = ["incident.reported", "incident.triaged", "notification.sent"]


@pytest.fixture
def own_platform(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Platform]:
    """A platform of this test's own (SQLite unless parametrized): its counts must see its own
    work alone."""
    backend = getattr(request, "param", "sqlite")
    factory = request.getfixturevalue("postgres") if backend == "postgresql" else None
    platform = start_platform(tmp_path, database_urls=database_urls(backend, factory))
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def breakable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform the module's tests stop parts of and start again (SQLite); each leaves it
    whole."""
    platform = start_platform(tmp_path_factory.mktemp("to-break"))
    yield platform
    platform.stop()


def assert_each_handled_exactly_once(api: Api, tenant: Tenant, ids: list[str]) -> None:
    for incident_id in ids:
        api.wait_until_notified(tenant, incident_id)
        timeline = api.wait_for_timeline(api.admin, incident_id, len(FLOW))
        # The flow, in order; the escalation the default policy starts adds entries of its own.
    assert [entry["type"] for entry in timeline if entry["type"] in FLOW] == FLOW, incident_id
    assert sorted(api.list_ids(tenant, limit=200)) == sorted(ids)


def submit(api: Api, tenant: Tenant, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = api.report(tenant, idempotency_key=secrets.token_hex(8))
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def test_incidents_submitted_while_nats_is_down_are_all_handled_once_it_is_back(
    breakable: Platform,
) -> None:
    api = Api(breakable)
    tenant = api.new_client()
    before = submit(api, tenant, 10)
    breakable.stop_process("nats")
    during = submit(api, tenant, 20)  # intake stores them and their events; the relay waits
    # The gateway stays ready (its database answers); the outage shows on /status.
    assert api.http.get("/readyz").status_code == 200
    eventually(lambda: api.http.get("/status").json()["nats"]["connected"] is False)

    breakable.start_nats_server()  # same port, same store
    eventually(lambda: api.http.get("/status").json()["nats"]["connected"])
    assert_each_handled_exactly_once(api, tenant, before + during)


def test_a_killed_service_picks_up_where_it_left_off(breakable: Platform) -> None:
    api = Api(breakable)
    tenant = api.new_client()
    breakable.processes["triage"].kill()  # no graceful shutdown: a crash
    breakable.processes["triage"].wait()
    waiting = submit(api, tenant, 15)
    assert all(api.incident(tenant, i)["status"] == "reported" for i in waiting)

    breakable.start_service("triage")
    assert_each_handled_exactly_once(api, tenant, waiting)


WORKERS = ("intake", "triage", "notify", "review")


def test_graceful_shutdown_finishes_its_work_and_exits_cleanly(own_platform: Platform) -> None:
    api = Api(own_platform)
    tenant = api.new_client()
    ids = submit(api, tenant, 20)
    # All at once, as a rollout would, while events are in flight.
    assert own_platform.stop_processes(list(WORKERS)) == [0, 0, 0, 0]

    # Nothing was left half-done: every event written was published, every one taken acked.
    for service in ("intake", "triage", "notify"):
        with sqlite3.connect(own_platform.var_dir / f"{service}.db") as database:
            (unpublished,) = database.execute(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            ).fetchone()
        assert unpublished == 0, service
    assert asyncio.run(unacked_messages(own_platform.admin_nats_url)) == dict.fromkeys(WORKERS, 0)

    for service in WORKERS:
        own_platform.start_service(service)
    own_platform.wait_until_ready()
    assert_each_handled_exactly_once(api, tenant, ids + submit(api, tenant, 5))


async def unacked_messages(nats_url: str) -> dict[str, int]:
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        return {d: (await js.consumer_info(STREAM, d)).num_ack_pending for d in WORKERS}
    finally:
        await client.close()


@pytest.mark.parametrize("own_platform", BACKENDS, indirect=True)
def test_two_triage_replicas_share_one_stream_and_triage_each_incident_once(
    own_platform: Platform,
) -> None:
    second_port = free_port()
    own_platform.start_service(
        "triage", label="triage-2", env={"FIREBREAK_TRIAGE_ADDR": f"127.0.0.1:{second_port}"}
    )
    api = Api(own_platform)
    tenant = api.new_client()
    ids = submit(api, tenant, 200)
    assert_each_handled_exactly_once(api, tenant, ids)

    replicas: set[str] = set()
    late = api.new_client()  # reports sent after the first 200, if the second replica is late
    later: list[str] = []
    with service_channel(own_platform, "triage") as channel:
        stub = triage_pb2_grpc.TriageServiceStub(channel)

        def deciders(of: Tenant, incident_ids: list[str]) -> set[str]:
            requests = (
                triage_pb2.GetDecisionRequest(incident_id=incident_id, client_id=of.id)
                for incident_id in incident_ids
            )
            return {stub.GetDecision(request).decided_by for request in requests}

        def both_replicas_decided() -> bool:
            # The second replica joins the consumer once it has started, which on a busy
            # machine may be after the first has taken every report: more come until it has.
            replicas.update(deciders(tenant, ids), deciders(late, later))
            if len(replicas) < 2:
                later.extend(submit(api, late, 10))
                assert_each_handled_exactly_once(api, late, later)
            return len(replicas) == 2

        eventually(both_replicas_decided, timeout=60)
    # One shared consumer that handed each report to one replica, once: not one consumer per
    # replica with the inbox quietly dropping the copies.
    triage = asyncio.run(consumer_state(own_platform.admin_nats_url, "triage"))
    assert triage == {
        "consumers": ["evidence", "gateway", "intake", "notify", "review", "triage"],
        "delivered": len(ids) + len(later),
        "redelivered": 0,
    }


async def consumer_state(nats_url: str, durable: str) -> dict[str, object]:
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        # Durable consumers only: each gateway's console follows the stream with an ephemeral
        # one of its own (services/gateway/console/live.py), named by the server.
        infos = await js.consumers_info(STREAM)
        names = sorted(info.name for info in infos if info.config.durable_name)
        info = await js.consumer_info(STREAM, durable)
        return {
            "consumers": names,
            "delivered": info.delivered.consumer_seq,
            "redelivered": info.num_redelivered,
        }
    finally:
        await client.close()
