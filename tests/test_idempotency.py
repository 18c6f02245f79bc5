"""Retries and redeliveries have one effect: Idempotency-Key at the edge, inboxes on the bus."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import nats
import pytest

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.api.notify.v1 import notify_pb2, notify_pb2_grpc
from firebreak.events import STREAM, subject_for
from tests.gateway_client import Api, eventually, incident_body
from tests.service_channel import service_channel


def test_idempotency_key_replay_returns_the_same_incident_and_creates_nothing(api: Api) -> None:
    tenant = api.new_client()
    first = api.report(tenant, idempotency_key="retry-42")
    again = api.report(tenant, idempotency_key="retry-42")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["reference"] == first.json()["reference"]
    assert api.list_ids(tenant) == [first.json()["id"]]

    api.wait_until_notified(tenant, first.json()["id"])
    timeline = api.wait_for_timeline(api.admin, first.json()["id"], 3)
    assert [e["type"] for e in timeline].count("incident.reported") == 1


def test_idempotency_keys_are_per_client(api: Api) -> None:
    first, second = api.new_client(), api.new_client()
    ours = api.report(first, idempotency_key="shared-key").json()
    theirs = api.report(second, idempotency_key="shared-key").json()
    assert ours["id"] != theirs["id"]


def test_reusing_a_key_for_a_different_report_is_a_conflict(api: Api) -> None:
    tenant = api.new_client()
    assert api.report(tenant, idempotency_key="k-1", title="One").status_code == 201
    conflict = api.report(tenant, idempotency_key="k-1", title="Another")
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert len(api.list_ids(tenant)) == 1


CONSUMERS = ("intake", "triage", "notify", "review")


async def test_redelivered_events_have_one_effect_in_every_consumer(api: Api) -> None:
    tenant = api.new_client()
    created = api.report(tenant).json()
    notified = api.wait_until_notified(tenant, created["id"])
    api.wait_for_timeline(api.admin, created["id"], 3)
    platform = api.platform

    client = await nats.connect(platform.admin_nats_url)
    try:
        js = client.jetstream()
        redelivered_before = {
            d: (await js.consumer_info(STREAM, d)).num_redelivered for d in CONSUMERS
        }
        # Every event of this incident twice more, under new message ids so that JetStream's
        # own de-duplication lets them through: only the consumers' inboxes stand in the way.
        for event_type in ("incident.reported", "incident.triaged", "notification.sent"):
            original = await js.get_last_msg(STREAM, subject_for(event_type))
            assert original.subject and original.data
            envelope = EventEnvelope.FromString(original.data)
            assert envelope.incident_id == created["id"]
            for attempt in range(2):
                headers = {"Nats-Msg-Id": f"again-{attempt}-{envelope.id}"}
                await js.publish(original.subject, original.data, headers=headers)

        for durable in CONSUMERS:
            for _ in range(200):
                info = await js.consumer_info(STREAM, durable)
                if info.num_pending == 0 and info.num_ack_pending == 0:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"{durable} did not acknowledge the redelivered events: {info}")
            # Acked at once as duplicates, not failed on a constraint and retried.
            assert info.num_redelivered == redelivered_before[durable], durable
    finally:
        await client.close()

    # The escalation the triage started (nobody is on the default schedule) runs its first
    # step once, however often triage's event came.
    types = eventually(
        lambda: (
            (kinds := [e["type"] for e in api.timeline(api.admin, created["id"])])
            and "escalation.step_reached" in kinds
            and kinds
        )
    )
    flow = ["incident.reported", "incident.triaged", "notification.sent"]
    assert [kind for kind in types if kind in flow] == flow
    assert types.count("escalation.step_reached") == 1
    assert api.incident(tenant, created["id"]) == notified
    with service_channel(platform, "notify") as channel:
        sent = notify_pb2_grpc.NotifyServiceStub(channel).ListNotifications(
            notify_pb2.ListNotificationsRequest(incident_id=created["id"], client_id=tenant.id)
        )
    assert len(sent.notifications) == 1


def test_concurrent_retries_with_one_key_create_one_incident(api: Api) -> None:
    tenant = api.new_client()
    url = f"{api.platform.gateway_url}/v1/incidents"
    headers = tenant.headers | {"Idempotency-Key": "burst"}

    def post(_: int) -> httpx.Response:
        return httpx.post(url, json=incident_body(), headers=headers, timeout=10)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(8)))
    assert {response.status_code for response in responses} == {201}
    assert len({response.json()["id"] for response in responses}) == 1
    assert len(api.list_ids(tenant)) == 1
