"""A database down is a 503 with Retry-After, never a 500, and the platform recovers on its own
once the database is back: against PostgreSQL clusters of the test's own, killed mid-test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from firebreak.grpc_server import LIVENESS_SERVICE
from firebreak.launcher import Platform
from firebreak.settings import GRPC_SERVICES
from tests.conftest import start_platform
from tests.gateway_client import Api, eventually
from tests.private_postgres import PrivatePostgres, started_cluster


@pytest.fixture
def gateway_cluster() -> Iterator[PrivatePostgres]:
    yield from started_cluster()


@pytest.fixture
def services_cluster() -> Iterator[PrivatePostgres]:
    yield from started_cluster()


@pytest.fixture
def platform_on_private_clusters(
    tmp_path: Path, gateway_cluster: PrivatePostgres, services_cluster: PrivatePostgres
) -> Iterator[Platform]:
    """The gateway's database on one cluster, every service's on the other, so that each side
    can be taken away alone."""
    urls = {"gateway": gateway_cluster.create_database("gateway")}
    urls |= {service: services_cluster.create_database(service) for service in GRPC_SERVICES}
    platform = start_platform(tmp_path, database_urls=urls)
    yield platform
    platform.stop()


def liveness(port: int) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        request = health_pb2.HealthCheckRequest(service=LIVENESS_SERVICE)
        return int(health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status)


def assert_unavailable(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    assert detail in response.json()["detail"]


def test_a_database_down_is_a_503_and_the_platform_recovers_when_it_is_back(
    platform_on_private_clusters: Platform,
    gateway_cluster: PrivatePostgres,
    services_cluster: PrivatePostgres,
) -> None:
    platform = platform_on_private_clusters
    api = Api(platform)
    tenant = api.new_client()
    processes = dict(platform.processes)

    # The services' database crashes: intake answers UNAVAILABLE, the gateway a 503.
    services_cluster.stop(kill=True)
    assert_unavailable(api.report(tenant, idempotency_key="during"), "unavailable")
    assert api.http.get("/readyz").status_code == 200  # the gateway's own database answers
    eventually(lambda: api.http.get("/status").json()["services"]["intake"] == "NOT_SERVING")
    # Liveness stays SERVING: restarting the pod would not bring the database back.
    assert liveness(platform.grpc_ports["intake"]) == health_pb2.HealthCheckResponse.SERVING

    # The gateway's database crashes too: every keyed route, a read included, is a 503. (A
    # key's principal is cached for a few seconds, so the report may reach intake first.)
    gateway_cluster.stop(kill=True)
    assert_unavailable(
        api.http.get("/v1/people", headers=api.admin.headers), "The database is unavailable"
    )
    assert_unavailable(api.report(tenant, idempotency_key="during"), "unavailable")
    ready = api.http.get("/readyz")
    assert (ready.status_code, ready.json()["checks"]) == (503, {"database": False})

    # Both come back: requests succeed again, with no Firebreak process restarted.
    gateway_cluster.start()
    services_cluster.start()
    eventually(lambda: api.http.get("/readyz").status_code == 200)
    assert api.http.get("/v1/people", headers=api.admin.headers).status_code == 200
    key = secrets.token_hex(8)
    report = eventually(lambda: (r := api.report(tenant, idempotency_key=key)).is_success and r)
    assert report.status_code == 201
    api.wait_until_notified(tenant, report.json()["id"])  # events flow again
    assert all(process.poll() is None for process in processes.values())
    assert platform.processes == processes
