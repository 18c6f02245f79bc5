"""The response metrics from known milestone times: the pure computation checked figure by
figure, and the same through the bus, review and the HTTP API (events with fixed times published
to the platform's NATS, as the services would), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import nats

from firebreak.api.events.v1 import events_pb2
from firebreak.events import (
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_CLOSED,
    INCIDENT_CONTAINED,
    INCIDENT_REPORTED,
    INCIDENT_RESOLVED,
    PAYLOAD_FIELDS,
    new_event,
    subject_for,
    to_timestamp,
)
from services.review.metrics import compute, nearest_rank
from tests.gateway_client import Api, eventually

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
M, H = timedelta(minutes=1), timedelta(hours=1)
TARGETS = {
    "P1": (15 * M, 4 * H, 24 * H),
    "P2": (30 * M, 8 * H, 72 * H),
    "P3": (4 * H, 72 * H, 240 * H),
}


def record(priority: str, **reached: timedelta) -> dict[str, Any]:
    """An incident reported at T0, its milestones `reached` after that, its targets the SOP's."""
    acknowledge, contain, resolve = TARGETS[priority]
    values: dict[str, Any] = {
        "priority": priority,
        "status": "closed" if "closed" in reached else "acknowledged",
        "type": "service_outage",
        "detected_at": None,
        "reported_at": T0,
        "triaged_at": T0 + M,
        "acknowledge_due": T0 + acknowledge,
        "contain_due": T0 + contain,
        "resolve_due": T0 + resolve,
    }
    for name in ("acknowledged", "contained", "resolved", "closed"):
        values[f"{name}_at"] = T0 + reached[name] if name in reached else None
    return values


INCIDENTS = [
    record("P1", acknowledged=10 * M, contained=2 * H, resolved=20 * H, closed=30 * H),
    record("P1", acknowledged=20 * M, contained=5 * H, resolved=30 * H, closed=40 * H),
    record("P2", acknowledged=5 * M),  # not contained within 8 h: missed by now (T0 + 1 day)
    record("P3", acknowledged=1 * H, contained=10 * H),
]


def test_each_figure_from_known_milestone_times() -> None:
    actions = [
        {"status": "open", "due_at": T0 + 12 * H},  # overdue at T0 + 1 day
        {"status": "done", "due_at": T0},  # finished: never overdue
        {"status": "in_progress", "due_at": T0 + 48 * H},  # not due yet
        {"status": "wont_do_requested", "due_at": T0 + 1 * H},  # still pending: overdue
    ]
    deadlines = [
        {"status": "met", "late": False},
        {"status": "met", "late": True},
        {"status": "missed", "late": False},
        {"status": "not_applicable", "late": False},
        {"status": "pending", "late": False},
    ]
    found = compute(INCIDENTS, actions=actions, deadlines=deadlines, now=T0 + 24 * H)
    assert found.incidents == 4
    assert [(c.key, c.count) for c in found.by_priority] == [("P1", 2), ("P2", 1), ("P3", 1)]
    assert [(c.key, c.count) for c in found.by_status] == [("acknowledged", 2), ("closed", 2)]
    # Acknowledged after 600, 1200, 300 and 3600 s: sorted 300, 600, 1200, 3600.
    ack = found.time_to_acknowledge
    assert (ack.count, ack.mean_seconds, ack.p50_seconds, ack.p90_seconds) == (4, 1425, 600, 3600)
    contain = found.time_to_contain  # 7200, 18000, 36000
    assert (contain.count, contain.mean_seconds) == (3, 20400)
    assert (contain.p50_seconds, contain.p90_seconds) == (18000, 36000)
    resolve = found.time_to_resolve  # 72000, 108000
    assert (resolve.count, resolve.mean_seconds) == (2, 90000)
    assert (resolve.p50_seconds, resolve.p90_seconds) == (72000, 108000)
    closing = found.time_to_close  # 108000, 144000
    assert (closing.count, closing.mean_seconds) == (2, 126000)
    assert (closing.p50_seconds, closing.p90_seconds) == (108000, 144000)
    targets = {(t.priority, t.target): (t.met, t.missed, t.pending) for t in found.targets}
    assert targets == {
        ("P1", "acknowledge"): (1, 1, 0),
        ("P1", "contain"): (1, 1, 0),
        ("P1", "resolve"): (1, 1, 0),
        ("P2", "acknowledge"): (1, 0, 0),
        ("P2", "contain"): (0, 1, 0),
        ("P2", "resolve"): (0, 0, 1),
        ("P3", "acknowledge"): (1, 0, 0),
        ("P3", "contain"): (1, 0, 0),
        ("P3", "resolve"): (0, 0, 1),
    }
    assert [t.priority + " " + t.target for t in found.targets][:3] == [
        "P1 acknowledge",
        "P1 contain",
        "P1 resolve",
    ]
    assert found.overdue_actions == 2
    assert [(c.key, c.count) for c in found.deadline_outcomes] == [
        ("met", 1),
        ("met_late", 1),
        ("missed", 1),
        ("not_applicable", 1),
        ("pending", 1),
    ]


