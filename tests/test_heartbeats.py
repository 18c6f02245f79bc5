"""Heartbeats (issue 14 §5) on the shared platform, whose intake looks for missed ones every
0.2 s and allows intervals of a fraction of a second (tests/conftest.py, start_platform): a
missed heartbeat opens one incident through the alert path, pings resuming resolve it, and two
intake replicas open one incident per outage."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import httpx

from firebreak.launcher import Platform, free_port
from tests.alert_client import new_integration
from tests.conftest import on_backend
from tests.gateway_client import Api, Tenant, eventually
from tests.lifecycle_client import finish_containment, ok

INTERVAL, GRACE = 0.6, 0.4
# Whatever was going to be missed has been, several ticks over.
SETTLED = INTERVAL + GRACE + 1.0


def new_heartbeat(api: Api, client_id: str, **settings: Any) -> dict[str, Any]:
    return new_integration(
        api,
        client_id,
        kind="heartbeat",
        name="Nightly backup",
        service="backups",
        interval_seconds=INTERVAL,
        grace_seconds=GRACE,
        **settings,
    )


def ping(api: Api, key: str, method: str = "POST") -> httpx.Response:
    return api.http.request(method, f"/v1/heartbeats/{key}")


def heartbeat_incidents(api: Api, tenant: Tenant) -> list[dict[str, Any]]:
    page = ok(api.http.get("/v1/incidents", params={"limit": 200}, headers=tenant.headers))
    return [item for item in page["items"] if item["dedup_key"] == "heartbeat"]


def status(api: Api, integration_id: str) -> str:
    shown = ok(api.http.get(f"/v1/integrations/{integration_id}", headers=api.admin.headers))
    heartbeat_status: str = shown["heartbeat_status"]
    return heartbeat_status


def test_a_missed_heartbeat_opens_one_incident_and_pings_resuming_resolve_it(api: Api) -> None:
    client = api.new_client("Heartbeat LLP")
    made = new_heartbeat(
        api,
        client.id,
        resolve_with_alerts=True,
        # A P4, which the lifecycle lets monitoring resolve on its own.
        severity_mapping={"error": {"impact": "minor", "urgency": "low"}},
    )
    assert made["heartbeat_status"] == "waiting" and made["overdue_at"] is None
    # Before its first ping nothing is missed: its sender is still being set up.
    time.sleep(SETTLED)
    assert heartbeat_incidents(api, client) == []

    first = ping(api, made["key"])
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "success" and first.json()["resolved"] is False
    assert status(api, made["id"]) == "up"

    (incident,) = eventually(lambda: heartbeat_incidents(api, client))
    assert incident["title"].startswith("No heartbeat from Nightly backup since ")
    assert incident["affected_assets"] == ["backups"]
    assert len(incident["trace_id"]) == 32  # its trace starts at the watch
    assert status(api, made["id"]) == "down"
    # One outage, one trigger, however many ticks pass.
    time.sleep(SETTLED)
    (still,) = heartbeat_incidents(api, client)
    assert still["id"] == incident["id"] and still["alert_count"] == 1

    eventually(lambda: api.incident(client, incident["id"])["status"] == "triaged")
    # The response's own work done, the heartbeat resuming takes the incident on to resolved.
    finish_containment(api, api.new_person("manager"), incident["id"])
    resumed = ping(api, made["key"], "GET")  # GET, as a monitor that only fetches a URL
    assert resumed.status_code == 200 and resumed.json()["resolved"] is True
    assert status(api, made["id"]) == "up"
    eventually(lambda: api.incident(client, incident["id"])["status"] == "resolved")
    alerts = ok(api.http.get(f"/v1/incidents/{incident['id']}/alerts", headers=client.headers))
    assert [alert["status"] for alert in alerts["items"]] == ["resolved"]


@on_backend("sqlite", "platform")
def test_a_ping_of_no_heartbeat_is_a_404(api: Api) -> None:
    client = api.new_client()
    events_key = new_integration(api, client.id)["key"]  # a key, but not a heartbeat's
    for key in ("0123456789abcdef0123456789abcdef", events_key, "not-a-key", "A" * 32):
        answer = ping(api, key)
        assert answer.status_code == 404, (key, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
    made = new_heartbeat(api, client.id)
    ok(api.http.post(f"/v1/integrations/{made['id']}/disable", headers=api.admin.headers))
    assert ping(api, made["key"]).status_code == 404


@on_backend("sqlite", "platform")
def test_a_heartbeat_integration_needs_an_interval_the_platform_allows(api: Api) -> None:
    client = api.new_client()
    for settings in (
        {},  # no interval
        {"interval_seconds": 0.01},  # below FIREBREAK_HEARTBEAT_MIN_INTERVAL_SECONDS (0.1)
        {"interval_seconds": 60, "grace_seconds": -1},
        {"interval_seconds": 60, "allowed_senders": ["ops@client.example"]},
    ):
        body = {"client_id": client.id, "kind": "heartbeat", "name": "Cron"} | settings
        answer = api.http.post("/v1/integrations", json=body, headers=api.admin.headers)
        assert answer.status_code == 422, (settings, answer.text)
    made = new_integration(api, client.id, kind="heartbeat", interval_seconds=3600)
    assert made["grace_seconds"] == 300  # the default


@on_backend("postgresql", "platform")
def test_two_intake_replicas_open_one_incident_per_missed_heartbeat(
    platform: Platform, api: Api
) -> None:
    """Both replicas watch; each outage is claimed by one (FOR UPDATE SKIP LOCKED)."""
    replica = platform.start_service(
        "intake",
        label="intake-2",
        env={"FIREBREAK_GRPC_LISTEN_ADDR": f"127.0.0.1:{free_port()}"},
    )
    try:
        clients = [api.new_client(f"Replicated {number}") for number in range(6)]
        keys = [new_heartbeat(api, client.id)["key"] for client in clients]
        eventually(lambda: "serving gRPC" in _log(platform) or replica.poll() is not None)
        assert replica.poll() is None, _log(platform)
        for key in keys:
            assert ping(api, key).status_code == 200
        for client in clients:
            eventually(partial(heartbeat_incidents, api, client))
        time.sleep(SETTLED)
        for client in clients:
            (incident,) = heartbeat_incidents(api, client)
            assert incident["alert_count"] == 1
            assert len(api.list_ids(client)) == 1
    finally:
        platform.stop_process("intake-2")


def _log(platform: Platform) -> str:
    return (platform.var_dir / "logs" / "intake-2.log").read_text()
