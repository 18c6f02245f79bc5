"""The NATS JetStream event bus: connection, the one stream, and durable pull consumers."""

from __future__ import annotations

import logging

from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from firebreak.events import STREAM, SUBJECT_PREFIX

log = logging.getLogger(__name__)

ACK_WAIT_SECONDS = 30.0


def stream_config(replicas: int = 1) -> StreamConfig:
    """The one stream. It is the transport, not the record (review keeps the timeline), so it
    keeps a week; `replicas` > 1 needs a NATS cluster of at least that many servers."""
    return StreamConfig(
        name=STREAM,
        subjects=[SUBJECT_PREFIX + ">"],
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_age=7 * 24 * 3600,
        duplicate_window=120,
    )


async def connect(url: str, name: str) -> NATS:
    """Connects, waiting for the server if it is not up yet; reconnects for ever afterwards."""
    last_error = ""

    async def on_disconnected() -> None:
        log.warning("disconnected from NATS")

    async def on_reconnected() -> None:
        nonlocal last_error
        last_error = ""
        log.info("reconnected to NATS")

    async def on_error(error: Exception) -> None:
        # While NATS is away every reconnect attempt fails the same way: say it once.
        nonlocal last_error
        if str(error) != last_error:
            last_error = str(error)
            log.warning("NATS error: %s", error)

    client = NATS()
    # With unlimited reconnect attempts this also waits for a server that is not up yet.
    await client.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]  # typed int, takes seconds as float
        connect_timeout=2,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        error_cb=on_error,
    )
    return client


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Creates the stream, or brings an existing one to the current configuration."""
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


async def durable_pull_subscription(
    js: JetStreamContext, durable: str, subjects: list[str]
) -> JetStreamContext.PullSubscription:
    """Binds to a durable pull consumer that every replica of a service shares."""
    config = ConsumerConfig(
        durable_name=durable,
        filter_subjects=[SUBJECT_PREFIX + subject for subject in subjects],
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=ACK_WAIT_SECONDS,
        max_ack_pending=4096,
    )
    # Creates the consumer, or updates it in place when an upgrade changed its configuration.
    await js.add_consumer(STREAM, config)
    return await js.pull_subscribe_bind(durable=durable, stream=STREAM)
