"""What the board hears of changes: each gateway replica follows incident events on the bus
for itself (bus_follower.py), and tells each open board whose viewer may see the event's
client. A board then fetches its rows again, through the API as its viewer: the bus says only
that something changed, never what a viewer may see.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from firebreak import events
from services.gateway import bus_follower

# A board that falls this far behind is told to fetch everything once, instead.
QUEUED_PER_BOARD = 64
KEEPALIVE_SECONDS = 15.0  # a comment line now and then, so that proxies keep the stream open


@dataclass(eq=False)
class _Board:
    clients: frozenset[str] | None  # None: every client
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUED_PER_BOARD))


class LiveFeed:
    def __init__(self) -> None:
        self._boards: set[_Board] = set()

    def publish(self, incident_id: str, client_id: str, event_type: str) -> None:
        message = json.dumps({"incident_id": incident_id, "type": event_type})
        for board in self._boards:
            if board.clients is not None and client_id not in board.clients:
                continue
            try:
                board.queue.put_nowait(message)
            except asyncio.QueueFull:
                continue  # it has plenty to fetch already

    async def stream(
        self, clients: frozenset[str] | None, disconnected: Callable[[], Awaitable[bool]]
    ) -> AsyncGenerator[str, None]:
        """Server-sent events for one board, until its browser goes away."""
        board = _Board(clients)
        self._boards.add(board)
        try:
            yield ": connected\n\n"
            while True:
                try:
                    message = await asyncio.wait_for(board.queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    if await disconnected():
                        return
                    yield ": keepalive\n\n"
                    continue
                yield f"event: changed\ndata: {message}\n\n"
        finally:
            self._boards.discard(board)

    def _on_message(self, message: Msg) -> None:
        try:
            envelope = events.parse_event(message.data, subject=message.subject)
        except Exception:
            return  # not for a board to judge: the consumers park what is malformed
        self.publish(envelope.incident_id, envelope.client_id, envelope.type)

    async def follow(self, nats: Callable[[], NATS | None], stopping: asyncio.Event) -> None:
        """Follows incident events on the bus once NATS is there, until `stopping`."""
        await bus_follower.follow(
            nats, ["incident.>"], self._async_handler, stopping, purpose="the console's live feed"
        )

    async def _async_handler(self, message: Msg) -> None:
        self._on_message(message)
