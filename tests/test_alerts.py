"""Integrations and alerts (issue 14 §1-§4) on the shared platform, over HTTP: PagerDuty Events
v2 and Alertmanager payloads deduplicated into incidents, acknowledged, resolved and reopened
through the lifecycle, and refused as their senders expect."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.alert_client import (
    am_alert,
    am_webhook,
    enqueue,
    incident_of,
    new_integration,
    post_alertmanager,
    unique_key,
)
from tests.conftest import on_backend
from tests.gateway_client import Api, Tenant, eventually
from tests.lifecycle_client import finish_containment, ok


def status_of(api: Api, tenant: Tenant, incident_id: str) -> str:
    status: str = api.incident(tenant, incident_id)["status"]
    return status


def alerts_of(api: Api, tenant: Tenant, incident_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(
        api.http.get(f"/v1/incidents/{incident_id}/alerts", headers=tenant.headers)
    )["items"]
    return items


# --- Integrations -------------------------------------------------------------------------------


@on_backend("sqlite", "platform")
def test_an_integration_is_made_listed_rotated_and_disabled(api: Api) -> None:
    client = api.new_client("Integrated LLP")
    made = new_integration(api, client.id, service="checkout", burst=5)
    assert re.fullmatch(r"[0-9a-f]{32}", made["key"])
    assert made["key_prefix"] == made["key"][:8]
    assert made["severity_mapping"]["critical"] == {"impact": "extensive", "urgency": "critical"}
    path = f"/v1/integrations/{made['id']}"
    shown = ok(api.http.get(path, headers=api.admin.headers))
    assert "key" not in shown and shown["service"] == "checkout"
    listed = api.pages("/v1/integrations", api.admin, client_id=client.id)
    assert [item["id"] for item in listed] == [made["id"]]
    assert made["key"] not in str(listed)

    # A manager walled off from the client is told it does not exist; a client key may not.
    outsider = api.new_person("manager", clients=[api.new_client("Elsewhere LLP").id])
    assert api.http.get(path, headers=outsider.headers).status_code == 404
    assert api.pages("/v1/integrations", outsider) == []
    assert api.http.get(path, headers=client.headers).status_code == 403

    rotated = ok(api.http.post(f"{path}/rotate", headers=api.admin.headers))
    assert rotated["key"] != made["key"] and rotated["key_rotated_at"]
    refused = enqueue(api, made["key"], dedup_key="k")
    assert refused.status_code == 400
    assert refused.json()["errors"] == ["Invalid routing key"]
    assert enqueue(api, rotated["key"], dedup_key=unique_key()).status_code == 202

    disabled = ok(api.http.post(f"{path}/disable", headers=api.admin.headers))
    assert disabled["disabled_at"]
    assert enqueue(api, rotated["key"], dedup_key=unique_key()).status_code == 400


@on_backend("sqlite", "platform")
def test_an_integration_refuses_bad_settings(api: Api) -> None:
    client = api.new_client()
    for body in (
        {"client_id": client.id, "kind": "pagerduty", "name": "Pager"},  # no such kind
        {"client_id": client.id, "kind": "events_v2", "name": ""},
        {"client_id": client.id, "kind": "events_v2", "name": "x", "burst": 0},
        {
            "client_id": client.id,
            "kind": "events_v2",
            "name": "x",
            "severity_mapping": {"critical": {"impact": "huge", "urgency": "critical"}},
        },
    ):
        answer = api.http.post("/v1/integrations", json=body, headers=api.admin.headers)
        assert answer.status_code == 422, answer.text
    missing = {"client_id": "0" * 8 + "-0000-4000-8000-" + "0" * 12, "kind": "events_v2"}
    answer = api.http.post(
        "/v1/integrations", json=missing | {"name": "x"}, headers=api.admin.headers
    )
    assert answer.status_code == 404


# --- Deduplication --------------------------------------------------------------------------------


def test_triggers_of_one_dedup_key_count_on_one_incident(api: Api) -> None:
    client = api.new_client()
    key = new_integration(api, client.id, service="db")["key"]
    dedup_key = unique_key()
    for _ in range(3):
        answer = enqueue(api, key, dedup_key=dedup_key)
        assert answer.status_code == 202, answer.text
        assert answer.json() == {
            "status": "success",
            "message": "Event processed",
            "dedup_key": dedup_key,
        }
    other = enqueue(api, key, dedup_key=unique_key())
    assert other.status_code == 202

    incident = incident_of(api, client, dedup_key)
    assert incident is not None
    assert incident["alert_count"] == 3
    assert incident["title"] == "Disk almost full on db-1"
    assert incident["affected_assets"] == ["db"]
    assert incident["reporter"]["name"] == "Prometheus"
    (alert,) = alerts_of(api, client, incident["id"])
    assert alert["count"] == 3 and alert["status"] == "triggered"
    assert alert["dedup_key"] == dedup_key and alert["source"] == "db-1.example.com"
    # critical, by the default mapping: extensive and critical, which the matrix makes a P1.
    triaged = eventually(lambda: api.incident(client, incident["id"])["priority"])
    assert triaged == "P1"
    assert len([i for i in api.list_ids(client)]) == 2


@on_backend("sqlite", "platform")
def test_a_trigger_without_a_dedup_key_is_given_one(api: Api) -> None:
    client = api.new_client()
    key = new_integration(
        api,
        client.id,
        severity_mapping={"warning": {"impact": "minor", "urgency": "low"}},
    )["key"]
    payload = {"summary": "Queue slow", "source": "mq-1", "severity": "warning"}
    answer = enqueue(api, key, payload=payload)
    assert answer.status_code == 202
    generated = answer.json()["dedup_key"]
    assert generated
    incident = incident_of(api, client, generated)
    assert incident is not None and (incident["impact"], incident["urgency"]) == ("minor", "low")
    assert eventually(lambda: api.incident(client, incident["id"])["priority"]) == "P4"


BAD_EVENTS: list[tuple[dict[str, Any], str]] = [
    ({"event_action": "trigger"}, "routing_key"),
    ({"routing_key": "short", "event_action": "trigger"}, "routing_key"),
    ({"event_action": "explode"}, "event_action"),
    ({"event_action": "resolve"}, "dedup_key"),
    ({"event_action": "trigger", "dedup_key": "k" * 256}, "dedup_key"),
    ({"event_action": "trigger"}, "payload"),
    ({"event_action": "trigger", "payload": {"summary": "s", "source": "h"}}, "severity"),
    (
        {
            "event_action": "trigger",
            "payload": {"summary": "s" * 1025, "source": "h", "severity": "info"},
        },
        "summary",
    ),
    (
        {"event_action": "trigger", "payload": {"summary": "s", "severity": "info"}},
        "source",
    ),
    (
        {
            "event_action": "trigger",
            "payload": {"summary": "s", "source": "h", "severity": "info", "timestamp": "soon"},
        },
        "timestamp",
    ),
]


@on_backend("sqlite", "platform")
@pytest.mark.parametrize(("body", "named"), BAD_EVENTS)
def test_a_bad_event_is_answered_as_pagerduty_answers_it(
    api: Api, body: dict[str, Any], named: str
) -> None:
    routing_key = "0123456789abcdef0123456789abcdef"
    if named == "routing_key":
        sent = body
    else:
        sent = {"routing_key": routing_key} | body
    answer = api.http.post("/v2/enqueue", json=sent)
    assert answer.status_code == 400, answer.text
    refused = answer.json()
    assert refused["status"] == "invalid event"
    assert refused["message"] == "Event object is invalid"
    assert any(named in error for error in refused["errors"]), refused


@on_backend("sqlite", "platform")
def test_not_json_is_an_invalid_event(api: Api) -> None:
    answer = api.http.post(
        "/v2/enqueue", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["status"] == "invalid event"


@on_backend("sqlite", "platform")
def test_input_no_store_can_take_is_an_invalid_event_not_a_server_error(api: Api) -> None:
    routing_key = "0123456789abcdef0123456789abcdef"
    payload = {"summary": "Disk full", "source": "db-1", "severity": "error"}
    trigger = {"routing_key": routing_key, "event_action": "trigger", "payload": payload}
    lone_surrogate = json.dumps(trigger).replace("Disk full", "\\ud800")
    deep = "[" * 20_000 + "]" * 20_000  # under the body limit, far past a parser's depth
    long_ago = json.dumps(
        trigger | {"payload": payload | {"timestamp": "0001-01-01T00:00:00+14:00"}}
    )
    for body, named in ((lone_surrogate, "summary"), (deep, ""), (long_ago, "timestamp")):
        answer = api.http.post(
            "/v2/enqueue", content=body.encode(), headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["status"] == "invalid event"
        assert named in " ".join(answer.json()["errors"])
    key = new_integration(api, api.new_client().id, kind="alertmanager")["key"]
    surrogate_label = json.dumps(am_webhook([am_alert(unique_key())])).replace(
        '"alertname": "', '"alertname": "\\ud800'
    )
    answer = api.http.post(
        "/v1/alerts/alertmanager",
        content=surrogate_label.encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def test_concurrent_triggers_of_a_new_dedup_key_make_one_incident(api: Api) -> None:
    client = api.new_client()
    key = new_integration(api, client.id, burst=100)["key"]
    dedup_key = unique_key()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: enqueue(api, key, dedup_key=dedup_key), range(24)))
    assert [answer.status_code for answer in answers] == [202] * 24
    assert len(api.list_ids(client)) == 1
    incident = incident_of(api, client, dedup_key)
    assert incident is not None and incident["alert_count"] == 24


# --- Alertmanager ---------------------------------------------------------------------------------


def test_alertmanager_alerts_firing_and_resolved(api: Api) -> None:
    client = api.new_client()
    key = new_integration(api, client.id, kind="alertmanager")["key"]
    first, second = unique_key(), unique_key()
    firing = am_webhook([am_alert(first, severity="warning"), am_alert(second)])
    answer = post_alertmanager(api, key, firing)
    assert answer.status_code == 200, answer.text
    assert [o["result"] for o in answer.json()["outcomes"]] == ["opened", "opened"]
    again = post_alertmanager(api, key, firing)
    assert [o["result"] for o in again.json()["outcomes"]] == ["added", "added"]

    warned = incident_of(api, client, first)
    assert warned is not None and warned["alert_count"] == 2
    assert warned["title"] == "HighLatency: p99 latency above 2 s"
    assert (warned["impact"], warned["urgency"]) == ("moderate", "medium")
    assert warned["detected_at"].startswith("2026-03-02T10:00:00")

    resolved = post_alertmanager(api, key, am_webhook([am_alert(first, "resolved")]))
    assert [o["result"] for o in resolved.json()["outcomes"]] == ["resolved"]
    (alert,) = alerts_of(api, client, warned["id"])
    assert alert["status"] == "resolved" and alert["resolved_at"]
    # The integration leaves the incident to a person (resolve_with_alerts unset).
    assert status_of(api, client, warned["id"]) in ("reported", "triaged")
    (still,) = alerts_of(api, client, incident_of(api, client, second)["id"])  # type: ignore[index]
    assert still["status"] == "triggered"


@on_backend("sqlite", "platform")
def test_alertmanager_is_refused_without_its_key(api: Api) -> None:
    client = api.new_client()
    events_key = new_integration(api, client.id)["key"]  # of another kind
    payload = am_webhook([am_alert(unique_key())])
    for headers in ({}, {"Authorization": f"Bearer {events_key}"}):
        answer = api.http.post("/v1/alerts/alertmanager", json=payload, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
    key = new_integration(api, client.id, kind="alertmanager")["key"]
    bad = payload | {"version": "3"}
    assert post_alertmanager(api, key, bad).status_code == 422


# --- Acknowledge, resolve, flapping -------------------------------------------------------------


@on_backend("sqlite", "platform")
def test_alerts_acknowledge_resolve_and_reopen_their_incident(api: Api) -> None:
    client = api.new_client()
    key = new_integration(api, client.id, resolve_with_alerts=True, flapping_window_seconds=3600)[
        "key"
    ]
    manager = api.new_person("manager")
    dedup_key = unique_key()
    payload = {"summary": "Cache misses", "source": "cache-1", "severity": "warning"}
    assert enqueue(api, key, dedup_key=dedup_key, payload=payload).status_code == 202
    incident_id = incident_of(api, client, dedup_key)["id"]  # type: ignore[index]
    eventually(lambda: status_of(api, client, incident_id) == "triaged")

    assert enqueue(api, key, "acknowledge", dedup_key=dedup_key).status_code == 202
    eventually(lambda: status_of(api, client, incident_id) == "acknowledged")

    # The response's own work done, the monitoring's resolve contains and resolves it.
    finish_containment(api, manager, incident_id)
    assert enqueue(api, key, "resolve", dedup_key=dedup_key).status_code == 202
    eventually(lambda: status_of(api, client, incident_id) == "resolved")
    timeline = api.wait_for_timeline(manager, incident_id, 5)
    by_integration = [e["type"] for e in timeline if e["actor"]["name"] == "Prometheus"]
    assert by_integration[-3:] == [
        "incident.acknowledged",
        "incident.contained",
        "incident.resolved",
    ]

    # Triggered again within the flapping window: the same incident, reopened.
    again = enqueue(api, key, dedup_key=dedup_key, payload=payload)
    assert again.status_code == 202
    eventually(lambda: status_of(api, client, incident_id) == "acknowledged")
    assert api.incident(client, incident_id)["alert_count"] == 2
    assert len(api.list_ids(client)) == 1
    # A resolve of an alert that is not open is dropped, as PagerDuty drops it.
    assert enqueue(api, key, "resolve", dedup_key=unique_key()).status_code == 202


@on_backend("sqlite", "platform")
def test_a_resolved_alert_leaves_a_p1_to_its_people(api: Api) -> None:
    """The lifecycle's guard holds: a P1 without a commander is not contained by monitoring."""
    client = api.new_client()
    key = new_integration(api, client.id, resolve_with_alerts=True)["key"]
    dedup_key = unique_key()
    assert enqueue(api, key, dedup_key=dedup_key).status_code == 202  # critical: a P1
    incident_id = incident_of(api, client, dedup_key)["id"]  # type: ignore[index]
    eventually(lambda: status_of(api, client, incident_id) == "triaged")
    assert enqueue(api, key, "resolve", dedup_key=dedup_key).status_code == 202
    eventually(lambda: status_of(api, client, incident_id) == "acknowledged")
    (alert,) = alerts_of(api, client, incident_id)
    assert alert["status"] == "resolved"


