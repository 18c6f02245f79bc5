"""The evidence process's own timers: re-verifying every item when it falls due, and signing
the chain heads that changed. Each runs as a worker of the process (firebreak.runtime) until
the service stops; a failed round is logged and tried again at the next tick."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.database import is_postgres
from firebreak.events import SYSTEM
from firebreak.outbox import Outbox
from services.evidence import custody_signatures, verification
from services.evidence.blob_store import BlobStore
from services.evidence.custody_signatures import Signer
from services.evidence.models import items

log = logging.getLogger(__name__)

CLAIM_BATCH = 100
LONGEST_TICK_SECONDS = 60.0
SIGNING_LOCK_KEY = 7032  # one replica signs at a time (PostgreSQL advisory lock)


async def _wait(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def _claim_due(
    connection: AsyncConnection, *, now: datetime, interval: timedelta
) -> list[tuple[str, str]]:
    """(id, client id) of items due for re-verification; their next time moves on at once,
    so replicas share the work (PostgreSQL skips rows another replica is claiming)."""
    rows = (
        await connection.execute(
            select(items.c.id, items.c.client_id)
            .where(items.c.next_verify_at <= now, items.c.disposed_at.is_(None))
            .order_by(items.c.next_verify_at)
            .limit(CLAIM_BATCH)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if rows:
        await connection.execute(
            update(items)
            .where(items.c.id.in_([row.id for row in rows]))
            .values(next_verify_at=now + interval)
        )
    return [(row.id, row.client_id) for row in rows]


async def reverify(
    stopping: asyncio.Event,
    *,
    engine: AsyncEngine,
    outbox: Outbox,
    store: BlobStore,
    interval: timedelta,
) -> None:
    tick = min(interval.total_seconds(), LONGEST_TICK_SECONDS)
    while not stopping.is_set():
        try:
            async with engine.begin() as connection:
                due = await _claim_due(connection, now=datetime.now(UTC), interval=interval)
            for evidence_id, client_id in due:
                if stopping.is_set():
                    break
                await verification.verify(
                    engine=engine,
                    outbox=outbox,
                    store=store,
                    client_id=client_id,
                    evidence_id=evidence_id,
                    actor=SYSTEM,
                    found_by="schedule",
                    verify_interval=interval,
                )
        except Exception as error:
            log.error("re-verifying evidence failed; will try again: %s", error)
            due = []
        if len(due) < CLAIM_BATCH:
            await _wait(stopping, tick)


async def sign_heads(
    stopping: asyncio.Event, *, engine: AsyncEngine, signer: Signer, interval: timedelta
) -> None:
    while not stopping.is_set():
        try:
            async with engine.begin() as connection:
                if (
                    not is_postgres(engine)
                    or (
                        await connection.execute(
                            select(func.pg_try_advisory_xact_lock(SIGNING_LOCK_KEY))
                        )
                    ).scalar_one()
                ):
                    signed = await custody_signatures.sign_changed(
                        connection, signer=signer, now=datetime.now(UTC)
                    )
                    if signed:
                        log.info("signed the custody chain heads of %d clients", signed)
        except Exception as error:
            log.error("signing custody chain heads failed; will try again: %s", error)
        await _wait(stopping, interval.total_seconds())
