"""Every service's migrations, on SQLite and PostgreSQL: revision 0001 is the schema that existed
before migrations, upgrades keep the data, a database made by `create_all` is adopted, and the
newest revision matches the models (so a model change without its migration fails here)."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import JSON, Column, Connection, MetaData, Row, Table, inspect, select
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.events.v1 import events_pb2
from firebreak.database import create_engine
from firebreak.events import PERSON_REGISTERED, parse_event, subject_for
from firebreak.migrations import BASELINE, VERSION_TABLE, alembic_config, migrate, upgrade
from firebreak.settings import SERVICES
from firebreak.startup_migration import (
    MigrationFailed,
    current_revision,
    ensure_migrated,
    head_revision,
)
from services.gateway import models as gateway_models
from tests.schema_before_migrations import schema_before_migrations

Rows = dict[str, list[Row[Any]]]


@pytest.fixture
async def engine_for(
    new_database: Callable[[str], str],
) -> AsyncIterator[Callable[[str], AsyncEngine]]:
    engines: list[AsyncEngine] = []

    def make(label: str) -> AsyncEngine:
        engines.append(create_engine(new_database(label)))
        return engines[-1]

    yield make
    for engine in engines:
        await engine.dispose()


def head(service: str) -> str:
    revision = ScriptDirectory.from_config(alembic_config(service)).get_current_head()
    assert revision is not None
    return revision


def current_models(service: str) -> MetaData:
    metadata: MetaData = importlib.import_module(f"services.{service}.models").metadata
    return metadata


async def differences(engine: AsyncEngine, metadata: MetaData) -> list[Any]:
    """What autogenerate would add to a migration to make the database match `metadata`."""

    def compare(connection: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    async with engine.connect() as connection:
        return await connection.run_sync(compare)


async def version(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        result = await connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}")
        return [row[0] for row in result]


def sample(column: Column[Any]) -> Any:
    """A value any column of the schema accepts (every string column holds at least two
    characters, and the same value everywhere satisfies the gateway's one foreign key)."""
    values: dict[type, Any] = {
        str: "1",
        int: 1,
        bool: True,
        float: 1.5,
        datetime: datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        bytes: b"\x00\x01",
    }
    if isinstance(column.type, JSON):
        return {"k": ["v"]}
    kind = column.type.python_type
    if kind not in values:
        raise NotImplementedError(f"no sample value for {column} ({kind}): add one here")
    return values[kind]


async def fill_every_table(engine: AsyncEngine) -> tuple[list[Table], Rows]:
    """Puts a row in each table and returns the tables (as reflected) and what they hold."""

    def fill(connection: Connection) -> tuple[list[Table], Rows]:
        reflected = MetaData()
        reflected.reflect(connection)
        tables = [table for table in reflected.sorted_tables if table.name != VERSION_TABLE]
        for table in tables:
            connection.execute(table.insert().values({c.name: sample(c) for c in table.columns}))
        return tables, read(connection, tables)

    async with engine.begin() as connection:
        return await connection.run_sync(fill)


def read(connection: Connection, tables: list[Table]) -> Rows:
    return {table.name: list(connection.execute(select(table))) for table in tables}


async def read_tables(engine: AsyncEngine, tables: list[Table]) -> Rows:
    async with engine.connect() as connection:
        return await connection.run_sync(read, tables)


async def upgrade_to(engine: AsyncEngine, service: str, revision: str) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(upgrade, service, revision)


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


@pytest.mark.parametrize("service", SERVICES)
async def test_revision_0001_is_the_schema_before_migrations(
    engine_for: Callable[[str], AsyncEngine], service: str
) -> None:
    engine = engine_for(service)
    await upgrade_to(engine, service, BASELINE)
    assert await version(engine) == [BASELINE]
    assert await differences(engine, schema_before_migrations(service)) == []


@pytest.mark.parametrize("service", SERVICES)
async def test_upgrading_keeps_the_data_and_ends_at_the_models(
    engine_for: Callable[[str], AsyncEngine], service: str
) -> None:
    engine = engine_for(service)
    await upgrade_to(engine, service, BASELINE)
    tables, before = await fill_every_table(engine)
    assert all(len(rows) == 1 for rows in before.values())

    await migrate(engine, service)

    assert await version(engine) == [head(service)]
    # A table a later revision drops on purpose takes its rows with it.
    kept = [table for table in tables if table.name in current_models(service).tables]
    assert await read_tables(engine, kept) == {table.name: before[table.name] for table in kept}
    # Fails when a model changed without a migration: add one with `firebreak revision`.
    assert await differences(engine, current_models(service)) == []


@pytest.mark.parametrize("service", SERVICES)
async def test_a_database_made_by_create_all_is_adopted(
    engine_for: Callable[[str], AsyncEngine], service: str
) -> None:
    engine = engine_for(service)
    async with engine.begin() as connection:
        await connection.run_sync(schema_before_migrations(service).create_all)
    tables, before = await fill_every_table(engine)
    assert VERSION_TABLE not in await table_names(engine)

    await migrate(engine, service)

    assert await version(engine) == [head(service)]
    kept = [table for table in tables if table.name in current_models(service).tables]
    assert await read_tables(engine, kept) == {table.name: before[table.name] for table in kept}
    assert await differences(engine, current_models(service)) == []


@pytest.mark.parametrize("service", SERVICES)
async def test_upgrading_twice_changes_nothing(
    engine_for: Callable[[str], AsyncEngine], service: str
) -> None:
    engine = engine_for(service)
    await migrate(engine, service)
    tables, before = await fill_every_table(engine)

    await migrate(engine, service)

    assert await version(engine) == [head(service)]
    assert await table_names(engine) == {table.name for table in tables} | {VERSION_TABLE}
    assert await read_tables(engine, tables) == before


@pytest.mark.postgres
async def test_replicas_migrating_together_take_turns(postgres: Callable[[str], str]) -> None:
    url = postgres("replicas")
    engines = [create_engine(url) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(engine, "intake") for engine in engines))
        assert await version(engines[0]) == [head("intake")]
    finally:
        for engine in engines:
            await engine.dispose()


