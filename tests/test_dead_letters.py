"""Dead letters and schema versions (issue 12 §3): poison is parked after the maximum number of
deliveries (at once when no delivery can fix it), counted, listed, replayed once its cause is
fixed, or discarded; an event of a newer schema waits for a consumer that reads it. Real
consumers against a real nats-server and each real database, a real gRPC server, and a whole
platform behind its gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import nats
import nats.js.errors
import pytest
from nats.aio.client import Client as NATS
from nats.js.api import ConsumerInfo
from prometheus_client import REGISTRY
from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak import bus
from firebreak.api.admin.v1 import dead_letters_pb2
from firebreak.api.admin.v1.dead_letters_pb2_grpc import DeadLetterServiceStub
from firebreak.api.events.v1 import events_pb2
from firebreak.consumer import DeliveryPolicy, EventConsumer, define_inbox_table
from firebreak.database import create_engine, create_schema, reading
from firebreak.dead_letters import DeadLetters, define_dead_letter_table
from firebreak.dead_letters.server import serve_dead_letters
from firebreak.events import (
    ATTACHMENT_RECEIVED,
    INCIDENT_REPORTED,
    INCIDENT_TRIAGED,
    SCHEMA_VERSION,
    STREAM,
    new_event,
    subject_for,
)
from firebreak.grpc_server import create_server
from firebreak.launcher import Platform
from firebreak.outbox import Outbox, define_outbox_table
from tests.conftest import BACKENDS, start_platform
from tests.gateway_client import Api, eventually
from tests.test_outbox_and_inbox import reported_event, run_consumer_until_settled

metadata = MetaData()
outbox_table = define_outbox_table(metadata)
inbox_table = define_inbox_table(metadata)
dead_letter_table = define_dead_letter_table(metadata)
effects = Table("effects", metadata, Column("event_id", String(36)))

MAX_DELIVERIES = 3
FAST = DeliveryPolicy(
    max_deliveries=MAX_DELIVERIES, retry_delay_seconds=0.01, newer_schema_delay_seconds=0.01
)
REPORTED = subject_for(INCIDENT_REPORTED)


@pytest.fixture(params=BACKENDS)
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "postgresql":
        make_database: Callable[[str], str] = request.getfixturevalue("postgres")
        url = make_database("dead_letters")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'dead_letters.db'}"
    engine = create_engine(url)
    await create_schema(engine, metadata)
    yield engine
    await engine.dispose()


class Flaky:
    """A handler that writes its effect, then fails for the events in `broken_for`, each
    time saying which attempt it was (so that a recorded error tells which failure it was)."""

    def __init__(self, *broken_for: str) -> None:
        self.broken_for = set(broken_for)
        self.calls: list[str] = []

    async def __call__(self, connection: AsyncConnection, event: events_pb2.EventEnvelope) -> None:
        self.calls.append(event.id)
        await connection.execute(effects.insert().values(event_id=event.id))
        if event.id in self.broken_for:
            attempt = self.calls.count(event.id)
            raise RuntimeError(f"cannot handle {event.id} yet (attempt {attempt})")


def consumer_for(
    engine: AsyncEngine, durable: str, handler: Flaky, delivery: DeliveryPolicy = FAST
) -> EventConsumer:
    return EventConsumer(
        durable=durable,
        handlers={INCIDENT_REPORTED: handler, INCIDENT_TRIAGED: handler},
        outbox=Outbox(engine, outbox_table),
        inbox=inbox_table,
        batch_size=16,
        stream=bus.stream_config(),
        dead_letters=DeadLetters(service=durable, engine=engine, table=dead_letter_table),
        delivery=delivery,
    )


async def run_consumer_until(
    consumer: EventConsumer,
    client: NATS,
    durable: str,
    done: Callable[[ConsumerInfo], bool],
) -> None:
    """Runs the consumer until its durable consumer's state satisfies `done`."""
    js = client.jetstream()
    stopping = asyncio.Event()
    task = asyncio.create_task(consumer.run(client, stopping))
    info = None
    try:
        for _ in range(300):
            await asyncio.sleep(0.05)
            try:
                info = await js.consumer_info(STREAM, durable)
            except nats.js.errors.NotFoundError:
                continue
            if done(info):
                return
        pytest.fail(f"{durable} never got there: {info}")
    finally:
        stopping.set()
        await task


