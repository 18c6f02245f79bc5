"""An event that names another client than the incident it changes belongs to is forged or
corrupt: every consumer that knows the incident parks it (reason client_mismatch, an ERROR
line, the dead-letter metric) and applies nothing; an event of a client's own incident is
applied as ever."""

from __future__ import annotations

import asyncio

import nats

from firebreak.api.events.v1 import events_pb2
from firebreak.events import INCIDENT_REPORTED, new_event, subject_for
from firebreak.launcher import Platform
from tests.gateway_client import Api, eventually
from tests.test_dead_letters import ADMIN_ROUTE, listed


async def publish_as_admin(platform: Platform, event: events_pb2.EventEnvelope) -> int:
    """What a forger who could publish would send; the stream sequence it got."""
    connection = await nats.connect(platform.admin_nats_url)
    try:
        ack = await connection.jetstream().publish(
            subject_for(event.type), event.SerializeToString(), headers={"Nats-Msg-Id": event.id}
        )
        return int(ack.seq)
    finally:
        await connection.close()


def test_an_event_naming_another_client_for_a_known_incident_is_parked_not_applied(
    platform: Platform, api: Api
) -> None:
    owner, other = api.new_client(), api.new_client("Other LLP")
    created = api.report(owner)
    assert created.status_code == 201, created.text
    incident = created.json()
    api.wait_until_notified(owner, incident["id"])

    forged = new_event(
        INCIDENT_REPORTED,
        incident_id=incident["id"],
        client_id=other.id,
        producer="forger",
        payload=events_pb2.IncidentReported(
            reference="INC-FORGED", title="Forged", impact="extensive", urgency="critical"
        ),
    )
    sequence = asyncio.run(publish_as_admin(platform, forged))

    def parked() -> dict[str, str]:
        found = {
            item["service"]: item["reason"]
            for item in listed(api)
            if item["stream_sequence"] == sequence
        }
        # Every consumer of reports that knows the incident: triage and review (evidence learns
        # of incidents from their triage).
        return found if {"triage", "review"} <= set(found) else {}

    assert set(eventually(parked).values()) == {"client_mismatch"}
    # A replay is no way around the check: it stays parked, saying why.
    [triage_letter] = [
        item for item in listed(api, service="triage") if item["stream_sequence"] == sequence
    ]
    replay = api.http.post(
        f"{ADMIN_ROUTE}/triage/{triage_letter['id']}/replay", headers=api.admin.headers
    )
    assert replay.status_code == 409, replay.text
    assert "belongs to client" in replay.text
    after = api.incident(api.admin, incident["id"])
    assert after["client_id"] == owner.id and after["title"] == incident["title"]
    assert after["priority"] == api.incident(owner, incident["id"])["priority"]
    timeline = api.timeline(api.admin, incident["id"])
    assert forged.id not in {entry["event_id"] for entry in timeline}
    assert [e["type"] for e in timeline].count("incident.reported") == 1
    # Nothing reached the other client either.
    assert incident["id"] not in api.list_ids(other)
