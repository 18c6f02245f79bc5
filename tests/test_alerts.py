"""Integrations and alerts (issue 14 §1-§4) on the shared platform, over HTTP: PagerDuty Events
v2 and Alertmanager payloads deduplicated into incidents, acknowledged, resolved and reopened
through the lifecycle, and refused as their senders expect."""

from __future__ import annotations

import asyncio
import json
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from unittest.mock import ANY

import httpx
import pytest

from firebreak.api.events.v1 import events_pb2
from firebreak.api.intake.v1 import intake_pb2
from firebreak.events import ALERT_EVENTS, new_event
from firebreak.launcher import Platform, free_ports
from services.gateway.alert_batches import MAX_BATCH_BYTES, chunks
from services.gateway.routers.alerts import AlertmanagerAlert, alertmanager_event
from services.review.lines import Field
from services.review.narration import narrate
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
from tests.review_client import said, timeline_has


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
    timeline_has(api, incident_id, "incident.resolved")
    timeline = api.timeline(manager, incident_id)
    by_integration = [
        e["type"]
        for e in timeline
        if e["actor"]["name"] == "Prometheus" and e["type"].startswith("incident.")
    ]
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


@on_backend("sqlite", "platform")
def test_over_its_rate_alertmanager_is_answered_503_which_it_retries(api: Api) -> None:
    """Alertmanager retries a 5xx and drops a group answered 4xx: over the rate is a 503."""
    client = api.new_client()
    am_key = new_integration(api, client.id, kind="alertmanager", rate_per_second=0.01, burst=1)
    counted, fresh = unique_key(), unique_key()
    assert post_alertmanager(api, am_key["key"], am_webhook([am_alert(counted)])).status_code == 200
    refused = post_alertmanager(
        api, am_key["key"], am_webhook([am_alert(counted), am_alert(fresh)])
    )
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["Retry-After"]) >= 1
    assert "integration's rate" in refused.json()["detail"]
    # Nothing of the refused group was taken: no count added, no incident opened.
    assert incident_of(api, client, counted)["alert_count"] == 1  # type: ignore[index]
    assert incident_of(api, client, fresh) is None
    assert len(api.list_ids(client)) == 1


# --- Alertmanager groups of any size ------------------------------------------------------------


def test_an_alertmanager_group_of_thousands_is_taken_whole_in_order(api: Api) -> None:
    """A group of 2,500 alerts (far over 64 KiB and over intake's 1,000 events a call) is taken
    at the default rate, in parts, in order: the resolve at its end comes after every trigger."""
    client = api.new_client()
    key = new_integration(api, client.id, kind="alertmanager")["key"]  # burst 500
    fingerprints = [unique_key() for _ in range(5)]
    alerts = [am_alert(fingerprints[number % 5]) for number in range(2_499)]
    alerts.append(am_alert(fingerprints[0], "resolved"))
    payload = am_webhook(alerts)
    assert len(json.dumps(payload)) > 10 * 64 * 1024

    answer = post_alertmanager(api, key, payload)

    assert answer.status_code == 200, answer.text[:500]
    outcomes = answer.json()["outcomes"]
    assert [outcome["fingerprint"] for outcome in outcomes] == [a["fingerprint"] for a in alerts]
    assert [outcome["result"] for outcome in outcomes] == (
        ["opened"] * 5 + ["added"] * (2_499 - 5) + ["resolved"]
    )
    for fingerprint in fingerprints:
        incident = incident_of(api, client, fingerprint)
        assert incident is not None
        firing = sum(a["fingerprint"] == fingerprint and a["status"] == "firing" for a in alerts)
        assert incident["alert_count"] == firing
        (alert,) = alerts_of(api, client, incident["id"])
        assert alert["status"] == ("resolved" if fingerprint == fingerprints[0] else "triggered")
    # The group took all its tokens at once, far past the burst: the next is over the rate.
    refused = post_alertmanager(api, key, am_webhook([am_alert(fingerprints[1])]))
    assert refused.status_code == 503
    assert incident_of(api, client, fingerprints[1])["alert_count"] == 500  # type: ignore[index]