def test_nearest_rank_percentiles_are_values_that_occurred() -> None:
    assert nearest_rank([5.0], 90) == 5.0
    ten = [float(value) for value in range(1, 11)]
    assert (nearest_rank(ten, 50), nearest_rank(ten, 90), nearest_rank(ten, 100)) == (5, 9, 10)
    assert compute([], actions=[], deadlines=[], now=T0).time_to_acknowledge.count == 0


# --- Through the bus and the API ------------------------------------------------------------

REPORTED = (datetime(2026, 10, 5, 9, 0, tzinfo=UTC), datetime(2026, 10, 6, 9, 0, tzinfo=UTC))


def _state(priority: str, version: int, status: str, reported: datetime, **at: timedelta) -> Any:
    acknowledge, contain, resolve = TARGETS[priority]
    state = events_pb2.ResponseState(
        version=version,
        status=status,
        priority=priority,
        highest_priority=priority,
        type="service_outage",
        impact="extensive",
        urgency="critical",
        triaged_at=to_timestamp(reported + M),
        acknowledge_due=to_timestamp(reported + acknowledge),
        contain_due=to_timestamp(reported + contain),
        resolve_due=to_timestamp(reported + resolve),
    )
    for name, after in at.items():
        getattr(state, f"{name}_at").CopyFrom(to_timestamp(reported + after))
    return state


def history(client_id: str, priority: str, reported: datetime, **at: timedelta) -> list[Any]:
    """The events of one incident's response, at fixed times: reported (minor and low, so that
    triage's own decision pages nobody), then each milestone in `at`, each carrying the state
    after it at a version above triage's own (which review therefore never keeps)."""
    incident_id = str(uuid.uuid4())
    events = [
        new_event(
            INCIDENT_REPORTED,
            incident_id=incident_id,
            client_id=client_id,
            producer="intake",
            occurred_at=reported,
            payload=events_pb2.IncidentReported(
                reference=f"INC-METRICS-{incident_id[:6]}",
                title="Metrics fixture",
                type="service_outage",
                impact="minor",
                urgency="low",
            ),
        )
    ]
    steps = (
        (INCIDENT_ACKNOWLEDGED, "acknowledged"),
        (INCIDENT_CONTAINED, "contained"),
        (INCIDENT_RESOLVED, "resolved"),
        (INCIDENT_CLOSED, "closed"),
    )
    reached: dict[str, timedelta] = {}
    for version, (event_type, name) in enumerate(steps, start=11):
        if name not in at:
            break
        reached[name] = at[name]
        payload = getattr(events_pb2.EventEnvelope(), PAYLOAD_FIELDS[event_type])
        payload.state.CopyFrom(_state(priority, version, name, reported, **reached))
        events.append(
            new_event(
                event_type,
                incident_id=incident_id,
                client_id=client_id,
                producer="triage",
                occurred_at=reported + at[name],
                payload=payload,
            )
        )
    return events


