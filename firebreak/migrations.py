"""Each service's schema as Alembic migrations: one history per service, in its own database.

A service's revisions live in `services/<service>/migrations/versions/` (0001, 0002, …); this
module is the one Alembic environment they all share (`migration_env/env.py` only calls
`run_environment`), so the same code migrates SQLite and PostgreSQL, on the connection of the
engine the service itself uses.
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.database import create_engine, is_postgres
from firebreak.settings import SERVICES
from firebreak.startup_migration import versions_dir

# The schema `create_all` made before there were migrations (commit c145945): a database that
# has tables but no version table was made by it, and is adopted at this revision.
BASELINE = "0001"
VERSION_TABLE = "alembic_version"
# The key create_schema locked: replicas (old or new) starting together take turns.
ADVISORY_LOCK_KEY = 7031
ENVIRONMENT = Path(__file__).with_name("migration_env")


async def migrate(engine: AsyncEngine, service: str) -> None:
    """Upgrades the service's database to its newest revision, in one transaction; safe to run
    from every replica at start-up."""
    async with engine.begin() as connection:
        if is_postgres(engine):
            await connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")
        await connection.run_sync(upgrade, service)


def upgrade(connection: Connection, service: str, revision: str = "head") -> None:
    """Upgrades the service's database on `connection` to `revision`, adopting first a database
    that `create_all` made before there were migrations."""
    config = alembic_config(service, connection)
    tables = set(inspect(connection).get_table_names())
    if tables and VERSION_TABLE not in tables:
        command.stamp(config, BASELINE)
    command.upgrade(config, revision)


def alembic_config(service: str, connection: Connection | None = None) -> Config:
    """The service's Alembic configuration; commands run on `connection` (see run_environment)."""
    if service not in SERVICES:
        raise ValueError(f"unknown service: {service}")
    config = Config()
    # ConfigParser interpolates %, so a literal one in a path must be doubled.
    config.set_main_option("script_location", str(ENVIRONMENT).replace("%", "%%"))
    config.set_main_option("version_locations", str(versions_dir(service)).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["service"] = service
    config.attributes["connection"] = connection
    return config


def run_environment() -> None:
    """What env.py does for every command: run it on the connection the caller handed over."""
    if context.is_offline_mode():
        raise RuntimeError("Firebreak migrations run on a live connection, not as SQL scripts")
    config = context.config
    connection: Connection | None = config.attributes["connection"]
    if connection is None:
        raise RuntimeError("run migrations through firebreak.migrations, which hands a connection")
    models = importlib.import_module(f"services.{config.attributes['service']}.models")
    context.configure(
        connection=connection,
        target_metadata=models.metadata,  # what autogenerate compares with
        # SQLite cannot alter most of a table; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    # Within the caller's transaction: Alembic then neither begins nor commits one itself.
    with context.begin_transaction():
        context.run_migrations()


async def new_revision(service: str, message: str, *, autogenerate: bool = False) -> Path:
    """Writes the service's next revision (0002, 0003, …) and returns its path. With
    `autogenerate`, it holds what the models have and the migrations lack, found by comparing
    the models with a scratch SQLite database upgraded to head: review it before committing."""
    config = alembic_config(service)
    _format_with_ruff(config)
    head = ScriptDirectory.from_config(config).get_current_head()
    revision_id = f"{int(head or 0) + 1:04d}"
    if not autogenerate:
        return _written(command.revision(config, message, rev_id=revision_id))
    with tempfile.TemporaryDirectory() as scratch:
        engine = create_engine(f"sqlite+aiosqlite:///{scratch}/{service}.db")
        try:
            async with engine.begin() as connection:
                return await connection.run_sync(_autogenerate, service, message, revision_id)
        finally:
            await engine.dispose()


def _autogenerate(connection: Connection, service: str, message: str, revision_id: str) -> Path:
    upgrade(connection, service)
    config = alembic_config(service, connection)
    _format_with_ruff(config)
    return _written(command.revision(config, message, autogenerate=True, rev_id=revision_id))


def _written(scripts: Script | list[Script | None] | None) -> Path:
    if not isinstance(scripts, Script):
        raise RuntimeError("Alembic wrote no single revision")
    return Path(scripts.path)


def _format_with_ruff(config: Config) -> None:
    """New revision files come out the way the rest of the code is kept (a dev dependency)."""
    hooks = {
        "hooks": "ruff_fix ruff_format",
        "ruff_fix.type": "module",
        "ruff_fix.module": "ruff",
        "ruff_fix.options": "check --fix --quiet REVISION_SCRIPT_FILENAME",
        "ruff_format.type": "module",
        "ruff_format.module": "ruff",
        "ruff_format.options": "format --quiet REVISION_SCRIPT_FILENAME",
    }
    for name, value in hooks.items():
        config.set_section_option("post_write_hooks", name, value)