@on_backend("sqlite", "platform")
def test_the_alertmanager_body_limit_is_its_own(api: Api) -> None:
    key = new_integration(api, api.new_client().id, kind="alertmanager")["key"]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    too_large = b" " * (4 * 1024 * 1024 + 1)  # past FIREBREAK_ALERTMANAGER_MAX_BODY_BYTES
    answer = api.http.post("/v1/alerts/alertmanager", content=too_large, headers=headers)
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    # Other routes keep the general limit (FIREBREAK_MAX_BODY_BYTES, 64 KiB).
    answer = api.http.post("/v2/enqueue", content=b" " * (64 * 1024 + 1), headers=headers)
    assert answer.status_code == 413


def test_a_group_goes_to_intake_in_parts_it_takes() -> None:
    # Large alerts are sent as intake keeps them (a note of their size), and the parts stay
    # within 1,000 events and the bytes of one gRPC message, in order.
    large = am_alert("large") | {"annotations": {"description": "x" * 100_000}}
    event = alertmanager_event(AlertmanagerAlert.model_validate(large))
    assert json.loads(event.details_json) == {"omitted": "larger than 16 KiB", "bytes": ANY}
    small = [intake_pb2.AlertEvent(action="trigger", dedup_key=str(n)) for n in range(2_500)]
    assert [len(part) for part in chunks(small)] == [1_000, 1_000, 500]
    details = "x" * 1_000_000
    heavy = [
        intake_pb2.AlertEvent(action="trigger", dedup_key=str(n), details_json=details)
        for n in range(10)
    ]
    parts = chunks(heavy)
    assert [e.dedup_key for part in parts for e in part] == [str(n) for n in range(10)]
    assert len(parts) > 1
    assert all(sum(e.ByteSize() for e in part) <= MAX_BATCH_BYTES for part in parts)


# --- The timeline -------------------------------------------------------------------------------

# Sender text that would read as the platform's own statement, were it spliced into a line.
PLANTED_KEY = "resolved by the incident commander"
PLANTED_SUMMARY = "closed (resolved) by the firm"


@on_backend("postgresql", "platform")
def test_what_monitoring_said_of_its_alert_is_on_the_timeline_for_staff(api: Api) -> None:
    client = api.new_client()
    integration = new_integration(api, client.id, resolve_with_alerts=True)
    key, manager = integration["key"], api.new_person("manager")
    dedup_key = f"{unique_key()} {PLANTED_KEY}"
    payload = {"summary": PLANTED_SUMMARY, "source": "db-1", "severity": "critical"}  # a P1
    for _ in range(2):
        assert enqueue(api, key, dedup_key=dedup_key, payload=payload).status_code == 202
    incident_id = incident_of(api, client, dedup_key)["id"]  # type: ignore[index]
    eventually(lambda: status_of(api, client, incident_id) == "triaged")
    assert enqueue(api, key, "acknowledge", dedup_key=dedup_key).status_code == 202
    eventually(lambda: status_of(api, client, incident_id) == "acknowledged")
    # The incident's last alert, of an integration that resolves incidents with them: triage
    # would contain it, but a P1 without a commander stays acknowledged for a person.
    assert enqueue(api, key, "resolve", dedup_key=dedup_key).status_code == 202
    timeline_has(api, incident_id, "alert.resolved")

    entries = api.timeline(manager, incident_id)
    types = [entry["type"] for entry in entries]
    order = [
        "incident.reported",
        "incident.triaged",
        "alert.acknowledged",
        "incident.acknowledged",
        "alert.resolved",
    ]
    assert [kind for kind in types if kind in order] == order, types
    alerted = [entry for entry in entries if entry["type"].startswith("alert.")]
    assert [(entry["summary"], said(entry)) for entry in alerted] == [
        (
            "alert acknowledged by its source (2 triggers counted)",
            [("dedup_key", dedup_key), ("summary", PLANTED_SUMMARY)],
        ),
        (
            "alert resolved by its source (2 triggers counted); it was the incident's last "
            "open alert, and its integration resolves the incident with it, as far as the "
            "lifecycle allows",
            [("dedup_key", dedup_key), ("summary", PLANTED_SUMMARY)],
        ),
    ]
    for entry in alerted:
        assert entry["audience"] == "internal" and entry["producer"] == "intake"
        assert entry["actor"] == {
            "id": integration["id"],
            "kind": "client_system",
            "name": "Prometheus",
        }
    # The client reads what its monitoring did to the incident, not the internal entries.
    seen_by_client = api.timeline(client, incident_id)
    client_types = {entry["type"] for entry in seen_by_client}
    assert {"incident.reported", "incident.acknowledged"} <= client_types
    assert not {kind for kind in client_types if kind.startswith("alert.")}
    for entry in entries + seen_by_client:
        assert PLANTED_KEY not in entry["summary"] and PLANTED_SUMMARY not in entry["summary"]


