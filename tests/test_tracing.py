"""One trace per incident, across HTTP, gRPC and the bus, with every span under its true parent."""

from __future__ import annotations

import json
from typing import Any

from firebreak.launcher import Platform
from tests.gateway_client import Api, eventually


def spans_of_trace(platform: Platform, trace_id: str) -> list[dict[str, Any]]:
    spans = []
    for path in (platform.var_dir / "traces").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            span = json.loads(line)
            if span["trace_id"] == trace_id:
                spans.append(span)
    return spans


def only(spans: list[dict[str, Any]], service: str, kind: str, name: str) -> dict[str, Any]:
    matches = [
        s
        for s in spans
        if s["service"] == f"firebreak-{service}" and s["kind"] == kind and s["name"] == name
    ]
    assert len(matches) == 1, f"expected one {kind} span {name!r} from {service}: {matches}"
    return matches[0]


def test_one_trace_covers_the_incident_from_http_to_notification(api: Api) -> None:
    tenant = api.new_client()
    created = api.report(tenant).json()
    api.wait_until_notified(tenant, created["id"])
    api.wait_for_timeline(api.admin, created["id"], 3)

    reported = "firebreak.events.v1.incident.reported"
    triaged = "firebreak.events.v1.incident.triaged"
    sent = "firebreak.events.v1.notification.sent"
    rpc = "/firebreak.intake.v1.IntakeService/ReportIncident"
    expected = {
        ("gateway", "SERVER", "POST /v1/incidents"),
        ("gateway", "CLIENT", rpc),
        ("intake", "SERVER", rpc),
        ("intake", "PRODUCER", f"publish {reported}"),
        ("triage", "CONSUMER", f"process {reported}"),
        ("triage", "PRODUCER", f"publish {triaged}"),
        ("notify", "CONSUMER", f"process {triaged}"),
        ("notify", "PRODUCER", f"publish {sent}"),
        ("intake", "CONSUMER", f"process {sent}"),
        ("evidence", "CONSUMER", f"process {triaged}"),
        *(("review", "CONSUMER", f"process {subject}") for subject in (reported, triaged, sent)),
    }

    def whole_trace() -> list[dict[str, Any]] | None:
        # Each process exports on its own schedule, so a child can be on disk before its
        # parent: wait for every span we expect, and for every parent of those that arrived.
        spans = spans_of_trace(api.platform, created["trace_id"])
        seen = {(s["service"].removeprefix("firebreak-"), s["kind"], s["name"]) for s in spans}
        ids = {span["span_id"] for span in spans}
        orphans = [s for s in spans if s["parent_span_id"] and s["parent_span_id"] not in ids]
        return spans if expected <= seen and not orphans else None

    spans = eventually(whole_trace)
    by_id = {span["span_id"]: span for span in spans}
    roots = [span for span in spans if span["parent_span_id"] is None]
    assert [(r["service"], r["kind"], r["name"]) for r in roots] == [
        ("firebreak-gateway", "SERVER", "POST /v1/incidents")
    ]
    assert all(span["parent_span_id"] in by_id for span in spans if span not in roots)

    http = roots[0]
    grpc_client = only(spans, "gateway", "CLIENT", rpc)
    grpc_server = only(spans, "intake", "SERVER", rpc)
    publish_reported = only(spans, "intake", "PRODUCER", f"publish {reported}")
    triage_process = only(spans, "triage", "CONSUMER", f"process {reported}")
    publish_triaged = only(spans, "triage", "PRODUCER", f"publish {triaged}")
    notify_process = only(spans, "notify", "CONSUMER", f"process {triaged}")
    publish_sent = only(spans, "notify", "PRODUCER", f"publish {sent}")
    review_process = only(spans, "review", "CONSUMER", f"process {sent}")

    edges = [
        (grpc_client, http),
        (grpc_server, grpc_client),
        (publish_reported, grpc_server),
        (triage_process, publish_reported),
        (publish_triaged, triage_process),
        (notify_process, publish_triaged),
        (publish_sent, notify_process),
        (review_process, publish_sent),
    ]
    for child, parent in edges:
        assert child["parent_span_id"] == parent["span_id"], (child["name"], parent["name"])

    assert triage_process["attributes"]["messaging.system"] == "nats"
    assert triage_process["attributes"]["messaging.destination.name"] == reported
    assert triage_process["attributes"]["messaging.consumer.group.name"] == "triage"
    assert triage_process["attributes"]["firebreak.incident_id"] == created["id"]


def test_logs_carry_trace_ids(api: Api) -> None:
    tenant = api.new_client()
    created = api.report(tenant).json()
    api.wait_until_notified(tenant, created["id"])
    log = api.platform.var_dir / "logs" / "notify.log"
    eventually(lambda: f"trace={created['trace_id']}" in log.read_text())
