"""One incident through the real processes: gateway → intake → triage → notify → review."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from tests.gateway_client import Api

FLOW = ["incident.reported", "incident.triaged", "notification.sent"]


def test_reported_incident_is_triaged_notified_and_on_the_timeline(api: Api) -> None:
    acme = api.new_client()
    response = api.report(
        acme, impact="extensive", urgency="critical", detected_at="2026-11-26T09:10:00+00:00"
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "reported"
    assert created["priority"] is None
    assert created["client_id"] == acme.id
    assert re.fullmatch(r"INC-\d{4}-\d{6}", created["reference"])
    assert re.fullmatch(r"[0-9a-f]{32}", created["trace_id"])
    assert created["detected_at"].startswith("2026-11-26T09:10:00")

    incident = api.wait_until_notified(acme, created["id"])
    assert incident["status"] == "triaged"
    assert incident["priority"] == "P1"
    moments = [
        datetime.fromisoformat(incident[field])
        for field in ("created_at", "triaged_at", "notified_at")
    ]
    assert moments == sorted(moments)

    timeline = api.wait_for_timeline(api.admin, created["id"], len(FLOW))
    # The flow, in order; the escalation the default policy starts adds entries of its own.
    assert [entry["type"] for entry in timeline if entry["type"] in FLOW] == FLOW
    assert [e["producer"] for e in timeline if e["type"] in FLOW] == ["intake", "triage", "notify"]
    assert created["reference"] in timeline[0]["summary"]
    assert "P1" in timeline[1]["summary"]
    # The client sees its report and its triage; paging the firm's responders is internal.
    assert [entry["type"] for entry in api.timeline(acme, created["id"])] == FLOW[:2]


@pytest.mark.parametrize(
    ("impact", "urgency", "priority"),
    [
        ("extensive", "medium", "P2"),
        ("significant", "high", "P2"),
        ("moderate", "critical", "P2"),
        ("moderate", "low", "P4"),
        ("minor", "critical", "P3"),
    ],
)
def test_priority_follows_the_impact_urgency_matrix(
    api: Api, impact: str, urgency: str, priority: str
) -> None:
    tenant = api.new_client()
    created = api.report(tenant, impact=impact, urgency=urgency).json()
    assert api.wait_until_notified(tenant, created["id"])["priority"] == priority


def test_references_are_numbered_per_client(api: Api) -> None:
    first, second = api.new_client("First LLP"), api.new_client("Second LLP")
    references = [
        api.report(first).json()["reference"],
        api.report(first).json()["reference"],
        api.report(second).json()["reference"],
    ]
    numbers = [int(reference.rsplit("-", 1)[1]) for reference in references]
    assert numbers == [1, 2, 1]


def test_list_filters_and_pages_with_a_cursor(api: Api) -> None:
    tenant = api.new_client()
    created = [
        api.report(tenant, impact="minor", urgency="low", title=f"Incident {n}").json()
        for n in range(5)
    ]
    outage = api.report(tenant, type="data_loss", impact="extensive", urgency="critical").json()
    for incident in [*created, outage]:
        api.wait_until_notified(tenant, incident["id"])

    everything = api.list_ids(tenant, limit=2)
    assert everything == [outage["id"], *[c["id"] for c in reversed(created)]]
    assert api.list_ids(tenant, priority="P1") == [outage["id"]]
    assert api.list_ids(tenant, type="data_loss", status="triaged") == [outage["id"]]
    assert api.list_ids(tenant, status="reported") == []