def deliveries(info: ConsumerInfo) -> int:
    """How many deliveries the durable consumer made, redeliveries included."""
    return (info.delivered.consumer_seq or 0) if info.delivered else 0


async def rows_of(engine: AsyncEngine, table: Table) -> list[dict[str, Any]]:
    async with reading(engine) as connection:
        return [dict(row._mapping) for row in await connection.execute(select(table))]


async def event_ids(engine: AsyncEngine, table: Table) -> list[str]:
    return sorted(str(row["event_id"]) for row in await rows_of(engine, table))


def parked_total(service: str, reason: str) -> float:
    labels = {"service": service, "reason": reason}
    return REGISTRY.get_sample_value("firebreak_dead_letters_total", labels) or 0.0


async def publish(client: NATS, subject: str, data: bytes, message_id: str = "") -> int:
    """Publishes to the stream; returns the message's stream sequence."""
    headers = {"Nats-Msg-Id": message_id} if message_id else None
    return (await client.jetstream().publish(subject, data, headers=headers)).seq


# --- Parking --------------------------------------------------------------------------------


async def test_a_message_whose_handler_keeps_failing_is_parked_after_max_deliveries(
    engine: AsyncEngine, client: NATS, caplog: pytest.LogCaptureFixture
) -> None:
    poison, fine = reported_event("inc-poison"), reported_event("inc-fine")
    handler = Flaky(poison.id)
    sequence = await publish(client, REPORTED, poison.SerializeToString(), poison.id)
    await publish(client, REPORTED, fine.SerializeToString(), fine.id)
    before = parked_total("parking", "handler_failed")

    with caplog.at_level(logging.ERROR, logger="firebreak.dead_letters.store"):
        await run_consumer_until_settled(
            consumer_for(engine, "parking", handler), client, "parking"
        )

    assert handler.calls.count(poison.id) == MAX_DELIVERIES
    assert handler.calls.count(fine.id) == 1
    [parked] = await rows_of(engine, dead_letter_table)
    assert {key: parked[key] for key in ("stream_sequence", "subject", "event_id")} == {
        "stream_sequence": sequence,
        "subject": REPORTED,
        "event_id": poison.id,
    }
    assert (parked["event_type"], parked["incident_id"], parked["client_id"]) == (
        INCIDENT_REPORTED,
        "inc-poison",
        "client-1",
    )
    assert (parked["reason"], parked["deliveries"]) == ("handler_failed", MAX_DELIVERIES)
    assert parked["error"] == f"RuntimeError: cannot handle {poison.id} yet (attempt 3)"
    # Kept as it came, to be replayed: the envelope and its headers.
    assert events_pb2.EventEnvelope.FromString(parked["payload"]) == poison
    assert json.loads(str(parked["headers"]))["Nats-Msg-Id"] == poison.id
    # Its failed attempts left nothing behind; the event beside it was applied.
    assert await event_ids(engine, effects) == [fine.id]
    assert await event_ids(engine, inbox_table) == [fine.id]
    assert parked_total("parking", "handler_failed") == before + 1
    # Terminated: JetStream offers it no more.
    info = await client.jetstream().consumer_info(STREAM, "parking")
    assert info.num_pending == 0 and info.num_ack_pending == 0
    [logged] = [record.getMessage() for record in caplog.records if "parked" in record.message]
    assert f"stream sequence {sequence} on {REPORTED} (event {poison.id})" in logged


async def test_a_message_no_delivery_can_fix_is_parked_at_once(
    engine: AsyncEngine, client: NATS
) -> None:
    handler = Flaky()
    garbage = await publish(client, REPORTED, b"\xff\x00 not protobuf")
    misrouted = reported_event("inc-misrouted")
    on_wrong_subject = await publish(
        client, subject_for(INCIDENT_TRIAGED), misrouted.SerializeToString()
    )
    # A NUL in text: PostgreSQL would refuse to store it as it is.
    odd = reported_event("inc-odd")
    odd.type = "incident.reported\x00"
    odd_type = await publish(client, REPORTED, odd.SerializeToString())
    before = parked_total("strict", "malformed")

    await run_consumer_until_settled(consumer_for(engine, "strict", handler), client, "strict")

    assert handler.calls == []
    parked = {row["stream_sequence"]: row for row in await rows_of(engine, dead_letter_table)}
    assert set(parked) == {garbage, on_wrong_subject, odd_type}
    assert all(row["reason"] == "malformed" and row["deliveries"] == 1 for row in parked.values())
    assert parked[garbage]["event_id"] == ""
    assert str(parked[garbage]["error"]).startswith("MalformedEvent: not an EventEnvelope")
    assert (parked[on_wrong_subject]["event_id"], parked[on_wrong_subject]["error"]) == (
        misrouted.id,
        f"MalformedEvent: incident.reported arrived on {subject_for(INCIDENT_TRIAGED)}",
    )
    assert parked[odd_type]["event_type"] == "incident.reported\\x00"
    assert parked_total("strict", "malformed") == before + 3