async def _publish(url: str, events: list[Any]) -> None:
    client = await nats.connect(url)
    try:
        stream = client.jetstream()
        for event in events:
            await stream.publish(
                subject_for(event.type),
                event.SerializeToString(),
                headers={"Nats-Msg-Id": event.id},
            )
    finally:
        await client.close()


def test_the_metrics_api_from_events_with_known_times(api: Api) -> None:
    client, other = api.new_client("Metrics LLP"), api.new_client("Other Metrics LLP")
    events = history(
        client.id,
        "P1",
        REPORTED[0],
        acknowledged=10 * M,
        contained=2 * H,
        resolved=20 * H,
        closed=30 * H,
    ) + history(client.id, "P2", REPORTED[1], acknowledged=40 * M, contained=6 * H)
    asyncio.run(_publish(api.platform.admin_nats_url, events))
    params = {"from": "2026-10-01T00:00:00Z", "to": "2026-11-01T00:00:00Z", "client_id": client.id}

    def settled() -> dict[str, Any] | None:
        answer = api.http.get("/v1/reports/metrics", params=params, headers=api.admin.headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        # Every event read: P1's last (closed) and P2's last (contained), which came after its
        # triage; the incidents' count alone can be met between a report and its triage.
        done = body["time_to_close"]["count"] == 1 and body["time_to_contain"]["count"] == 2
        return body if done and body["incidents"] == 2 else None

    body = eventually(settled)
    assert body["from"] == "2026-10-01T00:00:00Z" and body["client_id"] == client.id
    assert body["by_priority"] == [{"key": "P1", "count": 1}, {"key": "P2", "count": 1}]
    assert body["time_to_acknowledge"] == {
        "count": 2,
        "mean_seconds": 1500.0,
        "p50_seconds": 600.0,
        "p90_seconds": 2400.0,
    }
    assert body["time_to_contain"] == {
        "count": 2,
        "mean_seconds": 14400.0,
        "p50_seconds": 7200.0,
        "p90_seconds": 21600.0,
    }
    assert body["time_to_resolve"]["mean_seconds"] == 72000.0
    assert body["time_to_close"]["p90_seconds"] == 108000.0
    targets = {
        (t["priority"], t["target"]): (t["met"], t["missed"], t["pending"]) for t in body["targets"]
    }
    assert targets == {
        ("P1", "acknowledge"): (1, 0, 0),
        ("P1", "contain"): (1, 0, 0),
        ("P1", "resolve"): (1, 0, 0),
        ("P2", "acknowledge"): (0, 1, 0),
        ("P2", "contain"): (1, 0, 0),
        ("P2", "resolve"): (0, 1, 0),  # due 2026-10-09, long past, never resolved
    }
    only_p2 = api.http.get(
        "/v1/reports/metrics", params=params | {"priority": "P2"}, headers=api.admin.headers
    ).json()
    assert only_p2["incidents"] == 1 and only_p2["time_to_close"]["count"] == 0

    # A client's key gets its own figures, whatever it asks for; another's is a 404.
    own = api.http.get(
        "/v1/reports/metrics",
        params={"from": params["from"], "to": params["to"]},
        headers=client.headers,
    )
    assert own.status_code == 200, own.text
    assert own.json()["incidents"] == 2
    assert (
        api.http.get("/v1/reports/metrics", params=params, headers=other.headers).status_code == 404
    )
    theirs = api.http.get(
        "/v1/reports/metrics", params={"from": params["from"]}, headers=other.headers
    ).json()
    assert theirs["incidents"] == 0

    as_csv = api.http.get(
        "/v1/reports/metrics", params=params | {"format": "csv"}, headers=client.headers
    )
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["measure", "key", "value"]
    assert ["time_to_acknowledge", "mean_seconds", "1500"] in rows
    assert ["target_resolve", "P2 missed", "1"] in rows
    bad = api.http.get("/v1/reports/metrics", params={"priority": "P9"}, headers=client.headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "priority"
