"""Alerts joining incidents in the gaps between services (issue 14): a trigger that comes before
intake has seen what triage did to its incident (a resolve, by the alert's own resolve or by a
person), a trigger of a key whose incident was merged, a repeat trigger of an acknowledged
alert, and a request committed after its caller gave up.

The races are made certain, not hoped for: the resolve and the trigger in one request, or the
service that would otherwise get in first held back by a row lock on its own database (SQLite
has one writer, so those run on PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import grpc
import pytest

from firebreak.api.intake.v1 import intake_pb2
from firebreak.api.intake.v1.intake_pb2_grpc import IntakeServiceStub
from firebreak.integration_keys import hash_key
from firebreak.launcher import Platform
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
from tests.lifecycle_client import bring_to, finish_containment, ok, run
from tests.service_channel import service_channel

WARNING = {"summary": "Cache misses", "source": "cache-1", "severity": "warning"}  # a P3


def status_of(api: Api, tenant: Tenant, incident_id: str) -> str:
    """The incident's status as triage has it."""
    status: str = api.incident(tenant, incident_id)["status"]
    return status


def registry_status(api: Api, tenant: Tenant, incident_id: str) -> str:
    """The incident's status as intake's registry has it (the list reads the registry)."""
    for incident in api.pages("/v1/incidents", tenant):
        if incident["id"] == incident_id:
            status: str = incident["status"]
            return status
    raise AssertionError(f"{incident_id} is not listed")