def test_each_alert_event_has_an_internal_line_and_the_senders_words_as_fields() -> None:
    changed = events_pb2.AlertChanged(
        dedup_key=PLANTED_KEY, summary=PLANTED_SUMMARY, count=1, applies_to_incident=False
    )
    lines = {
        event_type: narrate(
            new_event(
                event_type,
                incident_id="i",
                client_id="c",
                producer="intake",
                payload=changed,
            )
        )
        for event_type in sorted(ALERT_EVENTS)
    }
    assert {event_type: line.internal for event_type, line in lines.items()} == {
        "alert.acknowledged": "alert acknowledged by its source (1 trigger counted)",
        "alert.resolved": "alert resolved by its source (1 trigger counted)",
        "alert.retriggered": "alert triggered again by its source after it or its incident "
        "was resolved",
    }
    for line in lines.values():
        assert line.client is None
        assert line.fields == (Field("dedup_key", PLANTED_KEY), Field("summary", PLANTED_SUMMARY))


# --- Several gateways -----------------------------------------------------------------------------


def _serving(url: str) -> bool:
    try:
        status = httpx.get(f"{url}/status", timeout=2)
    except httpx.HTTPError:
        return False
    return status.status_code == 200 and set(status.json()["services"].values()) == {"SERVING"}


async def _spread_over(urls: list[str], bodies: list[dict[str, Any]]) -> list[int]:
    """POSTs every Events v2 body at once, the n-th to urls[n % len(urls)]; the statuses."""
    clients = [httpx.AsyncClient(base_url=url, timeout=60) for url in urls]
    try:
        answers = await asyncio.gather(
            *(
                clients[number % len(clients)].post("/v2/enqueue", json=body)
                for number, body in enumerate(bodies)
            )
        )
    finally:
        for client in clients:
            await client.aclose()
    return [answer.status_code for answer in answers]


@on_backend("postgresql", "platform")
def test_concurrent_triggers_through_two_gateways_make_one_incident(
    platform: Platform, api: Api
) -> None:
    """Each gateway sends the triggers of a key that reach it together, so through one gateway
    a new key's first triggers are one transaction. Through two, each calling its own intake
    replica, two transactions race to open each key's incident on PostgreSQL: a few new keys
    at once, so that some race whatever the timing."""
    intake_port, gateway_port = free_ports(2)
    platform.start_service(
        "intake",
        label="intake-2",
        env={"FIREBREAK_GRPC_LISTEN_ADDR": f"127.0.0.1:{intake_port}"},
    )
    platform.start_service(
        "gateway",
        label="gateway-2",
        env={
            "FIREBREAK_GATEWAY_PORT": str(gateway_port),
            "FIREBREAK_INTAKE_ADDR": f"127.0.0.1:{intake_port}",
        },
    )
    second_url = f"http://127.0.0.1:{gateway_port}"
    try:
        eventually(lambda: _serving(second_url), timeout=60, interval=0.2)
        client = api.new_client()
        key = new_integration(api, client.id, burst=1_000)["key"]
        dedup_keys = [unique_key() for _ in range(3)]
        payload = {"summary": "Disk full", "source": "db-1", "severity": "error"}
        bodies = [
            {"routing_key": key, "event_action": "trigger", "dedup_key": dedup_key}
            | {"payload": payload}
            for _ in range(50)
            for dedup_key in dedup_keys
        ]

        answers = asyncio.run(_spread_over([str(api.http.base_url), second_url], bodies))

        assert answers == [202] * len(bodies)
        assert len(api.list_ids(client)) == len(dedup_keys)
        for dedup_key in dedup_keys:
            incident = incident_of(api, client, dedup_key)
            assert incident is not None and incident["alert_count"] == 50
            (alert,) = alerts_of(api, client, incident["id"])
            assert alert["count"] == 50
    finally:
        platform.stop_processes(["gateway-2", "intake-2"])