@pytest.mark.parametrize("service", ["triage", "gateway"])
async def test_a_starting_service_migrates_in_a_child_process_only_when_behind(
    new_database: Callable[[str], str],
    service: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = new_database(service)
    # The child reads the service's database URL from the environment, as a service does.
    monkeypatch.setenv(f"FIREBREAK_{service.upper()}_DATABASE_URL", url)
    engine = create_engine(url)
    try:
        assert head_revision(service) == head(service)  # the file names agree with Alembic
        assert await current_revision(engine) is None
        await ensure_migrated(engine, service)
        assert await current_revision(engine) == head(service)

        async def no_child(*args: object, **kwargs: object) -> None:
            raise AssertionError("a database at its newest revision needs no migration")

        monkeypatch.setattr(asyncio, "create_subprocess_exec", no_child)
        await ensure_migrated(engine, service)
    finally:
        await engine.dispose()


async def test_a_failed_start_up_migration_stops_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A directory where the database file should be: the child cannot open it.
    (tmp_path / "triage.db").mkdir()
    url = f"sqlite+aiosqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("FIREBREAK_TRIAGE_DATABASE_URL", f"sqlite:///{tmp_path / 'triage.db'}")
    engine = create_engine(url)
    try:
        with pytest.raises(MigrationFailed, match="firebreak migrate triage exited with"):
            await ensure_migrated(engine, "triage")
    finally:
        await engine.dispose()


async def test_people_registered_before_person_events_are_announced_once(
    engine_for: Callable[[str], AsyncEngine],
) -> None:
    """People the gateway held before it published events about people reach notify's copy:
    revision 0005 queues a person.registered for each, carrying them whole."""
    engine = engine_for("gateway")
    await upgrade_to(engine, "gateway", "0004")
    created = datetime(2026, 1, 2, tzinfo=UTC)
    async with engine.begin() as connection:
        await connection.execute(
            gateway_models.clients.insert().values(id="acme", name="Acme", created_at=created)
        )
        await connection.execute(
            gateway_models.people.insert().values(
                id="p-1",
                name="Ada",
                email="ada@example.com",
                email_key="ada@example.com",
                role="responder",
                client_id="acme",
                phone="+4420",
                timezone="Europe/London",
                clients=["acme"],
                active=True,
                created_at=created,
                updated_at=created,
            )
        )

    await migrate(engine, "gateway")
    await migrate(engine, "gateway")

    async with engine.connect() as connection:
        rows = (await connection.execute(select(gateway_models.outbox))).all()
    assert [(row.subject, row.published_at) for row in rows] == [
        (subject_for(PERSON_REGISTERED), None)
    ]
    event = parse_event(rows[0].payload, subject=rows[0].subject)
    assert event.client_id == "acme" and event.producer == "gateway"
    assert event.person_registered.person == events_pb2.PersonDetails(
        id="p-1",
        name="Ada",
        email="ada@example.com",
        phone="+4420",
        timezone="Europe/London",
        role="responder",
        client_id="acme",
        walled=True,
        clients=["acme"],
        active=True,
    )