def alerts_of(api: Api, tenant: Tenant, incident_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(
        api.http.get(f"/v1/incidents/{incident_id}/alerts", headers=tenant.headers)
    )["items"]
    return items


def lifecycle(api: Api, tenant: Tenant, incident_id: str) -> list[tuple[str, str]]:
    """The incident's lifecycle entries on its timeline: (type, who)."""
    return [
        (entry["type"], entry["actor"]["name"])
        for entry in api.timeline(tenant, incident_id)
        if entry["type"].startswith("incident.")
    ]


def wait_until_reopened(api: Api, tenant: Tenant, incident_id: str) -> list[tuple[str, str]]:
    """The lifecycle entries once the integration has reopened the incident."""
    reopened: list[tuple[str, str]] = eventually(
        lambda: (
            (entries := lifecycle(api, tenant, incident_id))
            and ("incident.reopened", "Prometheus") in entries
            and entries
        )
    )
    return reopened


@contextlib.contextmanager
def row_locked(
    platform: Platform, service: str, table: str, row_id: tuple[str, str], mode: str
) -> Iterator[None]:
    """Holds a row of the service's PostgreSQL database locked (`mode`: FOR UPDATE or FOR
    SHARE) in an open transaction until the block ends."""
    url = platform.database_urls[service].replace("postgresql+asyncpg://", "postgresql://")
    column, value = row_id
    locked, release = threading.Event(), threading.Event()

    async def hold() -> None:
        connection = await asyncpg.connect(url)
        try:
            async with connection.transaction():
                found = await connection.fetch(
                    f"SELECT 1 FROM {table} WHERE {column} = $1 {mode}", value
                )
                assert found, f"no {table} row {value}"
                locked.set()
                await asyncio.to_thread(release.wait)
        finally:
            await connection.close()

    with ThreadPoolExecutor(1) as pool:
        holding = pool.submit(asyncio.run, hold())
        while not locked.wait(0.05):
            if holding.done():
                holding.result()  # raises what went wrong
        try:
            yield
        finally:
            release.set()
            holding.result()


@contextlib.contextmanager
def intake_writes_held(platform: Platform, alert_id: str) -> Iterator[None]:
    """Intake's writes of the alert wait until the block ends: on SQLite every write of intake
    (the database's write lock, as intake's transactions take it), on PostgreSQL the alert's
    row."""
    if "intake" in platform.database_urls:
        with row_locked(platform, "intake", "alerts", ("id", alert_id), "FOR UPDATE"):
            yield
        return
    with contextlib.closing(
        sqlite3.connect(platform.var_dir / "intake.db", isolation_level=None)
    ) as database:
        database.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            database.execute("ROLLBACK")


def submit(
    platform: Platform, key: str, events: list[intake_pb2.AlertEvent], **call: Any
) -> intake_pb2.SubmitAlertsResponse:
    """Intake's SubmitAlerts called directly, as the gateway calls it for an Events v2 key."""
    request = intake_pb2.SubmitAlertsRequest(
        key_hash=hash_key(key), kind="events_v2", events=events
    )
    with service_channel(platform, "intake") as channel:
        answer: intake_pb2.SubmitAlertsResponse = IntakeServiceStub(channel).SubmitAlerts(
            request, **call
        )
    return answer


def trigger(dedup_key: str) -> intake_pb2.AlertEvent:
    return intake_pb2.AlertEvent(
        action="trigger",
        dedup_key=dedup_key,
        summary=WARNING["summary"],
        source=WARNING["source"],
        severity=WARNING["severity"],
    )


# --- A trigger before intake has seen the incident resolved --------------------------------------


def test_a_trigger_in_the_request_of_its_resolve_reopens_what_the_resolve_resolves(
    api: Api,
) -> None:
    """Resolve and trigger of one alert in one request: intake applies both before triage has
    resolved anything, so it still has the incident open when the trigger counts. Triage then
    resolves the incident with the alert's resolve, and reopens it with its trigger."""
    client = api.new_client()
    key = new_integration(
        api, client.id, kind="alertmanager", resolve_with_alerts=True, flapping_window_seconds=3600
    )["key"]
    manager = api.new_person("manager")
    fingerprint = unique_key()
    ok(post_alertmanager(api, key, am_webhook([am_alert(fingerprint, severity="warning")])))
    incident_id = incident_of(api, client, fingerprint)["id"]  # type: ignore[index]
    eventually(lambda: status_of(api, client, incident_id) == "triaged")
    finish_containment(api, manager, incident_id)

    flapped = am_webhook(
        [am_alert(fingerprint, "resolved", severity="warning"), am_alert(fingerprint)]
    )
    answer = ok(post_alertmanager(api, key, flapped))

    assert [outcome["result"] for outcome in answer["outcomes"]] == ["resolved", "added"]
    by_integration = [
        kind for kind, who in wait_until_reopened(api, manager, incident_id) if who == "Prometheus"
    ]
    assert by_integration[-4:] == [
        "incident.acknowledged",
        "incident.contained",
        "incident.resolved",
        "incident.reopened",
    ]
    assert status_of(api, client, incident_id) == "acknowledged"
    eventually(lambda: registry_status(api, client, incident_id) == "acknowledged")
    (alert,) = alerts_of(api, client, incident_id)
    assert (alert["status"], alert["count"], alert["resolved_at"]) == ("triggered", 2, None)
    assert api.incident(client, incident_id)["alert_count"] == 2


@on_backend("postgresql", "platform")
def test_a_trigger_just_after_its_resolve_reopens_the_incident_once_triage_resolves_it(
    api: Api, platform: Platform
) -> None:
    """Resolve, then trigger, in two requests, both taken before triage applies the resolve
    (held back here by a lock on the incident's response in triage's database): the trigger,
    the first of its request, is one intake would have only counted."""
    client = api.new_client()
    key = new_integration(api, client.id, resolve_with_alerts=True, flapping_window_seconds=3600)[
        "key"
    ]
    manager = api.new_person("manager")
    dedup_key = unique_key()
    assert enqueue(api, key, dedup_key=dedup_key, payload=WARNING).status_code == 202
    incident_id = incident_of(api, client, dedup_key)["id"]  # type: ignore[index]
    eventually(lambda: status_of(api, client, incident_id) == "triaged")
    finish_containment(api, manager, incident_id)

    with row_locked(platform, "triage", "responses", ("incident_id", incident_id), "FOR UPDATE"):
        assert enqueue(api, key, "resolve", dedup_key=dedup_key).status_code == 202
        assert enqueue(api, key, dedup_key=dedup_key, payload=WARNING).status_code == 202
        assert status_of(api, client, incident_id) == "triaged"  # nothing applied yet

    entries = wait_until_reopened(api, manager, incident_id)
    assert [kind for kind, _ in entries][-2:] == ["incident.resolved", "incident.reopened"]
    assert status_of(api, client, incident_id) == "acknowledged"
    (alert,) = alerts_of(api, client, incident_id)
    assert (alert["status"], alert["count"]) == ("triggered", 2)


@on_backend("postgresql", "platform")
def test_a_trigger_just_after_a_person_resolved_the_incident_reopens_it(
    api: Api, platform: Platform
) -> None:
    """A person resolves the incident; a trigger comes before intake has recorded that (its
    handler held back by a share lock on the incident's row, which a trigger's own read shares):
    counted on the incident intake still has open, it reopens it once intake records it."""
    client = api.new_client()
    key = new_integration(api, client.id, flapping_window_seconds=3600)["key"]
    manager = api.new_person("manager")
    dedup_key = unique_key()
    assert enqueue(api, key, dedup_key=dedup_key, payload=WARNING).status_code == 202
    incident_id = incident_of(api, client, dedup_key)["id"]  # type: ignore[index]
    eventually(lambda: status_of(api, client, incident_id) == "triaged")
    bring_to(api, manager, incident_id, "contained")
    eventually(lambda: registry_status(api, client, incident_id) == "contained")

    with row_locked(platform, "intake", "incidents", ("id", incident_id), "FOR SHARE"):
        ok(run(api, manager, incident_id, "resolve"))
        assert enqueue(api, key, dedup_key=dedup_key, payload=WARNING).status_code == 202
        assert registry_status(api, client, incident_id) == "contained"  # not recorded yet

    entries = wait_until_reopened(api, manager, incident_id)
    assert [kind for kind, _ in entries][-2:] == ["incident.resolved", "incident.reopened"]
    assert entries[-2][1] != "Prometheus"  # the person's resolve
    assert status_of(api, client, incident_id) == "acknowledged"
    (alert,) = alerts_of(api, client, incident_id)
    assert (alert["status"], alert["count"]) == ("triggered", 2)
    assert len(api.list_ids(client)) == 1


# --- Merged incidents ---------------------------------------------------------------------------


@on_backend("postgresql", "platform")
def test_a_trigger_of_a_merged_incident_follows_the_merge(api: Api) -> None:
    client = api.new_client()
    key = new_integration(api, client.id, flapping_window_seconds=3600)["key"]
    manager = api.new_person("manager")
    duplicate_key, survivor_key, later_key = unique_key(), unique_key(), unique_key()
    opened = {}
    for dedup_key in (duplicate_key, survivor_key, later_key):
        assert enqueue(api, key, dedup_key=dedup_key, payload=WARNING).status_code == 202
        opened[dedup_key] = incident_of(api, client, dedup_key)["id"]  # type: ignore[index]
    duplicate, survivor, later = opened[duplicate_key], opened[survivor_key], opened[later_key]
    for incident_id in opened.values():
        eventually(lambda: status_of(api, client, incident_id) == "triaged")  # noqa: B023
    bring_to(api, manager, duplicate, "merged", merge_into=survivor)
    eventually(lambda: registry_status(api, client, duplicate) == "merged")

    # Into an open incident: counted there, on a new alert of the key; none is opened.
    for _ in range(2):
        assert enqueue(api, key, dedup_key=duplicate_key, payload=WARNING).status_code == 202
    assert len(api.list_ids(client)) == 3
    counted = {alert["dedup_key"]: alert for alert in alerts_of(api, client, survivor)}
    assert sorted(counted) == sorted([survivor_key, duplicate_key])
    assert (counted[duplicate_key]["count"], counted[duplicate_key]["status"]) == (2, "triggered")
    assert api.incident(client, survivor)["alert_count"] == 3
    assert api.incident(client, duplicate)["alert_count"] == 1  # what it had: kept

    # Into one merged in turn, since resolved (within the flapping window): reopened.
    bring_to(api, manager, later, "merged", merge_into=survivor)
    bring_to(api, manager, survivor, "resolved")
    eventually(lambda: registry_status(api, client, survivor) == "resolved")
    eventually(lambda: registry_status(api, client, later) == "merged")
    assert enqueue(api, key, dedup_key=later_key, payload=WARNING).status_code == 202
    wait_until_reopened(api, manager, survivor)
    assert status_of(api, client, survivor) == "acknowledged"
    assert len(api.list_ids(client)) == 3
    counted = {alert["dedup_key"]: alert for alert in alerts_of(api, client, survivor)}
    assert counted[later_key]["count"] == 1


# --- Acknowledged alerts ------------------------------------------------------------------------


@on_backend("sqlite", "platform")
def test_a_repeat_trigger_keeps_an_acknowledged_alert_acknowledged(
    api: Api, platform: Platform
) -> None:
    client = api.new_client()
    key = new_integration(api, client.id)["key"]
    counted_alone, counted_together = unique_key(), unique_key()
    for dedup_key in (counted_alone, counted_together):
        assert enqueue(api, key, dedup_key=dedup_key, payload=WARNING).status_code == 202
        assert enqueue(api, key, "acknowledge", dedup_key=dedup_key).status_code == 202
    # A request's triggers of an open alert are counted together, in one statement ...
    answer = submit(platform, key, [trigger(counted_together), trigger(counted_together)])
    assert [outcome.result for outcome in answer.outcomes] == ["added", "added"]
    # ... and one after another event of its key in the request, alone.
    acknowledge = intake_pb2.AlertEvent(action="acknowledge", dedup_key=counted_alone)
    answer = submit(platform, key, [acknowledge, trigger(counted_alone)])
    assert [outcome.result for outcome in answer.outcomes] == ["acknowledged", "added"]
    for dedup_key, count in ((counted_together, 3), (counted_alone, 2)):
        incident = incident_of(api, client, dedup_key)
        assert incident is not None
        (alert,) = alerts_of(api, client, incident["id"])
        assert (alert["status"], alert["count"]) == ("acknowledged", count)
        assert alert["acknowledged_at"]


# --- A caller that gave up ------------------------------------------------------------------


def test_a_request_past_its_deadline_is_rolled_back_not_counted(
    api: Api, platform: Platform
) -> None:
    """Intake's transaction is held back past the call's deadline: the caller has its
    DEADLINE_EXCEEDED (the gateway answers 504, and the sender sends the events again), and
    intake, finding no time left before it commits, takes none of them."""
    client = api.new_client()
    key = new_integration(api, client.id)["key"]
    dedup_key, fresh = unique_key(), unique_key()
    assert enqueue(api, key, dedup_key=dedup_key).status_code == 202
    incident_id = incident_of(api, client, dedup_key)["id"]  # type: ignore[index]
    (alert,) = alerts_of(api, client, incident_id)

    with intake_writes_held(platform, alert["id"]):
        with pytest.raises(grpc.RpcError) as failed:
            submit(platform, key, [trigger(dedup_key), trigger(fresh)], timeout=0.5)
        assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # Intake's deadline is the call's, from when the call reached it: past by now too.
        time.sleep(0.5)

    # The sender's retry is the only one counted. (It waits for the late call's transaction:
    # on SQLite intake's one connection, on PostgreSQL the alert's lock.)
    assert enqueue(api, key, dedup_key=dedup_key).status_code == 202
    assert incident_of(api, client, dedup_key)["alert_count"] == 2  # type: ignore[index]
    assert incident_of(api, client, fresh) is None
