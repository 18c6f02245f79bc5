"""How one gateway replica hears events on the bus for itself: an ordered consumer of its own
per subject (ephemeral, from new messages on), so that every replica hears every event; a
durable consumer shared between replicas would give each event to one of them. What a replica
keeps from them (the console's boards, its cache of principals) is in memory and starts empty,
so nothing older is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DeliverPolicy

from firebreak import events

log = logging.getLogger(__name__)

RESUBSCRIBE_SECONDS = 2.0


async def follow(
    nats: Callable[[], NATS | None],
    subjects: Sequence[str],
    handler: Callable[[Msg], Awaitable[None]],
    stopping: asyncio.Event,
    *,
    purpose: str,
) -> None:
    """Hands each new event on `subjects` (with the subject prefix) to `handler`, once NATS is
    there, until `stopping`; `purpose` names the follower in the log."""
    while not stopping.is_set():
        client = nats()
        if client is not None and client.is_connected:
            subscriptions: list[Subscription] = []
            try:
                for subject in subjects:
                    subscriptions.append(
                        await client.jetstream().subscribe(
                            events.SUBJECT_PREFIX + subject,
                            stream=events.STREAM,
                            ordered_consumer=True,
                            deliver_policy=DeliverPolicy.NEW,
                            cb=handler,
                        )
                    )
            except Exception as error:
                log.warning("%s could not follow the bus yet: %s", purpose, error)
            else:
                await stopping.wait()
            for subscription in subscriptions:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
            if stopping.is_set():
                return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), RESUBSCRIBE_SECONDS)
