"""The NATS JetStream event bus: connection, the one stream, and durable pull consumers."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    Header,
    StatusCode,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError

from firebreak.bus_auth import BusLogin, inbox_prefix
from firebreak.events import STREAM, SUBJECT_PREFIX

log = logging.getLogger(__name__)

ACK_WAIT_SECONDS = 30.0
# A pull request waits this long for messages before the server ends it (and it is renewed).
PULL_EXPIRES_SECONDS = 0.5
PULL_END_GRACE_SECONDS = 0.25
STREAM_MAX_AGE_SECONDS = 7 * 24 * 3600
DEFAULT_STREAM_MAX_BYTES = 1024**3


def stream_config(replicas: int = 1, max_bytes: int = DEFAULT_STREAM_MAX_BYTES) -> StreamConfig:
    """The one stream. It is the transport, not the record (review keeps the timeline), so it
    keeps a week; `replicas` > 1 needs a NATS cluster of at least that many servers. When it
    holds `max_bytes` it refuses new events (they wait in the outboxes) rather than deleting
    old ones that a consumer may not have read yet."""
    return StreamConfig(
        name=STREAM,
        subjects=[SUBJECT_PREFIX + ">"],
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_age=STREAM_MAX_AGE_SECONDS,
        max_bytes=max_bytes,
        discard=DiscardPolicy.NEW,
        duplicate_window=120,
    )


@dataclass
class LinkState:
    """Whether a process is connected to NATS, and since when: for status pages and metrics."""

    connected: bool = False
    since: datetime = field(default_factory=lambda: datetime.now(UTC))

    def change(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected, self.since = connected, datetime.now(UTC)


def servers(url: str) -> list[str]:
    """The servers of a URL such as FIREBREAK_NATS_URL, comma-separated for a cluster: the
    client needs more than one when the first is down at start (once connected, it learns the
    cluster's other servers from the one it reached)."""
    return [part.strip() for part in url.split(",") if part.strip()]


async def connect(
    url: str, name: str, link: LinkState | None = None, login: BusLogin | None = None
) -> NATS:
    """Connects, waiting for the server if it is not up yet; reconnects for ever afterwards.
    `link`, when given, follows the connection's state; `login`, who this is (and its TLS)."""
    last_error = ""
    link = link or LinkState()

    async def on_disconnected() -> None:
        link.change(False)
        log.warning("disconnected from NATS")

    async def on_reconnected() -> None:
        nonlocal last_error
        last_error = ""
        link.change(True)
        log.info("reconnected to NATS")

    async def on_error(error: Exception) -> None:
        # While NATS is away every reconnect attempt fails the same way: say it once.
        nonlocal last_error
        if str(error) != last_error:
            last_error = str(error)
            log.warning("NATS error: %s", error)

    login = login or BusLogin()
    secured: dict[str, Any] = {}
    if login.user is not None:
        # Its own inboxes: the only subjects its user may subscribe to (bus_auth.py).
        secured.update(
            user=login.user, password=login.password, inbox_prefix=inbox_prefix(login.user)
        )
    if login.tls is not None:
        # TLS from the first byte: with the INFO-first handshake a server (or anyone in the
        # way) that does not ask for TLS would get the password in plain text.
        secured.update(tls=login.tls, tls_handshake_first=True)
    client = NATS()
    # With unlimited reconnect attempts this also waits for a server that is not up yet.
    await client.connect(
        servers(url),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]  # typed int, takes seconds as float
        connect_timeout=2,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        error_cb=on_error,
        **secured,
    )
    link.change(True)
    return client


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Creates the stream, or brings an existing one to the current configuration."""
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


async def ensure_consumer(js: JetStreamContext, durable: str, subjects: list[str]) -> None:
    """Creates the durable pull consumer that every replica of a service shares, or updates it
    in place when an upgrade changed its configuration."""
    config = ConsumerConfig(
        durable_name=durable,
        filter_subjects=[SUBJECT_PREFIX + subject for subject in subjects],
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ACK_WAIT_SECONDS,
        max_ack_pending=4096,
    )
    await js.add_consumer(STREAM, config)


class ConsumerLost(Exception):
    """The server says the durable consumer (or its stream) is gone."""


class PullFeed:
    """A continuous pull from a durable consumer: one pull request for up to `batch` messages
    is kept outstanding, renewed when it is used up or ends, and what arrives is handed over in
    batches. Unlike a fetch per batch, an event costs no request and no wait of its own."""

    def __init__(self, client: NATS, durable: str, batch: int) -> None:
        self._client = client
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{durable}"
        self._batch = batch
        self._inbox = client.new_inbox()
        self._arrived: collections.deque[Msg] = collections.deque()
        self._ready = asyncio.Event()
        self._owed = 0  # messages the outstanding request may still bring
        self._request_ends = 0.0  # monotonic time by which it has surely ended
        self._subscription: Subscription | None = None

    async def open(self) -> None:
        self._subscription = await self._client.subscribe(self._inbox, cb=self._receive)

    async def close(self) -> None:
        if self._subscription is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._subscription.unsubscribe()

    async def _receive(self, message: Msg) -> None:
        self._arrived.append(message)
        self._ready.set()

    async def next_batch(self, wait: float) -> list[Msg]:
        """What has arrived, waiting up to `wait` seconds for the first; [] if nothing did."""
        await self._keep_requested()
        if not self._arrived:
            self._ready.clear()
            # Not past the request's end: a new one must be out before the next event comes.
            wait = min(wait, self._request_ends - time.monotonic())
            await _wait_for_event(self._ready, wait)
        return self._take_arrived()

    async def drain_until_requests_end(self) -> list[Msg]:
        """On shutdown: no new requests; what the outstanding one still brings, until it ends."""
        while not self._arrived and self._owed > 0:
            remaining = self._request_ends - time.monotonic()
            if remaining <= 0:
                break
            self._ready.clear()
            await _wait_for_event(self._ready, remaining)
        return self._take_arrived()

    async def _keep_requested(self) -> None:
        if self._owed > 0 and time.monotonic() < self._request_ends:
            return
        # A NATS that restarted forgot the request, so it is renewed when its time is up even
        # if the server never said it ended.
        request = {"batch": self._batch, "expires": int(PULL_EXPIRES_SECONDS * 1e9)}
        await self._client.publish(
            self._next_subject, json.dumps(request).encode(), reply=self._inbox
        )
        self._owed = self._batch
        self._request_ends = time.monotonic() + PULL_EXPIRES_SECONDS + PULL_END_GRACE_SECONDS

    def _take_arrived(self) -> list[Msg]:
        messages = []
        while self._arrived:
            message = self._arrived.popleft()
            status = message.headers.get(Header.STATUS) if message.headers else None
            if status is None:
                self._owed -= 1
                messages.append(message)
            elif status == StatusCode.SERVICE_UNAVAILABLE or (
                status == StatusCode.CONFLICT
                and "deleted" in (message.headers or {}).get(Header.DESCRIPTION, "").lower()
            ):
                raise ConsumerLost(f"{status} {message.headers}")
            else:  # 408 expired, 409 and the like: the request is over; ask again next time
                self._owed = 0
        return messages


async def _wait_for_event(ready: asyncio.Event, seconds: float) -> None:
    """Waits until `ready` is set or `seconds` pass. Unlike asyncio.wait_for (Python 3.11), no
    task per wait: a consumer waits once per batch."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await ready.wait()
