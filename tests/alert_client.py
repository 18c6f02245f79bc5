"""Integrations and their senders, as tests drive them: PagerDuty Events v2 bodies and
Alertmanager webhook payloads shaped as those tools send them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.gateway_client import Api, Tenant


def new_integration(api: Api, client_id: str, **settings: Any) -> dict[str, Any]:
    """An integration of the client (events_v2 unless `kind` says), made by the admin; the
    answer holds its key."""
    body = {"client_id": client_id, "kind": "events_v2", "name": "Prometheus", **settings}
    created = api.http.post("/v1/integrations", json=body, headers=api.admin.headers)
    assert created.status_code == 201, created.text
    integration: dict[str, Any] = created.json()
    return integration


def enqueue(api: Api, routing_key: str, action: str = "trigger", **fields: Any) -> httpx.Response:
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": action, **fields}
    if action == "trigger" and "payload" not in fields:
        body["payload"] = {
            "summary": "Disk almost full on db-1",
            "source": "db-1.example.com",
            "severity": "critical",
        }
    return api.http.post("/v2/enqueue", json=body)


def am_alert(fingerprint: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    """One alert of an Alertmanager webhook (version 4), as Alertmanager sends it."""
    return {
        "status": status,
        "labels": {"alertname": "HighLatency", "instance": "api-1:9090", **labels},
        "annotations": {"summary": "p99 latency above 2 s"},
        "startsAt": "2026-03-02T10:00:00.000Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-03-02T10:05:00.000Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=latency",
        "fingerprint": fingerprint,
    }


def am_webhook(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    status = "firing" if any(alert["status"] == "firing" for alert in alerts) else "resolved"
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighLatency"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "firebreak",
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {"alertname": "HighLatency"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    }


def post_alertmanager(api: Api, key: str, payload: dict[str, Any]) -> httpx.Response:
    return api.http.post(
        "/v1/alerts/alertmanager", json=payload, headers={"Authorization": f"Bearer {key}"}
    )


def incident_of(api: Api, tenant: Tenant, dedup_key: str) -> dict[str, Any] | None:
    """The tenant's newest incident opened for the dedup key, if any."""
    page = api.http.get("/v1/incidents", params={"limit": 200}, headers=tenant.headers)
    assert page.status_code == 200, page.text
    for incident in page.json()["items"]:
        if incident["dedup_key"] == dedup_key:
            found: dict[str, Any] = incident
            return found
    return None


def unique_key() -> str:
    return f"disk-full-{uuid.uuid4().hex[:8]}"