# --- Newer schema versions ------------------------------------------------------------------


async def test_an_event_of_a_newer_schema_waits_unparked_until_a_consumer_reads_it(
    engine: AsyncEngine, client: NATS, caplog: pytest.LogCaptureFixture
) -> None:
    future = reported_event("inc-future")
    future.schema_version = SCHEMA_VERSION + 1
    sequence = await publish(client, REPORTED, future.SerializeToString(), future.id)
    handler = Flaky()
    durable = "rolling"

    with caplog.at_level(logging.DEBUG, logger="firebreak.consumer"):
        # Offered again and again, well past the maximum deliveries, never parked.
        await run_consumer_until(
            consumer_for(engine, durable, handler),
            client,
            durable,
            lambda info: deliveries(info) >= MAX_DELIVERIES + 2,
        )

    assert handler.calls == []
    assert await rows_of(engine, dead_letter_table) == []
    assert await event_ids(engine, inbox_table) == []
    info = await client.jetstream().consumer_info(STREAM, durable)
    assert info.num_ack_pending == 1  # neither acknowledged nor terminated: still to come
    warnings = [
        record.getMessage() for record in caplog.records if record.levelno == logging.WARNING
    ]
    assert len(warnings) == 1, warnings  # once per event
    assert f"stream sequence {sequence}" in warnings[0] and future.id in warnings[0]

    # A replica of the release that reads the version applies it, once.
    upgraded = replace(FAST, known_schema_version=SCHEMA_VERSION + 1)
    await run_consumer_until_settled(
        consumer_for(engine, durable, handler, upgraded), client, durable
    )
    assert handler.calls == [future.id]
    assert await event_ids(engine, effects) == [future.id]
    assert await rows_of(engine, dead_letter_table) == []


# --- Listing, replaying and discarding over gRPC --------------------------------------------


