"""Notify's timers: escalation steps that fell due, and pages waiting to be (re)sent.

One loop per replica. Each pass claims what is due in a short transaction (other replicas skip
claimed rows on PostgreSQL; SQLite has one writer), so every step runs once and every page goes
out once. A page is claimed for a lease before it is sent and recorded after: a replica that dies
mid-send leaves a claim that lapses, and the page is sent again under the same delivery id (the
email's Message-ID, the webhook-id), which receivers use to drop the copy. Each claimed page is
sent and recorded by a task of its own, so a receiver that hangs holds up its own page only,
never the passes after it.

A page goes to the person's contact methods in order (contact_methods.py): their email first;
when a delivery finally fails, the page is queued to their next method at once, and only when
their last method has failed does the escalation move on. Other messages (status updates,
reminders: outgoing.py) are sent and retried the same way, but their failure moves nothing on
and only pages are announced on the timeline.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.ack_links import LinkMaker
from firebreak.api.events.v1 import events_pb2
from firebreak.events import PAGE_DELIVERED, PAGE_FAILED, new_event
from firebreak.outbox import Outbox
from firebreak.telemetry import span_in_context
from firebreak.timer_passes import FailedPasses, run_passes
from services.notify import contact_methods, escalation
from services.notify.channels import (
    Channel,
    ChannelSettings,
    DeliveryFailed,
    Message,
    Target,
    TargetKind,
    channel_for,
)
from services.notify.channels.retry import backoff
from services.notify.models import deliveries
from services.notify.outgoing import PAGE
from services.notify.templating import Templates

log = logging.getLogger(__name__)

CLAIM = timedelta(minutes=2)  # longer than any one attempt takes (SMTP and HTTP time out first)
MAX_ATTEMPTS = 5
BATCH = 50
MAX_IN_FLIGHT = 200  # pages being sent at once, per replica
STOP_WAIT_SECONDS = 5.0  # on stopping, how long pages in flight may finish; the rest lapse
HTTP_KINDS: tuple[TargetKind, ...] = ("webhook", "slack", "teams")


@dataclass
class Pager:
    engine: AsyncEngine
    outbox: Outbox
    email: Channel | None  # None: no SMTP server configured
    templates: Templates  # pages are rendered from them when their step is reached
    tick_seconds: float = 0.25
    rng: random.Random = random.Random()  # noqa: RUF009  # jitter needs no security
    # Makes each page's one-click acknowledge link; None: pages carry none.
    links: LinkMaker | None = None
    channels: ChannelSettings = field(default_factory=ChannelSettings)
    # While run() runs: the webhook, Slack and Teams channels, sharing its one HTTP client.
    _http_channels: dict[str, Channel] = field(default_factory=dict, init=False, repr=False)
    _in_flight: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)

    async def run(self, stopping: asyncio.Event) -> None:
        """Runs due steps and sends due pages until `stopping` is set. A failing pass is
        logged and tried again: the timers must outlive a database hiccup. Webhook, Slack and
        Teams deliveries share one HTTP client (connections reused), closed when it stops."""
        async with httpx.AsyncClient(follow_redirects=False) as http:
            self._http_channels = {
                kind: channel_for(kind, settings=self.channels, http_client=http)
                for kind in HTTP_KINDS
            }
            try:
                await run_passes(
                    stopping,
                    self._one_pass,
                    tick_seconds=self.tick_seconds,
                    failures=FailedPasses(log, "paging pass"),
                )
            finally:
                await self._finish_in_flight()
                self._http_channels = {}

    async def _one_pass(self) -> None:
        await self.run_due_steps()
        await self.send_due_pages()

    async def run_due_steps(self) -> int:
        now = datetime.now(UTC)
        async with self.outbox.transaction() as connection:
            due = await escalation.due_escalations(connection, now=now, limit=BATCH)
            for row in due:
                await escalation.reach_step(
                    connection,
                    outbox=self.outbox,
                    escalation=row,
                    now=now,
                    templates=self.templates,
                    links=self.links,
                )
        return len(due)

    async def send_due_pages(self) -> int:
        """Claims the due pages there is room for and starts sending each; returns at once."""
        room = min(BATCH, MAX_IN_FLIGHT - len(self._in_flight))
        claimed = await self._claim_pages(room) if room > 0 else []
        for page in claimed:
            task = asyncio.create_task(self._deliver(page), name=f"delivery {page.id}")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(claimed)

    async def _deliver(self, page: Row[Any]) -> None:
        try:
            failure = await self._send(page)
            async with self.outbox.transaction() as connection:
                with span_in_context("page outcome", page.trace_context):
                    await self._record(connection, page, failure)
        except Exception:
            log.exception("delivery %s not recorded; its claim lapses and it goes again", page.id)

    async def _finish_in_flight(self) -> None:
        if not self._in_flight:
            return
        _, unfinished = await asyncio.wait(self._in_flight, timeout=STOP_WAIT_SECONDS)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)

    async def _claim_pages(self, limit: int) -> list[Row[Any]]:
        now = datetime.now(UTC)
        async with self.engine.begin() as connection:
            query = (
                select(deliveries)
                .where(deliveries.c.status.in_(("pending", "sending")), deliveries.c.due_at <= now)
                .order_by(deliveries.c.due_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            rows = list((await connection.execute(query)).all())
            if rows:
                await connection.execute(
                    update(deliveries)
                    .where(deliveries.c.id.in_([row.id for row in rows]))
                    .values(
                        status="sending",
                        due_at=now + CLAIM,
                        attempts=deliveries.c.attempts + 1,
                    )
                )
        return rows

    async def _send(self, page: Row[Any]) -> DeliveryFailed | None:
        with span_in_context(f"send {page.channel}", page.trace_context):
            return await self._attempt(page)

    def _channel(self, kind: str) -> Channel | DeliveryFailed:
        """The channel for a delivery's kind (its contact method's), or why there is none."""
        if kind == "email":
            if self.email is None:
                return DeliveryFailed(
                    "no SMTP server is configured (FIREBREAK_SMTP_HOST)", retryable=False
                )
            return self.email
        if kind not in HTTP_KINDS:
            return DeliveryFailed(f"no channel delivers to {kind!r}", retryable=False)
        # Outside run() (no shared client yet) a channel of its own, with a client per delivery.
        return self._http_channels.get(kind) or channel_for(
            cast(TargetKind, kind), settings=self.channels
        )

    async def _attempt(self, page: Row[Any]) -> DeliveryFailed | None:
        channel = self._channel(page.channel)
        if isinstance(channel, DeliveryFailed):
            return channel
        message = Message(
            subject=page.subject,
            text=page.body,
            html=page.html,
            priority=page.priority,
            reference=page.reference,
            incident_id=page.incident_id,
            ack_url=page.ack_url,
            kind=page.purpose,
        )
        try:
            await channel.deliver(
                Target(
                    kind=page.channel,
                    address=page.address,
                    secret=page.secret,
                    name=page.person_name,
                ),
                message,
                delivery_id=page.id,
            )
        except DeliveryFailed as failure:
            return failure
        return None

    async def _record(
        self, connection: AsyncConnection, page: Row[Any], failure: DeliveryFailed | None
    ) -> None:
        now = datetime.now(UTC)
        attempts = page.attempts + 1
        person = events_pb2.Person(id=page.person_id, name=page.person_name)
        event: tuple[str, Any]
        if failure is None:
            values: dict[str, Any] = {"status": "delivered", "delivered_at": now}
            event = (
                PAGE_DELIVERED,
                events_pb2.PageDelivered(
                    delivery_id=page.id,
                    person=person,
                    channel=page.channel,
                    attempts=attempts,
                    step=page.step,
                ),
            )
        else:
            final = not failure.retryable or attempts >= MAX_ATTEMPTS
            wait = backoff(attempts - 1, base=1.0, cap=60.0, rng=self.rng)
            values = {
                "status": "failed" if final else "pending",
                "due_at": now + timedelta(seconds=wait),
                "last_error": str(failure)[:500],
            }
            event = (
                PAGE_FAILED,
                events_pb2.PageFailed(
                    delivery_id=page.id,
                    person=person,
                    channel=page.channel,
                    attempts=attempts,
                    step=page.step,
                    error=str(failure)[:500],
                    final=final,
                ),
            )
            if (
                final
                and not await contact_methods.queue_next_method(connection, page, now=now)
                and page.purpose == PAGE
            ):
                # The person's last contact method failed too: the next step is due at once.
                await escalation.move_on_now(connection, incident_id=page.incident_id, now=now)
        values["attempts"] = attempts
        await connection.execute(
            update(deliveries).where(deliveries.c.id == page.id).values(**values)
        )
        if page.purpose != PAGE:
            return  # listed with the incident's deliveries; the timeline tells of pages only
        await self.outbox.add(
            connection,
            new_event(
                event[0],
                incident_id=page.incident_id,
                client_id=page.client_id,
                producer="notify",
                occurred_at=now,
                payload=event[1],
            ),
        )
