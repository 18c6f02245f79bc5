"""The console's live feed: a board hears of the events of the clients its viewer may see, and
of no other's."""

from __future__ import annotations

import asyncio
import json

from services.gateway.console.live import LiveFeed


async def test_each_board_hears_only_of_its_viewers_clients() -> None:
    feed = LiveFeed()

    async def never() -> bool:
        return False

    staff = feed.stream(None, never)
    alpha = feed.stream(frozenset({"alpha"}), never)
    assert await anext(staff) == ": connected\n\n"
    assert await anext(alpha) == ": connected\n\n"
    feed.publish("i-beta", "beta", "incident.reported")
    feed.publish("i-alpha", "alpha", "incident.acknowledged")
    heard = [await anext(staff), await anext(staff)]
    assert [json.loads(line.split("data: ")[1])["incident_id"] for line in heard] == [
        "i-beta",
        "i-alpha",
    ]
    only = await asyncio.wait_for(anext(alpha), 1)
    assert json.loads(only.split("data: ")[1]) == {
        "incident_id": "i-alpha",
        "type": "incident.acknowledged",
    }
    await staff.aclose()
    await alpha.aclose()
    feed.publish("i-alpha", "alpha", "incident.resolved")  # no board left: nothing waits
