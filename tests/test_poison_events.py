"""Known poison (issue 12 §3): events that would fail the same way on every delivery are handled
once, or parked as dead letters at once, never retried forever. Real consumers, a real
nats-server, each real database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from nats.aio.client import Client as NATS
from sqlalchemy import Column, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak import bus
from firebreak.api.events.v1 import events_pb2
from firebreak.consumer import DeliveryPolicy, EventConsumer, Handler, define_inbox_table
from firebreak.database import create_engine, create_schema, reading
from firebreak.dead_letters import DeadLetters, define_dead_letter_table
from firebreak.events import (
    INCIDENT_DECLINED,
    INCIDENT_REPORTED,
    INCIDENT_TRIAGED,
    PAYLOAD_FIELDS,
    STREAM,
    MalformedEvent,
    new_event,
    parse_event,
    subject_for,
)
from firebreak.outbox import Outbox, define_outbox_table
from services.evidence import handlers as evidence_handlers
from services.evidence import models as evidence_models
from services.triage import models as triage_models
from services.triage.handlers import build_handlers
from services.triage.playbooks import load_playbooks
from services.triage.policy import load_response_policy
from services.triage.service import Rules
from tests.conftest import BACKENDS
from tests.test_outbox_and_inbox import run_consumer_until_settled

RULES = Rules(policy=load_response_policy(None), playbooks=load_playbooks(None))


def database_url(request: pytest.FixtureRequest, tmp_path: Path, label: str) -> str:
    if request.param == "postgresql":
        make_database: Callable[[str], str] = request.getfixturevalue("postgres")
        return make_database(label)
    return f"sqlite+aiosqlite:///{tmp_path / f'{label}.db'}"


@pytest.fixture(params=BACKENDS)
async def triage_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url(request, tmp_path, "triage"))
    await create_schema(engine, triage_models.metadata)
    yield engine
    await engine.dispose()


@pytest.fixture(params=BACKENDS)
async def evidence_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url(request, tmp_path, "evidence"))
    await create_schema(engine, evidence_models.metadata)
    yield engine
    await engine.dispose()


def triage_consumer(engine: AsyncEngine) -> EventConsumer:
    outbox = Outbox(engine, triage_models.outbox)
    return EventConsumer(
        durable="triage",
        handlers=build_handlers(outbox=outbox, rules=RULES, instance_id="triage-test"),
        outbox=outbox,
        inbox=triage_models.inbox,
        batch_size=16,
        stream=bus.stream_config(),
        dead_letters=DeadLetters(service="triage", engine=engine, table=triage_models.dead_letters),
    )


def reported(
    incident_id: str, *, impact: str = "minor", urgency: str = "low", client_id: str = "client-1"
) -> events_pb2.EventEnvelope:
    return new_event(
        INCIDENT_REPORTED,
        incident_id=incident_id,
        client_id=client_id,
        producer="intake",
        payload=events_pb2.IncidentReported(
            reference="INC-2026-000001",
            title="Laptop stolen",
            type="security_breach",
            impact=impact,
            urgency=urgency,
        ),
    )


async def publish(client: NATS, *events: events_pb2.EventEnvelope) -> None:
    for event in events:
        await client.jetstream().publish(
            subject_for(event.type), event.SerializeToString(), headers={"Nats-Msg-Id": event.id}
        )


async def assert_nothing_redelivered(client: NATS, durable: str) -> None:
    info = await client.jetstream().consumer_info(STREAM, durable)
    assert info.num_pending == 0 and info.num_ack_pending == 0
    assert info.num_redelivered == 0, "an event failed and came again"


async def rows(engine: AsyncEngine, table: Table) -> list[dict[str, object]]:
    async with reading(engine) as connection:
        return [dict(row._mapping) for row in await connection.execute(select(table))]


async def triaged_events(engine: AsyncEngine) -> list[events_pb2.IncidentTriaged]:
    outbox = triage_models.outbox
    async with reading(engine) as connection:
        payloads = await connection.execute(
            select(outbox.c.payload).where(outbox.c.subject == subject_for(INCIDENT_TRIAGED))
        )
        return [events_pb2.EventEnvelope.FromString(p).incident_triaged for p in payloads.scalars()]


# --- Triage: an impact or urgency it does not know ------------------------------------------


def test_an_unknown_impact_or_urgency_counts_as_the_most_severe_and_the_rationale_says_so() -> None:
    policy = RULES.policy
    unknown_impact = policy.classify("catastrophic", "low")
    assert (unknown_impact.impact, unknown_impact.urgency) == ("extensive", "low")
    assert unknown_impact.priority == policy.priority("extensive", "low")
    assert unknown_impact.rationale == (
        "impact 'catastrophic' is unknown, so taken as extensive; "
        "impact extensive, urgency low: P3 by the firm's matrix"
    )

    both = policy.classify("", "asap")
    assert (both.impact, both.urgency, both.priority) == ("extensive", "critical", "P1")
    assert "impact '' is unknown" in both.rationale
    assert "urgency 'asap' is unknown" in both.rationale

    known = policy.classify("minor", "low")
    assert known.rationale == "impact minor, urgency low: P4 by the firm's matrix"


def test_an_unknown_value_is_quoted_short_and_without_control_characters() -> None:
    rationale = RULES.policy.classify("x\x00" * 100, "low").rationale
    assert "\x00" not in rationale  # PostgreSQL refuses a NUL in text
    # Its first 40 characters, escaped.
    assert rationale.startswith("impact '" + "x\\x00" * 20 + "'… is unknown")


async def test_triage_triages_a_report_whose_impact_or_urgency_it_does_not_know(
    triage_engine: AsyncEngine, client: NATS
) -> None:
    # Longer than the impact column too: what is stored is the value triage decided on.
    odd = reported(str(uuid.uuid4()), impact="catastrophic-beyond-the-taxonomy", urgency="low")
    fine = reported(str(uuid.uuid4()), impact="minor", urgency="weekday")
    await publish(client, odd, fine)
    await run_consumer_until_settled(triage_consumer(triage_engine), client, "triage")

    await assert_nothing_redelivered(client, "triage")
    decisions = {
        row["incident_id"]: row for row in await rows(triage_engine, triage_models.decisions)
    }
    assert decisions[odd.incident_id]["impact"] == "extensive"
    assert decisions[odd.incident_id]["priority"] == "P3"
    assert "impact 'catastrophic-beyond-the-taxonomy' is unknown" in str(
        decisions[odd.incident_id]["rationale"]
    )
    assert (decisions[fine.incident_id]["urgency"], decisions[fine.incident_id]["priority"]) == (
        "critical",
        "P3",
    )
    responses = {
        row["incident_id"]: row for row in await rows(triage_engine, triage_models.responses)
    }
    assert responses[odd.incident_id]["impact"] == "extensive"
    assert responses[fine.incident_id]["urgency"] == "critical"
    # Responders and the timeline are told why, with the incident's state.
    triaged = await triaged_events(triage_engine)
    assert len(triaged) == 2
    odd_triaged = next(t for t in triaged if t.state.impact == "extensive")
    assert odd_triaged.impact == "extensive" and odd_triaged.priority == "P3"
    assert "is unknown, so taken as extensive" in odd_triaged.rationale


# --- A second incident.reported for a known incident ----------------------------------------


async def test_triage_ignores_a_second_report_of_an_incident_it_triaged(
    triage_engine: AsyncEngine, client: NATS
) -> None:
    incident_id = str(uuid.uuid4())
    first = reported(incident_id, impact="minor", urgency="low")
    # The same incident under a new event id (replayed, or doubled upstream): the inbox does
    # not know it, and the decision and response rows exist already.
    again = reported(incident_id, impact="extensive", urgency="critical")
    await publish(client, first)
    await run_consumer_until_settled(triage_consumer(triage_engine), client, "triage")
    await publish(client, again)
    await run_consumer_until_settled(triage_consumer(triage_engine), client, "triage")

    await assert_nothing_redelivered(client, "triage")
    decisions = await rows(triage_engine, triage_models.decisions)
    assert [(row["incident_id"], row["priority"]) for row in decisions] == [(incident_id, "P4")]
    assert len(await rows(triage_engine, triage_models.responses)) == 1
    tasks = await rows(triage_engine, triage_models.tasks)
    assert len(tasks) == len(RULES.playbooks["security_breach"])
    assert [t.priority for t in await triaged_events(triage_engine)] == ["P4"]
    # Both deliveries are done with: the second is not tried again later.
    assert len(await rows(triage_engine, triage_models.inbox)) == 2


def state_change(
    event_type: str, incident_id: str, *, version: int, status: str
) -> events_pb2.EventEnvelope:
    payload = getattr(events_pb2.EventEnvelope(), PAYLOAD_FIELDS[event_type])
    payload.state.CopyFrom(events_pb2.ResponseState(version=version, status=status))
    return new_event(
        event_type,
        incident_id=incident_id,
        client_id="client-1",
        producer="triage",
        payload=payload,
    )


async def test_evidence_learns_an_incident_once_however_often_it_is_triaged(
    evidence_engine: AsyncEngine, client: NATS
) -> None:
    incident_id = str(uuid.uuid4())
    consumer = EventConsumer(
        durable="evidence",
        handlers=evidence_handlers.HANDLERS,
        outbox=Outbox(evidence_engine, evidence_models.outbox),
        inbox=evidence_models.inbox,
        batch_size=16,
        stream=bus.stream_config(),
    )

    def triaged(incident: str) -> events_pb2.EventEnvelope:
        return state_change(INCIDENT_TRIAGED, incident, version=1, status="triaged")

    declined = state_change(INCIDENT_DECLINED, incident_id, version=2, status="declined")
    await publish(client, triaged(incident_id), declined)
    await run_consumer_until_settled(consumer, client, "evidence")
    # The triage again under a new event id, alone and then in a batch with another incident's.
    await publish(client, triaged(incident_id))
    await run_consumer_until_settled(consumer, client, "evidence")
    other = str(uuid.uuid4())
    await publish(client, triaged(incident_id), triaged(other))
    await run_consumer_until_settled(consumer, client, "evidence")

    await assert_nothing_redelivered(client, "evidence")
    known = {
        row["incident_id"]: row["status"]
        for row in await rows(evidence_engine, evidence_models.known_incidents)
    }
    # Triaged again, it does not go back to "triaged": the status it reached stands.
    assert known == {incident_id: "declined", other: "triaged"}


# --- Ids longer than their columns ----------------------------------------------------------


def too_long(event: events_pb2.EventEnvelope, field: str) -> events_pb2.EventEnvelope:
    spoilt = events_pb2.EventEnvelope()
    spoilt.CopyFrom(event)
    if field == "actor.id":
        spoilt.actor.id = "a" * 65
    else:
        setattr(spoilt, field, "x" * 37)
    return spoilt


@pytest.mark.parametrize(
    ("field", "complaint"),
    [
        ("id", "event id 'x{37}' is not a UUID"),
        ("incident_id", "incident_id of event .* is longer than 36"),
        ("client_id", "client_id of event .* is longer than 36"),
        ("actor.id", "actor.id of event .* is longer than 64"),
    ],
)
def test_an_event_whose_ids_no_column_holds_is_malformed(field: str, complaint: str) -> None:
    event = too_long(reported(str(uuid.uuid4())), field)
    with pytest.raises(MalformedEvent, match=complaint):
        parse_event(event.SerializeToString(), subject=subject_for(INCIDENT_REPORTED))


def test_event_ids_must_be_uuids() -> None:
    event = reported(str(uuid.uuid4()))
    event.id = "not-a-uuid"
    with pytest.raises(MalformedEvent, match="is not a UUID"):
        parse_event(event.SerializeToString(), subject=subject_for(INCIDENT_REPORTED))


async def test_a_consumer_parks_events_whose_ids_are_too_long_and_carries_on(
    triage_engine: AsyncEngine, client: NATS
) -> None:
    good = reported(str(uuid.uuid4()))
    spoilt = [
        too_long(reported(str(uuid.uuid4())), field)
        for field in ("id", "incident_id", "client_id", "actor.id")
    ]
    for event in (spoilt[0], good, *spoilt[1:]):
        await client.jetstream().publish(subject_for(event.type), event.SerializeToString())
    await run_consumer_until_settled(triage_consumer(triage_engine), client, "triage")

    await assert_nothing_redelivered(client, "triage")
    decisions = await rows(triage_engine, triage_models.decisions)
    assert [row["incident_id"] for row in decisions] == [good.incident_id]
    parked = await rows(triage_engine, triage_models.dead_letters)
    assert sorted(str(row["incident_id"]) for row in parked) == sorted(
        event.incident_id[:36] for event in spoilt
    )
    assert all(row["reason"] == "malformed" for row in parked)


# A table a test handler writes a payload value to: a column as short as the ids' ones.
metadata = MetaData()
bounded = Table("bounded", metadata, Column("value", String(36)))
bounded_outbox = define_outbox_table(metadata)
bounded_inbox = define_inbox_table(metadata)
bounded_dead_letters = define_dead_letter_table(metadata)


@pytest.mark.postgres
async def test_a_payload_value_postgresql_refuses_is_parked_not_retried(
    postgres: Callable[[str], str], client: NATS
) -> None:
    """The envelope's ids are checked on arrival; a payload's are written by handlers into many
    columns, and PostgreSQL's refusal (a data exception) is as final as a malformed message."""
    engine = create_engine(postgres("bounded"))
    await create_schema(engine, metadata)
    seen: list[str] = []

    async def write_title(connection: AsyncConnection, event: events_pb2.EventEnvelope) -> None:
        seen.append(event.id)
        await connection.execute(bounded.insert().values(value=event.incident_reported.title))

    handlers: dict[str, Handler] = {INCIDENT_REPORTED: write_title}
    consumer = EventConsumer(
        durable="bounded",
        handlers=handlers,
        outbox=Outbox(engine, bounded_outbox),
        inbox=bounded_inbox,
        batch_size=16,
        stream=bus.stream_config(),
        dead_letters=DeadLetters(service="bounded", engine=engine, table=bounded_dead_letters),
    )
    events = [reported(str(uuid.uuid4())) for _ in range(4)]
    for poison in (events[0], events[2]):  # the first comes alone, the other in a batch
        poison.incident_reported.title = "t" * 37
    try:
        await publish(client, *events)
        await run_consumer_until_settled(consumer, client, "bounded")

        await assert_nothing_redelivered(client, "bounded")
        # Each poison was tried once; an event beside one in a batch may have been applied
        # twice, the batch rolled back and applied again without the poison.
        assert sorted(set(seen)) == sorted(event.id for event in events)
        assert seen.count(events[0].id) == seen.count(events[2].id) == 1
        async with reading(engine) as connection:
            assert (
                await connection.execute(select(func.count()).select_from(bounded))
            ).scalar_one() == 2
            inboxed = (await connection.execute(select(bounded_inbox.c.event_id))).scalars().all()
            parked = (await connection.execute(select(bounded_dead_letters))).all()
        # The parked events left nothing else behind, not even an inbox row.
        assert sorted(inboxed) == sorted([events[1].id, events[3].id])
        assert sorted(row.event_id for row in parked) == sorted([events[0].id, events[2].id])
        assert {(row.reason, row.deliveries) for row in parked} == {("data_refused", 1)}
        assert all(row.error.startswith("DBAPIError") for row in parked), parked
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_deadlock_with_another_replica_is_retried_and_never_counts_towards_parking(
    postgres: Callable[[str], str], client: NATS
) -> None:
    """Two replicas applying overlapping batches can deadlock (SQLSTATE 40P01, seen in the
    scale-out chaos run): that is no fault of the event's, however often it happens."""
    engine = create_engine(postgres("deadlocks"))
    await create_schema(engine, metadata)
    calls: list[str] = []

    async def deadlocks_twice(connection: AsyncConnection, event: events_pb2.EventEnvelope) -> None:
        calls.append(event.id)
        if len(calls) <= 2:  # PostgreSQL's own error, as a real deadlock raises it
            await connection.exec_driver_sql(
                "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$"
            )
        await connection.execute(bounded.insert().values(value=event.id))

    consumer = EventConsumer(
        durable="deadlocks",
        handlers={INCIDENT_REPORTED: deadlocks_twice},
        outbox=Outbox(engine, bounded_outbox),
        inbox=bounded_inbox,
        batch_size=16,
        stream=bus.stream_config(),
        dead_letters=DeadLetters(service="deadlocks", engine=engine, table=bounded_dead_letters),
        # One failure of any other kind would park it.
        delivery=DeliveryPolicy(max_deliveries=1, retry_delay_seconds=0.05),
    )
    event = reported(str(uuid.uuid4()))
    try:
        await publish(client, event)
        await run_consumer_until_settled(consumer, client, "deadlocks")
        async with reading(engine) as connection:
            written = (await connection.execute(select(bounded.c.value))).scalars().all()
            parked = (await connection.execute(select(bounded_dead_letters))).all()
        assert (calls, written, parked) == ([event.id] * 3, [event.id], [])
    finally:
        await engine.dispose()
