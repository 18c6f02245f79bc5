"""Limits that shed load instead of queueing it (issue 13, §3): token buckets per API key and
per client (429), the gateway's and the services' caps on concurrent work (503), and list
pages capped in bytes as well as items.

One platform of this module's own runs with small limits, on SQLite."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import insert

from firebreak.launcher import Platform
from firebreak.settings import RateLimit, Settings, SettingsError
from services.gateway.models import clients
from services.gateway.permissions import OPERATOR_CLIENT_ID, Principal, PrincipalKind
from services.gateway.rate_limits import RateLimiter
from tests.conftest import start_platform
from tests.gateway_client import Api, Tenant, eventually
from tests.gateway_database import on_gateway_database

KEY_RATE, KEY_BURST = 5, 40
CLIENT_RATE, CLIENT_BURST = 5, 60
CONNECTIONS = 16  # the gateway's limit_concurrency
CONCURRENT_RPCS = 2  # each service's
PAGE_BYTES = 10_000
CHECK = "/grpc.health.v1.Health/Check"

# Any cheap authenticated route: the limits apply before the route runs.
PROBE = "/v1/incidents"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    platform = start_platform(
        tmp_path_factory.mktemp("limits"),
        extra_env={
            "FIREBREAK_RATE_LIMIT_KEY": f"{KEY_RATE},{KEY_BURST}",
            "FIREBREAK_RATE_LIMIT_CLIENT": f"{CLIENT_RATE},{CLIENT_BURST}",
            "FIREBREAK_GATEWAY_LIMIT_CONCURRENCY": str(CONNECTIONS),
            "FIREBREAK_GRPC_MAX_CONCURRENT_RPCS": str(CONCURRENT_RPCS),
            "FIREBREAK_LIST_PAGE_MAX_BYTES": str(PAGE_BYTES),
        },
    )
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def api(limited: Platform) -> Api:
    # One HTTP client (one connection) for the module: the connection cap counts connections.
    return Api(limited)


def probe(api: Api, tenant: Tenant) -> httpx.Response:
    return api.http.get(PROBE, params={"limit": 1}, headers=tenant.headers)


def until_refused(api: Api, tenant: Tenant) -> tuple[int, httpx.Response]:
    """Requests until one is refused: how many were answered before it, and the refusal."""
    for answered in range(1000):
        response = probe(api, tenant)
        if response.status_code != 200:
            return answered, response
    pytest.fail("no request was refused")


def second_key(api: Api, tenant: Tenant) -> Tenant:
    issued = api.http.post(
        f"/v1/clients/{tenant.id}/api-keys", json={"role": "client"}, headers=api.admin.headers
    )
    assert issued.status_code == 201, issued.text
    return Tenant(tenant.id, {"Authorization": f"Bearer {issued.json()['key']}"})


def assert_rate_limited(response: httpx.Response, limit: str, rate: int, burst: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()
    assert (body["status"], body["limit"]) == (429, limit)
    assert (body["rate_per_second"], body["burst"]) == (rate, burst)
    assert f"this {limit}" in body["detail"]


def test_a_key_over_its_rate_is_refused_with_retry_after_naming_the_limit(api: Api) -> None:
    tenant = api.new_client("Hasty LLP")
    answered, refused = until_refused(api, tenant)
    assert answered >= KEY_BURST
    assert_rate_limited(refused, "key", KEY_RATE, KEY_BURST)


def test_a_refused_key_is_answered_again_once_its_bucket_refills(api: Api) -> None:
    tenant = api.new_client("Patient LLP")
    until_refused(api, tenant)
    eventually(lambda: probe(api, tenant).status_code == 200, timeout=10)


def test_keys_of_one_client_share_its_bucket_and_other_clients_are_unaffected(
    api: Api,
) -> None:
    tenant = api.new_client("Busy LLP")
    other_key = second_key(api, tenant)
    bystander = api.new_client("Calm LLP")

    _, refused = until_refused(api, tenant)
    assert_rate_limited(refused, "key", KEY_RATE, KEY_BURST)
    # The first key took KEY_BURST of the client's CLIENT_BURST tokens (both refill alike): the
    # second key, its own bucket still full, runs into the client's.
    answered, refused = until_refused(api, other_key)
    assert answered < KEY_BURST
    assert_rate_limited(refused, "client", CLIENT_RATE, CLIENT_BURST)

    assert probe(api, bystander).status_code == 200


def test_the_firms_staff_have_a_bucket_per_key_and_none_shared(api: Api) -> None:
    # Two responders use more than a client's burst between them: each runs into its own
    # key's limit only, never into one shared by the firm.
    for responder in (api.new_person("responder"), api.new_person("responder")):
        _, refused = until_refused(api, responder)
        assert_rate_limited(refused, "key", KEY_RATE, KEY_BURST)


def principal(key_id: str, client_id: str) -> Principal:
    staff = client_id == OPERATOR_CLIENT_ID
    return Principal(
        kind=PrincipalKind.ADMIN if staff else PrincipalKind.CLIENT_SYSTEM,
        id=key_id,
        name=key_id,
        client_id=client_id,
        key_id=key_id,
        clients=None if staff else frozenset({client_id}),
    )


def test_a_refused_request_takes_no_token_and_retry_after_rounds_up() -> None:
    now = [0.0]
    limiter = RateLimiter(key=RateLimit(1, 2), client=RateLimit(0.5, 3), clock=lambda: now[0])
    first, second = principal("k1", "acme"), principal("k2", "acme")
    assert limiter.refusal(first) is None
    assert limiter.refusal(first) is None
    refused = limiter.refusal(first)
    assert refused is not None and (refused.limit, refused.retry_after) == ("key", 1)
    # The refusal took none of the client's tokens: one is left for the other key.
    assert limiter.refusal(second) is None
    refused = limiter.refusal(second)
    assert refused is not None and (refused.limit, refused.retry_after) == ("client", 2)
    now[0] = 1.5  # the client's bucket holds 0.75 of a token
    refused = limiter.refusal(second)
    assert refused is not None and (refused.limit, refused.retry_after) == ("client", 1)
    now[0] = 2.0
    assert limiter.refusal(second) is None
    # The operator's keys draw on no client bucket.
    for _ in range(2):
        assert limiter.refusal(principal("admin", OPERATOR_CLIENT_ID)) is None


@pytest.mark.parametrize("text", ["fast", "5", "5,0", "-1,10", "inf,10", "5,1.5"])
def test_a_rate_limit_setting_that_is_not_rate_and_burst_is_refused_naming_it(
    text: str,
) -> None:
    with pytest.raises(SettingsError, match="FIREBREAK_RATE_LIMIT_CLIENT"):
        Settings.from_environment({"FIREBREAK_RATE_LIMIT_CLIENT": text})


def test_an_empty_or_zero_rate_limit_turns_it_off() -> None:
    settings = Settings.from_environment(
        {"FIREBREAK_RATE_LIMIT_KEY": "", "FIREBREAK_RATE_LIMIT_CLIENT": "0"}
    )
    assert (settings.key_rate_limit, settings.client_rate_limit) == (None, None)
    assert Settings().key_rate_limit == RateLimit(500, 1000)


def test_connections_beyond_the_gateways_limit_get_503_at_once(api: Api, limited: Platform) -> None:
    tenant = api.new_client("Crowded LLP")
    held = [
        socket.create_connection(("127.0.0.1", limited.gateway_port), timeout=5)
        for _ in range(CONNECTIONS)
    ]
    try:
        with httpx.Client(base_url=limited.gateway_url, timeout=5) as fresh:

            def shed() -> bool:
                # Answered at once, not held until a connection frees up.
                return fresh.get(PROBE, headers=tenant.headers).status_code == 503

            eventually(shed, timeout=10)
    finally:
        for connection in held:
            connection.close()
    eventually(lambda: probe(api, tenant).status_code == 200, timeout=10)


def test_calls_beyond_a_services_limit_are_refused_and_the_gateway_answers_503(
    api: Api, limited: Platform
) -> None:
    tenant = api.new_client("Overloaded LLP")
    release = threading.Event()

    def request_never_sent() -> Iterator[bytes]:
        release.wait()
        yield from ()

    with grpc.insecure_channel(f"127.0.0.1:{limited.grpc_ports['intake']}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        # Calls whose request never comes: intake holds each open, waiting for it, and so runs
        # as many as it may at once.
        held = [channel.stream_stream(CHECK)(request_never_sent()) for _ in range(CONCURRENT_RPCS)]

        def refused() -> grpc.StatusCode | None:
            try:
                health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            except grpc.RpcError as error:
                return error.code()  # type: ignore[no-any-return]  # grpc.Call's
            return None

        try:
            assert eventually(refused, timeout=10) == grpc.StatusCode.RESOURCE_EXHAUSTED
            shed = probe(api, tenant)
        finally:
            release.set()
            for call in held:
                call.cancel()
    assert shed.status_code == 503, shed.text
    assert shed.headers["content-type"] == "application/problem+json"
    assert int(shed.headers["Retry-After"]) >= 1
    assert "overloaded" in shed.json()["detail"]
    eventually(lambda: probe(api, tenant).status_code == 200, timeout=10)


def pages_of(api: Api, path: str, tenant: Tenant) -> list[list[dict[str, Any]]]:
    """The items on each page of a list, following cursors, at 50 items a page."""
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 50} | ({"cursor": cursor} if cursor else {})
        page = api.http.get(path, params=params, headers=tenant.headers)
        assert page.status_code == 200, page.text
        pages.append(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return pages


def page_ids(api: Api, path: str, tenant: Tenant) -> list[list[str]]:
    return [[item["id"] for item in page] for page in pages_of(api, path, tenant)]


def assert_within_the_cap(pages: list[list[dict[str, Any]]]) -> None:
    for page in pages:  # an item larger than the cap comes alone; none here is
        assert 1 <= len(page) and len(json.dumps(page, separators=(",", ":"))) <= PAGE_BYTES


def test_a_page_stops_at_its_byte_cap_and_its_cursor_continues_without_loss(api: Api) -> None:
    tenant = api.new_client("Verbose LLP")
    # About 4 KB each as intake sends them: two fit in a page of PAGE_BYTES, three do not.
    reported = [
        api.report(tenant, description=f"{number} " + "x" * 3500).json()["id"]
        for number in range(5)
    ]
    # Larger than a page on its own: it comes alone rather than never.
    huge = api.report(tenant, description="y" * (PAGE_BYTES + 1000)).json()["id"]

    pages = page_ids(api, PROBE, tenant)
    assert pages[0] == [huge]
    assert all(1 <= len(page) <= 2 for page in pages)
    listed = [incident_id for page in pages for incident_id in page]
    assert listed == [huge, *reversed(reported)]  # newest first, nothing lost or repeated


def test_schedule_pages_stop_at_the_byte_cap_too(api: Api) -> None:
    responder = api.new_person("responder")
    # One person listed 40 times in each of three layers: about 4.6 KB a schedule as notify
    # sends it.
    layer = {
        "participants": [responder.person_id] * 40,
        "rotation": "daily",
        "handoff_time": "09:00",
        "starts_at": "2027-03-26T09:00:00Z",
    }
    made: list[str] = []
    for number in range(3):
        created = api.http.post(
            "/v1/schedules",
            json={"name": f"Rota {number}", "timezone": "UTC", "layers": [layer] * 3},
            headers=api.admin.headers,
        )
        assert created.status_code == 201, created.text
        made.append(created.json()["id"])

    pages = page_ids(api, "/v1/schedules", api.admin)
    assert all(1 <= len(page) <= 2 for page in pages)
    listed = [schedule_id for page in pages for schedule_id in page]
    assert listed == [*reversed(made), "default"]


def test_people_and_audit_pages_stop_at_the_byte_cap_too(api: Api, limited: Platform) -> None:
    # Walls of 100 clients: about 4 KB a person, and as much in the audit entry of their
    # creation. The clients go straight into the gateway's database: through the API they
    # would take a hundred of the admin key's rate-limited requests.
    wall = [str(uuid.uuid4()) for _ in range(100)]
    now = datetime.now(UTC)
    rows = [{"id": client_id, "name": "Walled LLP", "created_at": now} for client_id in wall]
    on_gateway_database(limited, insert(clients).values(rows))
    walled = [api.new_person("responder", clients=wall).person_id for _ in range(3)]

    people = pages_of(api, "/v1/people", api.admin)
    assert_within_the_cap(people)
    assert [person["id"] for person in people[0]] == walled[:0:-1]  # two fit, not three
    listed = [person["id"] for page in people for person in page]
    assert len(listed) == len(set(listed)) and set(walled) <= set(listed)

    entries = pages_of(api, "/v1/audit", api.admin)
    assert_within_the_cap(entries)
    created = [
        entry["target"]["id"]
        for page in entries
        for entry in page
        if entry["action"] == "person.created"
    ]
    assert len(entries) > 1 and created[:3] == walled[::-1]
