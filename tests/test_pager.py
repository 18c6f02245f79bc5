"""The Pager's sending, against a real SQLite database and real HTTP receivers: a receiver that
hangs holds up only its own page."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.database import create_engine, create_schema, reading
from firebreak.outbox import Outbox
from services.notify import models
from services.notify.channels import ChannelSettings
from services.notify.paging import Pager
from services.notify.templating import Templates
from tests.test_channels import HttpReceiver

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes, base64


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'notify.db'}")
    await create_schema(engine, models.metadata)
    yield engine
    await engine.dispose()


async def queue_webhook_page(engine: AsyncEngine, url: str) -> str:
    delivery_id = str(uuid.uuid4())
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(
            models.deliveries.insert().values(
                id=delivery_id,
                incident_id=str(uuid.uuid4()),
                client_id="acme",
                person_id="p-1",
                person_name="Ada",
                step=0,
                channel="webhook",
                address=url,
                secret=SECRET,
                status="pending",
                attempts=0,
                due_at=now,
                reference="ACME-1",
                priority="P1",
                subject="[P1] ACME-1",
                body="A page",
                created_at=now,
                trace_context={},
            )
        )
    return delivery_id


async def status_of(engine: AsyncEngine, delivery_id: str) -> str:
    async with reading(engine) as connection:
        return str(
            (
                await connection.execute(
                    select(models.deliveries.c.status).where(models.deliveries.c.id == delivery_id)
                )
            ).scalar_one()
        )


async def until(check: Callable[[], Any], *, equals: Any = True) -> None:
    """Polls `check` (a value or an awaitable) until it gives `equals`; gives up after about a
    minute, only to keep a broken test from hanging."""
    for _ in range(3000):
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value == equals:
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"still {value!r}, not {equals!r}")


async def test_a_receiver_that_hangs_holds_up_no_other_page(engine: AsyncEngine) -> None:
    hanging, answering = HttpReceiver(), HttpReceiver()
    hanging.hang = True
    await hanging.start()
    await answering.start()
    pager = Pager(
        engine,
        Outbox(engine, models.outbox),
        email=None,
        templates=Templates.load(None),
        tick_seconds=0.05,
        # Longer than the test may take: the hung page is still being sent when it ends.
        channels=ChannelSettings(http_timeout=120.0),
    )
    stopping = asyncio.Event()
    running = asyncio.create_task(pager.run(stopping))
    try:
        stuck = await queue_webhook_page(engine, hanging.url)
        await until(lambda: bool(hanging.requests))
        # A page due after the stuck one is claimed, sent and recorded in a later pass.
        later = await queue_webhook_page(engine, answering.url)
        await until(lambda: status_of(engine, later), equals="delivered")

        # (Only POSTs: a stray client of another test run may knock on a reused port.)
        [page] = [request for request in answering.requests if request.method == "POST"]
        assert page.headers["webhook-id"] == later
        assert await status_of(engine, stuck) == "sending"  # still waiting for its receiver
    finally:
        await hanging.stop()  # the hung request ends
        stopping.set()
        await running
        await answering.stop()
