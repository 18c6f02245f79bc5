"""A consumer checks every event's client against its incident's owner (IncidentOwners); an
incident's client never changes, so an owner once committed is kept in memory: the incident's
next events cost no read of it, and a forged one is still refused. Against a real nats-server
and each real database."""

from __future__ import annotations

from nats.aio.client import Client as NATS
from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.event import listen
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak import bus
from firebreak.api.events.v1 import events_pb2
from firebreak.consumer import EventConsumer, IncidentOwners, define_inbox_table
from firebreak.database import create_schema
from firebreak.events import INCIDENT_REPORTED, new_event, subject_for
from firebreak.outbox import Outbox, define_outbox_table
from tests.test_outbox_and_inbox import engine, run_consumer_until_settled

__all__ = ["engine"]  # the fixture, each database in turn

metadata = MetaData()
outbox = define_outbox_table(metadata)
inbox = define_inbox_table(metadata)
owned = Table("owned", metadata, Column("incident_id", String(36)), Column("client_id", String(36)))


def reported(client_id: str) -> events_pb2.EventEnvelope:
    return new_event(
        INCIDENT_REPORTED,
        incident_id="inc-1",
        client_id=client_id,
        producer="test",
        payload=events_pb2.IncidentReported(title="t", impact="minor", urgency="low"),
    )


async def test_a_known_owner_costs_no_read_and_still_refuses_another_client(
    engine: AsyncEngine, client: NATS
) -> None:
    await create_schema(engine, metadata)
    applied: list[str] = []

    async def record_owner(connection: AsyncConnection, event: events_pb2.EventEnvelope) -> None:
        applied.append(event.id)
        known = select(owned.c.incident_id).where(owned.c.incident_id == event.incident_id)
        if (await connection.execute(known)).first() is None:
            await connection.execute(
                owned.insert().values(incident_id=event.incident_id, client_id=event.client_id)
            )

    consumer = EventConsumer(
        durable="owners",
        handlers={INCIDENT_REPORTED: record_owner},
        outbox=Outbox(engine, outbox),
        inbox=inbox,
        batch_size=16,
        stream=bus.stream_config(),
        owners=IncidentOwners(owned.c.incident_id, owned.c.client_id),
    )
    owner_reads: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().startswith("SELECT owned.client_id"):
            owner_reads.append(statement)

    listen(engine.sync_engine, "before_cursor_execute", note)
    js = client.jetstream()

    first, second = reported("client-1"), reported("client-1")
    for event in (first, second):
        await js.publish(subject_for(INCIDENT_REPORTED), event.SerializeToString())
    await run_consumer_until_settled(consumer, client, "owners")
    assert applied == [first.id, second.id]
    assert owner_reads  # the owner was read from the database, then kept

    reads = len(owner_reads)
    third, forged = reported("client-1"), reported("client-2")
    for event in (third, forged):
        await js.publish(subject_for(INCIDENT_REPORTED), event.SerializeToString())
    await run_consumer_until_settled(consumer, client, "owners")
    assert applied == [first.id, second.id, third.id]  # the forged event was not applied
    assert len(owner_reads) == reads  # and neither check read the owner again