@pytest.fixture
async def dead_letter_stub_for(
    engine: AsyncEngine,
) -> AsyncIterator[Callable[[Flaky], Awaitable[DeadLetterServiceStub]]]:
    """Serves a service's DeadLetterService (with the handler given) on a real gRPC server."""
    servers: list[grpc.aio.Server] = []
    channels: list[grpc.aio.Channel] = []

    async def serve(handler: Flaky) -> DeadLetterServiceStub:
        server, _ = create_server()
        serve_dead_letters(
            server,
            service="admin",
            engine=engine,
            outbox=Outbox(engine, outbox_table),
            inbox=inbox_table,
            handlers={INCIDENT_REPORTED: handler, INCIDENT_TRIAGED: handler},
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{port}"))
        return DeadLetterServiceStub(channels[-1])

    yield serve
    for channel in channels:
        await channel.close()
    for server in servers:
        await server.stop(None)


async def test_dead_letters_are_listed_in_pages_replayed_once_fixed_and_discarded(
    engine: AsyncEngine,
    client: NATS,
    dead_letter_stub_for: Callable[[Flaky], Awaitable[DeadLetterServiceStub]],
) -> None:
    poison = reported_event("inc-replayed")
    handler = Flaky(poison.id)
    await publish(client, REPORTED, poison.SerializeToString(), poison.id)
    for _ in range(2):
        await publish(client, REPORTED, b"not an envelope")
    await run_consumer_until_settled(consumer_for(engine, "admin", handler), client, "admin")
    stub = await dead_letter_stub_for(handler)

    first = await stub.ListDeadLetters(dead_letters_pb2.ListDeadLettersRequest(limit=2))
    assert len(first.dead_letters) == 2 and first.next_cursor
    rest = await stub.ListDeadLetters(
        dead_letters_pb2.ListDeadLettersRequest(limit=2, cursor=first.next_cursor)
    )
    assert len(rest.dead_letters) == 1 and rest.next_cursor == ""
    listed = [*first.dead_letters, *rest.dead_letters]
    assert len({letter.id for letter in listed}) == 3
    parked_times = [letter.parked_at.ToDatetime() for letter in listed]
    assert parked_times == sorted(parked_times, reverse=True)  # newest first
    [failed] = [letter for letter in listed if letter.reason == "handler_failed"]
    assert (failed.event_id, failed.incident_id, failed.deliveries) == (
        poison.id,
        "inc-replayed",
        MAX_DELIVERIES,
    )
    malformed = [letter for letter in listed if letter.reason == "malformed"]

    # The cause is not fixed yet: the replay fails, and the dead letter stays with its error.
    again = await stub.ReplayDeadLetter(dead_letters_pb2.DeadLetterRef(id=failed.id))
    assert not again.replayed
    assert again.error == f"RuntimeError: cannot handle {poison.id} yet (attempt 4)"
    [kept] = [row for row in await rows_of(engine, dead_letter_table) if row["id"] == failed.id]
    assert kept["error"] == again.error
    assert await event_ids(engine, effects) == []  # its writes were undone again

    # Fixed: the replay applies it once, with its inbox row, and the dead letter is gone.
    handler.broken_for.clear()
    replayed = await stub.ReplayDeadLetter(dead_letters_pb2.DeadLetterRef(id=failed.id))
    assert replayed.replayed and not replayed.duplicate and replayed.error == ""
    assert await event_ids(engine, effects) == [poison.id]
    assert await event_ids(engine, inbox_table) == [poison.id]
    remaining = {str(row["id"]) for row in await rows_of(engine, dead_letter_table)}
    assert remaining == {letter.id for letter in malformed}
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await stub.ReplayDeadLetter(dead_letters_pb2.DeadLetterRef(id=failed.id))
    assert twice.value.code() is grpc.StatusCode.NOT_FOUND
    assert handler.calls.count(poison.id) == MAX_DELIVERIES + 2

    # A malformed message stays malformed: replaying it fails, and it stays.
    unreadable = await stub.ReplayDeadLetter(dead_letters_pb2.DeadLetterRef(id=malformed[0].id))
    assert not unreadable.replayed and unreadable.error.startswith("MalformedEvent:")
    # Discarded, it is gone unapplied.
    discarded = await stub.DiscardDeadLetter(
        dead_letters_pb2.DeadLetterRef(
            id=malformed[0].id, actor=events_pb2.Actor(id="p-1", kind="admin", name="Ada")
        )
    )
    assert (discarded.id, discarded.reason) == (malformed[0].id, "malformed")
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.DiscardDeadLetter(dead_letters_pb2.DeadLetterRef(id=malformed[0].id))
    assert gone.value.code() is grpc.StatusCode.NOT_FOUND
    assert {str(row["id"]) for row in await rows_of(engine, dead_letter_table)} == {malformed[1].id}
    with pytest.raises(grpc.aio.AioRpcError) as bad_cursor:
        await stub.ListDeadLetters(dead_letters_pb2.ListDeadLettersRequest(cursor="garbage!"))
    assert bad_cursor.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_a_replay_of_an_event_applied_meanwhile_does_nothing_twice(
    engine: AsyncEngine,
    client: NATS,
    dead_letter_stub_for: Callable[[Flaky], Awaitable[DeadLetterServiceStub]],
) -> None:
    poison = reported_event("inc-twice")
    handler = Flaky(poison.id)
    await publish(client, REPORTED, poison.SerializeToString(), poison.id)
    await run_consumer_until_settled(consumer_for(engine, "twice", handler), client, "twice")
    [parked] = await rows_of(engine, dead_letter_table)
    # The same event came again (republished upstream under another message id) and, the
    # cause fixed by then, was applied.
    handler.broken_for.clear()
    await publish(client, REPORTED, poison.SerializeToString(), f"{poison.id}-again")
    await run_consumer_until_settled(consumer_for(engine, "twice", handler), client, "twice")
    stub = await dead_letter_stub_for(handler)

    reply = await stub.ReplayDeadLetter(dead_letters_pb2.DeadLetterRef(id=str(parked["id"])))

    assert reply.replayed and reply.duplicate
    assert await event_ids(engine, effects) == [poison.id]
    assert await rows_of(engine, dead_letter_table) == []


# --- The platform: a real service parks, an admin lists and replays through the gateway -----

ADMIN_ROUTE = "/v1/admin/dead-letters"
REFUSE_DECISIONS = (
    "CREATE TRIGGER refuse_decisions BEFORE INSERT ON triage_decisions "
    "BEGIN SELECT RAISE(ABORT, 'decisions refused by the test'); END"
)


@pytest.fixture(scope="module")
def small_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """A platform of this module's own that gives up after two deliveries, quickly."""
    platform = start_platform(
        tmp_path_factory.mktemp("dead-letters"),
        extra_env={"FIREBREAK_MAX_DELIVERIES": "2", "FIREBREAK_RETRY_DELAY_SECONDS": "0.05"},
    )
    yield platform
    platform.stop()


def on_triage_database(platform: Platform, sql: str) -> None:
    with contextlib.closing(sqlite3.connect(platform.var_dir / "triage.db", timeout=30)) as db:
        db.execute(sql)
        db.commit()


def listed(api: Api, **params: str) -> list[dict[str, Any]]:
    return api.pages(ADMIN_ROUTE, api.admin, **params)


def cli(platform: Platform, *args: str) -> subprocess.CompletedProcess[str]:
    """`firebreak dead-letters …` against the platform's gateway, the admin key from the
    environment."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "firebreak.cli",
            "dead-letters",
            "--url",
            platform.gateway_url,
            *args,
        ],
        env=os.environ | {"FIREBREAK_ADMIN_KEY": platform.admin_key},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_admin_sees_a_services_dead_letter_and_replays_it_once_its_cause_is_fixed(
    small_platform: Platform,
) -> None:
    api = Api(small_platform)
    tenant = api.new_client()
    # Triage's database refuses its decisions: every delivery of the report fails there.
    on_triage_database(small_platform, REFUSE_DECISIONS)
    reported = api.report(tenant)
    assert reported.status_code == 201, reported.text
    incident_id = reported.json()["id"]

    def parked_in_triage() -> list[dict[str, Any]]:
        return [
            item for item in listed(api, service="triage") if item["incident_id"] == incident_id
        ]

    [parked] = eventually(parked_in_triage)
    assert parked["service"] == "triage"
    assert (parked["event_type"], parked["subject"]) == (INCIDENT_REPORTED, REPORTED)
    assert (parked["reason"], parked["deliveries"]) == ("handler_failed", 2)
    assert parked["stream_sequence"] > 0 and parked["event_id"]
    assert "decisions refused by the test" in parked["error"]
    assert parked in listed(api)  # across every service too
    assert api.incident(api.admin, incident_id)["status"] == "reported"
    # Only admins: a manager and a client's key are refused.
    for caller in (api.new_person("manager"), tenant):
        refused = api.http.get(ADMIN_ROUTE, headers=caller.headers)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")

    replay = f"{ADMIN_ROUTE}/triage/{parked['id']}/replay"
    # Not fixed yet: a 409 naming the error, and the dead letter stays.
    failed = api.http.post(replay, headers=api.admin.headers)
    assert failed.status_code == 409, failed.text
    assert "decisions refused by the test" in failed.json()["detail"]
    assert failed.json()["error"].startswith("IntegrityError")
    assert [item["id"] for item in parked_in_triage()] == [parked["id"]]

    on_triage_database(small_platform, "DROP TRIGGER refuse_decisions")
    done = api.http.post(replay, headers=api.admin.headers)
    assert done.status_code == 200, done.text
    assert done.json() == {"service": "triage", "id": parked["id"], "duplicate": False}
    eventually(lambda: api.incident(api.admin, incident_id)["status"] == "triaged")
    assert parked_in_triage() == []
    again = api.http.post(replay, headers=api.admin.headers)
    assert again.status_code == 404, again.text
    # The audit log has the replay that succeeded, once; not the one that failed.
    audited = api.http.get("/v1/audit", params={"kind": "dead_letter"}, headers=api.admin.headers)
    assert [
        (entry["action"], entry["target"]["id"], entry["summary"])
        for entry in audited.json()["items"]
        if entry["target"]["id"] == parked["id"]
    ] == [("dead_letter.replayed", parked["id"], {"service": "triage", "duplicate": False})]


def test_malformed_messages_are_parked_by_every_consumer_and_handled_from_the_command_line(
    small_platform: Platform,
) -> None:
    api = Api(small_platform)

    async def publish_garbage() -> int:
        connection = await nats.connect(small_platform.admin_nats_url)
        try:
            return await publish(connection, REPORTED, b"\x08\x96\x01 garbage")
        finally:
            await connection.close()

    sequence = asyncio.run(publish_garbage())

    def parked_by() -> dict[str, dict[str, Any]]:
        found = {
            item["service"]: item for item in listed(api) if item["stream_sequence"] == sequence
        }
        # Every service that consumes reports parks it: triage and review.
        return found if {"triage", "review"} <= set(found) else {}

    parked = eventually(parked_by)
    assert all(item["reason"] == "malformed" for item in parked.values())

    listing = cli(small_platform, "list")
    assert listing.returncode == 0, listing.stderr
    lines = [line.split("\t") for line in listing.stdout.splitlines()]
    assert {(line[0], line[1]) for line in lines} >= {
        (service, item["id"]) for service, item in parked.items()
    }
    review_letter = parked["review"]["id"]
    replayed = cli(small_platform, "replay", "review", review_letter)
    assert replayed.returncode == 1
    assert "409" in replayed.stderr and "MalformedEvent" in replayed.stderr
    discarded = cli(small_platform, "discard", "review", review_letter)
    assert discarded.returncode == 0, discarded.stderr
    assert discarded.stdout.strip() == f"discarded review {review_letter}"
    assert review_letter not in {item["id"] for item in listed(api, service="review")}
    gone = cli(small_platform, "discard", "review", review_letter)
    assert gone.returncode == 1 and "404" in gone.stderr

    # A service that keeps none, by path or by filter, is named in the refusal.
    unknown = api.http.delete(f"{ADMIN_ROUTE}/bogus/{review_letter}", headers=api.admin.headers)
    assert unknown.status_code == 404 and "'bogus'" in unknown.json()["detail"]
    filtered = api.http.get(ADMIN_ROUTE, params={"service": "bogus"}, headers=api.admin.headers)
    assert filtered.status_code == 422 and filtered.json()["errors"][0]["field"] == "service"


def test_the_gateways_own_consumer_parks_an_attachment_it_cannot_move_to_evidence(
    small_platform: Platform,
) -> None:
    """The gateway consumes attachment.received (services/gateway/mail_evidence.py): one naming
    an attachment intake does not have is parked in the gateway's own dead letters, listed
    beside the services', and a replay fails again until it is discarded."""
    api = Api(small_platform)
    tenant = api.new_client()
    reported = api.report(tenant)
    assert reported.status_code == 201, reported.text
    incident_id = reported.json()["id"]
    forged = new_event(
        ATTACHMENT_RECEIVED,
        incident_id=incident_id,
        client_id=tenant.id,
        producer="intake",
        payload=events_pb2.AttachmentReceived(
            attachment_id=str(uuid.uuid4()),
            filename="missing.log",
            content_type="text/plain",
            size_bytes=3,
            sha256="0" * 64,
            sender="ops@client.example",
        ),
        actor=events_pb2.Actor(id=str(uuid.uuid4()), kind="client_system", name="Ops mailbox"),
    )

    async def publish_forged() -> None:
        connection = await nats.connect(small_platform.admin_nats_url)
        try:
            await publish(connection, subject_for(ATTACHMENT_RECEIVED), forged.SerializeToString())
        finally:
            await connection.close()

    asyncio.run(publish_forged())

    def parked_by_gateway() -> list[dict[str, Any]]:
        return [item for item in listed(api, service="gateway") if item["event_id"] == forged.id]

    [parked] = eventually(parked_by_gateway)
    assert (parked["service"], parked["incident_id"]) == ("gateway", incident_id)
    assert (parked["reason"], parked["deliveries"]) == ("handler_failed", 2)
    assert parked["error"].startswith("AttachmentNotCollected: intake answered NOT_FOUND")
    assert parked in listed(api)  # across every service too
    replay = f"{ADMIN_ROUTE}/gateway/{parked['id']}/replay"
    failed = api.http.post(replay, headers=api.admin.headers)
    assert failed.status_code == 409, failed.text
    assert "intake answered NOT_FOUND" in failed.json()["error"]
    discarded = api.http.delete(f"{ADMIN_ROUTE}/gateway/{parked['id']}", headers=api.admin.headers)
    assert discarded.status_code == 204, discarded.text
    assert parked_by_gateway() == []
    evidence = api.http.get(f"/v1/incidents/{incident_id}/evidence", headers=api.admin.headers)
    assert evidence.status_code == 200 and evidence.json()["items"] == []