@on_backend("postgresql", "platform")
def test_a_trigger_after_its_incident_ended_opens_another(api: Api) -> None:
    client = api.new_client()
    key = new_integration(api, client.id, flapping_window_seconds=0)["key"]
    manager = api.new_person("manager")
    dedup_key = unique_key()
    assert enqueue(api, key, dedup_key=dedup_key).status_code == 202
    first = incident_of(api, client, dedup_key)["id"]  # type: ignore[index]
    eventually(lambda: status_of(api, client, first) == "triaged")
    declined = api.http.post(
        f"/v1/incidents/{first}/decline", json={"reason": "a test"}, headers=manager.headers
    )
    ok(declined)
    eventually(lambda: api.incident(client, first)["status"] == "declined")
    # Intake has seen it declined once its registry says so (the list reads the registry).
    eventually(
        lambda: any(
            i["id"] == first and i["status"] == "declined"
            for i in api.http.get("/v1/incidents", headers=client.headers).json()["items"]
        )
    )
    # The incident is over, but its alert is still open: a resolve resolves it, and no more.
    assert enqueue(api, key, "resolve", dedup_key=dedup_key).status_code == 202
    assert [alert["status"] for alert in alerts_of(api, client, first)] == ["resolved"]
    assert enqueue(api, key, dedup_key=dedup_key).status_code == 202
    second = incident_of(api, client, dedup_key)
    assert second is not None and second["id"] != first and second["alert_count"] == 1
    assert api.incident(client, first)["alert_count"] == 1


# --- Rate limits ----------------------------------------------------------------------------------


@on_backend("sqlite", "platform")
def test_over_its_rate_an_integration_is_answered_429_and_nothing_is_taken(api: Api) -> None:
    client = api.new_client()
    key = new_integration(api, client.id, rate_per_second=0.01, burst=2)["key"]
    dedup_key = unique_key()
    answers = [enqueue(api, key, dedup_key=dedup_key) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [202, 202, 429, 429]
    throttled = answers[2]
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.json()["status"] == "throttle event"
    # Every accepted event is counted; none refused is.
    assert incident_of(api, client, dedup_key)["alert_count"] == 2  # type: ignore[index]

    am_key = new_integration(api, client.id, kind="alertmanager", rate_per_second=0.01, burst=1)
    payload = am_webhook([am_alert(unique_key())])
    assert post_alertmanager(api, am_key["key"], payload).status_code == 200
    refused = post_alertmanager(api, am_key["key"], payload)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["Retry-After"]) >= 1
