"""One P1, from the client's report to resolved, reopened and resolved again, over HTTP.

A client's system reports it; a responder acknowledges it and so becomes incident commander,
then hands command over to a manager with a briefing; the manager finishes the containment
tasks, contains, resolves, reopens, contains and resolves again. Each step is checked as it
happened (status, milestones, priority, version and ETag), then the staff timeline tells the
story in order with who did what, and the traces show each command request running from the
gateway through triage onto the bus, inside the incident's one trace.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from firebreak.events import SYSTEM
from firebreak.launcher import Platform
from tests.gateway_client import Api, Person, Tenant, eventually
from tests.lifecycle_client import ok, run, tasks
from tests.review_client import said

EVENTS = "firebreak.events.v1."
RUN_COMMAND = "/firebreak.triage.v1.TriageService/RunCommand"
UPDATE_TASK = "/firebreak.triage.v1.TriageService/UpdateTask"
REPORT_ROUTE = "/v1/incidents"


@dataclass
class Step:
    """One HTTP request of the walk, and the incident as a GET read it right after."""

    name: str
    method: str
    route: str  # the route template, as the gateway's server span names it
    path: str  # the path actually requested
    event: str  # the event the request records
    rpc: str  # the triage call that does it
    actor: Person
    status_code: int
    body: dict[str, Any]
    etag: str | None
    read: dict[str, Any]
    read_etag: str

    @property
    def is_command(self) -> bool:
        return self.rpc == RUN_COMMAND


@dataclass
class Walk:
    incident_id: str
    trace_id: str
    reported: dict[str, Any]  # the 201 body
    triaged: dict[str, Any]  # the incident once triaged, as staff read it
    triaged_etag: str
    client: Tenant
    client_key: dict[str, Any]  # the client system key, as GET /v1/api-keys shows it
    responder: Person
    responder_name: str
    manager: Person
    manager_name: str
    briefing: str
    steps: list[Step] = field(default_factory=list)

    def commands(self) -> list[Step]:
        return [step for step in self.steps if step.is_command]


NOTIFY_ENTRIES = {
    "notification.sent",
    "escalation.step_reached",
    "page.delivered",
    "page.failed",
    "escalation.stopped",
}


def _read(api: Api, reader: Tenant, incident_id: str) -> tuple[dict[str, Any], str]:
    response = api.http.get(f"/v1/incidents/{incident_id}", headers=reader.headers)
    assert response.status_code == 200, response.text
    return response.json(), response.headers["ETag"]


@pytest.fixture(scope="module")
def walk(api: Api) -> Walk:
    tag = uuid.uuid4().hex[:8]
    client = api.new_client(f"P1 Client {tag}")
    keys = api.http.get("/v1/api-keys", headers=client.headers)
    assert keys.status_code == 200, keys.text
    (client_key,) = keys.json()["items"]
    responder_name, manager_name = f"Rory Responder {tag}", f"Mina Manager {tag}"
    responder = api.new_person("responder", name=responder_name)
    manager = api.new_person("manager", name=manager_name)

    created = api.report(
        client,
        idempotency_key=f"p1-{tag}",
        title="Core banking API down for every branch",
        impact="extensive",
        urgency="critical",
    )
    assert created.status_code == 201, created.text
    incident_id = created.json()["id"]

    def triaged() -> tuple[dict[str, Any], str] | None:
        incident, etag = _read(api, manager, incident_id)
        return (incident, etag) if incident["status"] == "triaged" else None

    triaged_incident, triaged_etag = eventually(triaged)
    result = Walk(
        incident_id=incident_id,
        trace_id=created.json()["trace_id"],
        reported=created.json(),
        triaged=triaged_incident,
        triaged_etag=triaged_etag,
        client=client,
        client_key=client_key,
        responder=responder,
        responder_name=responder_name,
        manager=manager,
        manager_name=manager_name,
        briefing=f"Failover half done; the bank's CTO is on the bridge {tag}",
    )
    base = f"/v1/incidents/{incident_id}"
    route = "/v1/incidents/{incident_id}"

    def command(
        name: str, actor: Person, event: str, body: dict[str, Any] | None = None, **how: str
    ) -> None:
        # Every command names the version it acts on: the ETag of the last read.
        etag = result.steps[-1].read_etag if result.steps else triaged_etag
        response = run(api, actor, incident_id, name, body, if_match=etag)
        ok(response)
        read, read_etag = _read(api, manager, incident_id)
        result.steps.append(
            Step(
                name=name,
                method=how.get("method", "POST"),
                route=route + how.get("route", f"/{name}"),
                path=base + how.get("path", how.get("route", f"/{name}")),
                event=event,
                rpc=RUN_COMMAND,
                actor=actor,
                status_code=response.status_code,
                body=response.json(),
                etag=response.headers.get("ETag"),
                read=read,
                read_etag=read_etag,
            )
        )

    command("acknowledge", responder, "incident.acknowledged")
    command(
        "assign_role",
        responder,
        "incident.role_assigned",
        {"role": "incident_commander", "person_id": manager.person_id, "briefing": result.briefing},
        method="PUT",
        route="/roles/{role}",
        path="/roles/incident_commander",
    )
    for task in tasks(api, manager, incident_id):
        if task["required"] and task["phase"] == "containment" and task["status"] != "done":
            response = api.http.patch(
                f"{base}/tasks/{task['id']}",
                json={"status": "done", "note": "Done during the P1"},
                headers=manager.headers,
            )
            ok(response)
            read, read_etag = _read(api, manager, incident_id)
            result.steps.append(
                Step(
                    name="update_task",
                    method="PATCH",
                    route=route + "/tasks/{task_id}",
                    path=f"{base}/tasks/{task['id']}",
                    event="task.updated",
                    rpc=UPDATE_TASK,
                    actor=manager,
                    status_code=response.status_code,
                    body=response.json(),
                    etag=None,
                    read=read,
                    read_etag=read_etag,
                )
            )
    contain = {"summary": "Traffic failed over to the standby site"}
    resolve = {"summary": "Primary site repaired and traffic moved back"}
    command("contain", manager, "incident.contained", contain)
    command("resolve", manager, "incident.resolved", resolve)
    command("reopen", manager, "incident.reopened", {"reason": "Branches report timeouts again"})
    # Reopened is acknowledged again: no step is skipped, so it is contained before resolved.
    command("contain", manager, "incident.contained", contain)
    command("resolve", manager, "incident.resolved", resolve)
    return result


def _moment(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


# --- The steps --------------------------------------------------------------------------------

EXPECTED_STATUS = {
    "acknowledge": "acknowledged",
    "assign_role": "acknowledged",
    "update_task": "acknowledged",
}


def test_each_step_sets_status_milestones_version_and_etag(walk: Walk) -> None:
    reported = walk.reported
    assert reported["status"] == "reported"
    assert reported["client_id"] == walk.client.id

    triaged = walk.triaged
    assert triaged["status"] == "triaged"
    assert (triaged["priority"], triaged["highest_priority"]) == ("P1", "P1")
    assert walk.triaged_etag == f'"{triaged["version"]}"'
    assert triaged["version"] > reported["version"]
    assert triaged["milestones"]["triaged_at"] is not None
    assert triaged["milestones"]["acknowledged_at"] is None
    assert triaged["trace_id"] == walk.trace_id

    statuses = [step.read["status"] for step in walk.steps if step.is_command]
    assert statuses == [
        "acknowledged",  # acknowledge
        "acknowledged",  # the handover
        "contained",
        "resolved",
        "acknowledged",  # reopened
        "contained",
        "resolved",
    ]
    versions = [triaged["version"]]
    for step in walk.steps:
        assert step.status_code == 200, step.name
        incident = step.read
        assert (incident["priority"], incident["highest_priority"]) == ("P1", "P1"), step.name
        assert incident["trace_id"] == walk.trace_id
        # The ETag is the version, on the command's answer and on the next read alike.
        assert step.read_etag == f'"{incident["version"]}"', step.name
        if step.is_command:
            assert step.body["status"] == incident["status"], step.name
            assert step.body["version"] == incident["version"], step.name
            assert step.etag == f'"{step.body["version"]}"', step.name
            assert (step.body["priority"], step.body["highest_priority"]) == ("P1", "P1")
            versions.append(incident["version"])
        else:
            assert incident["version"] >= versions[-1], step.name
            assert incident["status"] == "acknowledged", step.name
    assert versions == sorted(set(versions)), "every command moves the version on"

    commands = walk.commands()
    names = [step.name for step in commands]
    assert names == [
        "acknowledge",
        "assign_role",
        "contain",
        "resolve",
        "reopen",
        "contain",
        "resolve",
    ]
    ack, handover, contain1, resolve1, reopen, contain2, resolve2 = (s.read for s in commands)
    acknowledged_at = ack["milestones"]["acknowledged_at"]

    assert acknowledged_at is not None
    assert ack["milestones"]["contained_at"] is None
    assert ack["milestones"]["resolved_at"] is None
    assert ack["roles"]["incident_commander"] == {
        "id": walk.responder.person_id,
        "name": walk.responder_name,
    }

    assert handover["roles"]["incident_commander"] == {
        "id": walk.manager.person_id,
        "name": walk.manager_name,
    }
    assert handover["milestones"] == ack["milestones"]

    assert contain1["milestones"]["contained_at"] is not None
    assert contain1["milestones"]["resolved_at"] is None
    assert contain1["milestones"]["acknowledged_at"] == acknowledged_at

    first_resolution = _moment(resolve1["milestones"]["resolved_at"])
    assert first_resolution >= _moment(contain1["milestones"]["contained_at"])

    assert reopen["milestones"]["resolved_at"] is None  # cleared by the reopen
    assert reopen["milestones"]["acknowledged_at"] == acknowledged_at
    assert reopen["milestones"]["contained_at"] == contain1["milestones"]["contained_at"]

    assert _moment(contain2["milestones"]["contained_at"]) > _moment(
        contain1["milestones"]["contained_at"]
    )
    assert contain2["milestones"]["resolved_at"] is None
    second_resolution = _moment(resolve2["milestones"]["resolved_at"])
    assert second_resolution > first_resolution
    assert resolve2["status"] == "resolved"
    assert resolve2["roles"]["incident_commander"]["id"] == walk.manager.person_id


# --- The timeline -----------------------------------------------------------------------------


def _story(api: Api, walk: Walk) -> list[dict[str, Any]]:
    """The staff timeline once the last resolution and the notification have reached review."""

    def complete() -> list[dict[str, Any]] | None:
        entries = api.timeline(walk.manager, walk.incident_id)
        types = [entry["type"] for entry in entries]
        done = types.count("incident.resolved") == 2 and "notification.sent" in types
        return entries if done else None

    entries: list[dict[str, Any]] = eventually(complete)
    return entries


def test_the_timeline_tells_the_story_in_order_with_who_did_what(api: Api, walk: Walk) -> None:
    entries = _story(api, walk)
    types = [entry["type"] for entry in entries]

    # Notify pages the responders after triage; when exactly is its own business.
    assert types.count("notification.sent") == 1
    # The escalation of a P1 started at triage and stopped at the acknowledgement.
    assert types.index("escalation.stopped") > types.index("incident.acknowledged")
    assert types.index("notification.sent") > types.index("incident.triaged")
    task_updates = sum(1 for step in walk.steps if step.event == "task.updated")
    assert task_updates >= 1
    # Notify's own entries (the notification, the escalation's steps, pages and its stop) are
    # its business: the story is the incident's.
    story = [entry for entry in entries if entry["type"] not in NOTIFY_ENTRIES]
    assert [entry["type"] for entry in story] == [
        "incident.reported",
        "incident.triaged",
        "incident.acknowledged",
        "incident.role_assigned",
        *["task.updated"] * task_updates,
        "incident.contained",
        "incident.resolved",
        "incident.reopened",
        "incident.contained",
        "incident.resolved",
    ]

    def person(who: Person, name: str) -> dict[str, str]:
        return {"id": who.person_id, "kind": who.role, "name": name}

    responder = person(walk.responder, walk.responder_name)
    manager = person(walk.manager, walk.manager_name)
    client_system = {
        "id": walk.client_key["id"],
        "kind": "client_system",
        "name": walk.client_key["owner"]["name"],
    }
    assert walk.client_key["owner"]["kind"] == "client_system"
    system = {"id": SYSTEM.id, "kind": "system", "name": SYSTEM.name}
    expected_actors = [
        client_system,  # reported
        system,  # triaged
        responder,  # acknowledged
        responder,  # handed command over
        *[manager] * task_updates,
        *[manager] * 5,  # contained, resolved, reopened, contained, resolved
    ]
    assert [entry["actor"] for entry in story] == expected_actors
    notification = entries[types.index("notification.sent")]
    assert notification["actor"] == system

    by_type = {entry["type"]: entry for entry in story}
    acknowledged = by_type["incident.acknowledged"]
    assert acknowledged["summary"] == "acknowledged, with an incident commander"
    assert said(acknowledged) == [
        ("by", walk.responder_name),
        ("incident_commander", walk.responder_name),
    ]
    # The handover names both, and carries the briefing.
    handover = by_type["incident.role_assigned"]
    assert handover["summary"] == "incident commander named"
    assert said(handover) == [
        ("person", walk.manager_name),
        ("taking_over_from", walk.responder_name),
        ("briefing", walk.briefing),
    ]
    assert "P1" in by_type["incident.triaged"]["summary"]
    assert said(by_type["incident.reopened"]) == [("reason", "Branches report timeouts again")]
    moments = [_moment(entry["occurred_at"]) for entry in entries]
    assert moments == sorted(moments)


# --- The traces -------------------------------------------------------------------------------


def _spans(platform: Platform) -> list[dict[str, Any]]:
    """Every span the platform's processes wrote, as tests/test_tracing.py reads them."""
    spans = []
    for path in (platform.var_dir / "traces").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            if line:
                spans.append(json.loads(line))
    return spans


