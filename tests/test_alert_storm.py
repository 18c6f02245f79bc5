"""Alert storms (issue 14 §6), small: many events of a few dedup keys, sent concurrently as single
Events v2 requests (which the gateway sends on to intake in batches) and as Alertmanager
webhooks of many alerts, make one incident per key, each holding every accepted event once.
`make bench` measures the full-size storm; nothing here is about speed."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import httpx
from opentelemetry import context as otel_context

from firebreak.api.intake.v1 import intake_pb2
from services.gateway.alert_batches import MAX_BATCH_BYTES, Waiting, next_batch
from tests.alert_client import am_alert, am_webhook, new_integration, post_alertmanager
from tests.gateway_client import Api, Tenant
from tests.lifecycle_client import ok

EVENTS, KEYS = 2000, 20
# The storm's integrations take all of it: the rate limit is tests/test_alerts.py's to check.
UNLIMITED = {"rate_per_second": 100_000, "burst": 100_000}


async def _post_all(
    base_url: str, requests: list[tuple[str, dict[str, Any], dict[str, str]]], concurrency: int
) -> list[httpx.Response]:
    """POSTs (path, JSON body, headers) with `concurrency` in flight; the answers in order."""
    limit = asyncio.Semaphore(concurrency)
    pool = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=pool) as http:

        async def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
            async with limit:
                return await http.post(path, json=body, headers=headers)

        return await asyncio.gather(*(post(*request) for request in requests))


def post_all(
    api: Api, requests: list[tuple[str, dict[str, Any], dict[str, str]]], concurrency: int
) -> list[httpx.Response]:
    return asyncio.run(_post_all(str(api.http.base_url), requests, concurrency))


def trigger(routing_key: str, dedup_key: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    body = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {"summary": f"Disk full on {dedup_key}", "source": "db", "severity": "error"},
    }
    return "/v2/enqueue", body, {}


def incidents_by_key(api: Api, tenant: Tenant) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for incident in api.pages("/v1/incidents", tenant):
        found.setdefault(incident["dedup_key"], []).append(incident)
    return found


def alerts_of(api: Api, tenant: Tenant, incident_id: str) -> list[dict[str, Any]]:
    path = f"/v1/incidents/{incident_id}/alerts"
    items: list[dict[str, Any]] = ok(api.http.get(path, headers=tenant.headers))["items"]
    return items


def assert_one_incident_per_key(api: Api, tenant: Tenant, expected: dict[str, int]) -> None:
    """Exactly one incident per key, whose count and only alert's count are the key's events."""
    found = incidents_by_key(api, tenant)
    assert sorted(found) == sorted(expected)
    for key, incidents in found.items():
        (incident,) = incidents
        assert incident["alert_count"] == expected[key], (key, incident["alert_count"])
        (alert,) = alerts_of(api, tenant, incident["id"])
        assert (alert["dedup_key"], alert["count"]) == (key, expected[key])


def test_a_storm_of_single_events_makes_one_incident_per_key(api: Api) -> None:
    client = api.new_client("Stormy LLP")
    routing_key = new_integration(api, client.id, **UNLIMITED)["key"]
    keys = [f"storm-{number:02d}" for number in range(KEYS)]
    sent = [keys[number % KEYS] for number in range(EVENTS)]

    answers = post_all(api, [trigger(routing_key, key) for key in sent], concurrency=32)

    assert [answer.status_code for answer in answers] == [202] * EVENTS
    assert [answer.json()["dedup_key"] for answer in answers] == sent
    assert_one_incident_per_key(api, client, dict.fromkeys(keys, EVENTS // KEYS))


def test_a_storm_of_alertmanager_batches_makes_one_incident_per_key(api: Api) -> None:
    client = api.new_client("Stormy LLP")
    key = new_integration(api, client.id, kind="alertmanager", **UNLIMITED)["key"]
    keys = [f"fp{number:02d}" for number in range(KEYS)]
    batch = 100  # each key five times in each: several triggers of one key in one request
    headers = {"Authorization": f"Bearer {key}"}
    webhooks = [
        am_webhook([am_alert(keys[number % KEYS]) for number in range(first, first + batch)])
        for first in range(0, EVENTS, batch)
    ]

    answers = post_all(
        api, [("/v1/alerts/alertmanager", webhook, headers) for webhook in webhooks], 4
    )

    assert [answer.status_code for answer in answers] == [200] * len(webhooks)
    results = [outcome["result"] for answer in answers for outcome in answer.json()["outcomes"]]
    assert results.count("opened") == KEYS
    assert results.count("added") == EVENTS - KEYS
    assert_one_incident_per_key(api, client, dict.fromkeys(keys, EVENTS // KEYS))


def test_a_batch_applies_each_keys_events_in_order(api: Api) -> None:
    """Triggers counted together are written before a later event of their key is applied."""
    client = api.new_client()
    key = new_integration(api, client.id, kind="alertmanager")["key"]
    assert ok(post_alertmanager(api, key, am_webhook([am_alert("flaky")])))
    batch = am_webhook(
        [
            am_alert("flaky"),
            am_alert("other"),
            am_alert("flaky"),
            am_alert("flaky", "resolved"),
            am_alert("flaky"),
        ]
    )
    answer = ok(post_alertmanager(api, key, batch))
    assert [outcome["result"] for outcome in answer["outcomes"]] == [
        "added",
        "opened",
        "added",
        "resolved",
        "added",
    ]
    (incident,) = incidents_by_key(api, client)["flaky"]
    (alert,) = alerts_of(api, client, incident["id"])
    # Opened, two counted, resolved, and triggered again: the same alert, open again.
    assert (alert["count"], alert["status"], alert["resolved_at"]) == (4, "triggered", None)
    assert incident["alert_count"] == 4


def test_concurrent_single_events_over_the_rate_lose_none_they_accepted(api: Api) -> None:
    """A batch of single events is admitted or refused whole; whatever was answered 202 is
    counted, and once the bucket is spent every event is refused with a Retry-After."""
    client = api.new_client()
    routing_key = new_integration(api, client.id, rate_per_second=0.01, burst=1)["key"]
    wave = [trigger(routing_key, "over-the-rate")] * 30
    first = post_all(api, wave, concurrency=30)
    second = post_all(api, wave, concurrency=30)
    accepted = sum(1 for answer in first if answer.status_code == 202)
    assert accepted >= 1
    assert {answer.status_code for answer in first} <= {202, 429}
    # The first wave took the one token (or more, in debt): none is left for the second.
    assert [answer.status_code for answer in second] == [429] * 30
    assert all(int(answer.headers["Retry-After"]) >= 1 for answer in second)
    (incident,) = incidents_by_key(api, client)["over-the-rate"]
    assert incident["alert_count"] == accepted


def test_a_batch_of_single_events_stays_under_grpcs_message_limit() -> None:
    # 100 events of ~60 KB each (custom details near the request limit) queued for one key:
    # one call of all of them would be ~6 MB, past gRPC's 4 MiB, and fail every request in it.
    details = '{"custom_details": "' + "x" * 60_000 + '"}'
    loop = asyncio.new_event_loop()  # where each request's answer would go; none is awaited
    waiting = deque(
        Waiting(
            event=intake_pb2.AlertEvent(action="trigger", dedup_key=str(n), details_json=details),
            trace=otel_context.get_current(),
            answer=loop.create_future(),
        )
        for n in range(100)
    )
    loop.close()
    batches = []
    while waiting:
        batches.append(next_batch(waiting))
    assert [w.event.dedup_key for batch in batches for w in batch] == [str(n) for n in range(100)]
    assert len(batches) > 1
    assert all(sum(w.event.ByteSize() for w in batch) <= MAX_BATCH_BYTES for batch in batches)