def _named(
    spans: Iterable[dict[str, Any]], service: str, kind: str, name: str
) -> list[dict[str, Any]]:
    return [
        span
        for span in spans
        if span["service"] == f"firebreak-{service}"
        and span["kind"] == kind
        and span["name"] == name
    ]


def _ancestors(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    chain = []
    while span["parent_span_id"] in by_id:
        span = by_id[span["parent_span_id"]]
        chain.append(span)
    return chain


def _server_spans(spans: list[dict[str, Any]], walk: Walk) -> list[dict[str, Any]]:
    """The gateway's server span of each step's request, in the steps' order."""
    found = []
    for step in walk.steps:
        matches = [
            span
            for span in _named(spans, "gateway", "SERVER", f"{step.method} {step.route}")
            if span["attributes"].get("http.target") == step.path
        ]
        matches.sort(key=lambda span: span["start_ns"])
        found.append(matches)
    # A route requested twice (contain, resolve) has one span per request, in request order.
    taken: dict[str, int] = {}
    ordered = []
    for step, matches in zip(walk.steps, found, strict=True):
        index = taken.get(step.path, 0)
        taken[step.path] = index + 1
        if index >= len(matches):
            return []
        ordered.append(matches[index])
    return ordered


@dataclass(frozen=True)
class Handling:
    """The spans of one step's request, from the gateway onto the bus."""

    step: Step
    server: dict[str, Any]  # the gateway's HTTP server span
    rpc: dict[str, Any]  # triage's gRPC server span that ran the command
    publish: dict[str, Any]  # triage's PRODUCER span of the event the command recorded
    consumers: dict[str, dict[str, Any]]  # service → its CONSUMER span of that event


def _consumers(step: Step) -> set[str]:
    # Review records every event; intake's registry follows the events that carry the state.
    return {"review"} if step.event.startswith("task.") else {"review", "intake"}


def _handlings(spans: list[dict[str, Any]], walk: Walk) -> list[Handling] | None:
    """Each step's spans, or None while some are not written yet."""
    servers = _server_spans(spans, walk)
    if not servers:
        return None
    by_id = {span["span_id"]: span for span in spans}
    handlings = []
    for step, server in zip(walk.steps, servers, strict=True):
        # The triage call this request made: it ran while the request was being answered.
        rpcs = [
            span
            for span in _named(spans, "triage", "SERVER", step.rpc)
            if server["start_ns"] <= span["start_ns"] <= span["end_ns"] <= server["end_ns"]
        ]
        if len(rpcs) != 1:
            return None
        rpc = rpcs[0]
        subject = EVENTS + step.event
        publishes = [
            span
            for span in _named(spans, "triage", "PRODUCER", f"publish {subject}")
            if span["trace_id"] == rpc["trace_id"]
            and rpc in _ancestors(span, by_id)
            and span["attributes"].get("firebreak.incident_id", walk.incident_id)
            == walk.incident_id
        ]
        if len(publishes) != 1:
            return None
        publish = publishes[0]
        consumers = {
            service: [
                span
                for span in _named(spans, service, "CONSUMER", f"process {subject}")
                if span["parent_span_id"] == publish["span_id"]
            ]
            for service in _consumers(step)
        }
        if any(len(found) != 1 for found in consumers.values()):
            return None
        handlings.append(
            Handling(
                step=step,
                server=server,
                rpc=rpc,
                publish=publish,
                consumers={service: found[0] for service, found in consumers.items()},
            )
        )
    return handlings


def _wait_for_handlings(api: Api, walk: Walk) -> list[Handling]:
    _story(api, walk)  # every event has been consumed by now; its spans follow shortly

    def written() -> list[Handling] | None:
        return _handlings(_spans(api.platform), walk)

    handlings: list[Handling] = eventually(written, interval=0.2)
    return handlings


def test_each_command_request_runs_from_the_gateway_through_triage_onto_the_bus(
    api: Api, walk: Walk
) -> None:
    """For every command (and task update): the gateway's server span, triage's gRPC server
    span that ran it, the PRODUCER span of its event, and intake's and review's CONSUMER spans,
    the last three in the gRPC span's trace: the command's trace joins the bus."""
    handlings = _wait_for_handlings(api, walk)
    assert len(handlings) == len(walk.steps)
    assert {h.step.rpc for h in handlings} == {RUN_COMMAND, UPDATE_TASK}
    spans = _spans(api.platform)
    by_id = {span["span_id"]: span for span in spans}
    for handling in handlings:
        name = handling.step.name
        assert handling.server["attributes"]["http.status_code"] == 200, name
        trace_id = handling.rpc["trace_id"]
        assert handling.publish["trace_id"] == trace_id, name
        assert handling.rpc in _ancestors(handling.publish, by_id), name
        subject = EVENTS + handling.step.event
        for service, consumer in handling.consumers.items():
            assert consumer["trace_id"] == trace_id, (name, service)
            assert consumer["attributes"]["messaging.destination.name"] == subject
            assert consumer["attributes"]["messaging.consumer.group.name"] == service
            assert consumer["attributes"]["firebreak.incident_id"] == walk.incident_id
        # triage's gRPC server span hangs under the gateway's own client span of that call.
        client = by_id.get(handling.rpc["parent_span_id"] or "")
        assert client is not None, name
        assert (client["service"], client["kind"], client["name"]) == (
            "firebreak-gateway",
            "CLIENT",
            handling.step.rpc,
        )


def _whole_trace(api: Api, walk: Walk) -> list[dict[str, Any]]:
    """The incident's trace once every span in it has its parent written too (each process
    exports on its own schedule, so a child can be on disk before its parent)."""

    def whole() -> list[dict[str, Any]] | None:
        trace = [span for span in _spans(api.platform) if span["trace_id"] == walk.trace_id]
        ids = {span["span_id"] for span in trace}
        orphans = [s for s in trace if s["parent_span_id"] and s["parent_span_id"] not in ids]
        return trace if trace and not orphans else None

    trace: list[dict[str, Any]] = eventually(whole, interval=0.2)
    return trace


def test_the_incidents_one_trace_holds_every_commands_spans(api: Api, walk: Walk) -> None:
    """The issue: one trace holds the incident's whole handling, its commands' spans too.

    Each command is an HTTP request of its own, so the gateway's server span starts a trace of
    its own; what the command causes (triage's call, its event, the consumers) must still land
    in the incident's trace, the one its report started and its `trace_id` names."""
    handlings = _wait_for_handlings(api, walk)
    trace = _whole_trace(api, walk)
    by_id = {span["span_id"]: span for span in trace}
    for handling in handlings:
        name = handling.step.name
        assert handling.rpc["trace_id"] == walk.trace_id, (
            f"{name}: triage's {handling.step.rpc} span is in trace {handling.rpc['trace_id']}, "
            f"not in the incident's trace {walk.trace_id}"
        )
        for span in (handling.publish, *handling.consumers.values()):
            assert span["trace_id"] == walk.trace_id, (name, span["name"])
    # One root, the report's request, with every command's spans somewhere under it.
    roots = [span for span in trace if span["parent_span_id"] is None]
    assert [(r["service"], r["kind"], r["name"]) for r in roots] == [
        ("firebreak-gateway", "SERVER", f"POST {REPORT_ROUTE}")
    ]
    for handling in handlings:
        assert roots[0] in _ancestors(by_id[handling.rpc["span_id"]], by_id), handling.step.name


def test_each_commands_spans_in_the_incidents_trace_lead_back_to_its_request(
    api: Api, walk: Walk
) -> None:
    """From a command's HTTP request an SRE must reach the incident's trace, and back: either
    the request is answered inside the incident's trace, or the command's spans there carry a
    span link to the request's server span, which var/traces/*.jsonl must then record."""
    handlings = _wait_for_handlings(api, walk)
    by_id = {span["span_id"]: span for span in _spans(api.platform)}
    for handling in handlings:
        name = handling.step.name
        server = handling.server
        ancestors = _ancestors(by_id[handling.rpc["span_id"]], by_id)
        if server["trace_id"] == handling.rpc["trace_id"]:
            assert server in ancestors, name
            continue
        gateway_side = [span for span in ancestors if span["service"] == "firebreak-gateway"]
        links = [link for span in gateway_side for link in span.get("links", [])]
        recorded = json.dumps(links)
        assert server["trace_id"] in recorded and server["span_id"] in recorded, (
            f"{name}: the request's server span (trace {server['trace_id']}, span "
            f"{server['span_id']}) is not in the command's trace, and no gateway span of the "
            f"command there records a link to it (links recorded: {links})"
        )
