"""How many events each service's durable consumer is handed for one incident's report, triage
and notification (issue 16, point 5): each delivery costs its service a wake-up, a transaction
and an inbox row, so a consumer takes only what it acts on. Counted on a platform of its own,
quiet but for the one incident, from JetStream's own delivery counters."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import nats
import pytest
from nats.js import JetStreamContext

from firebreak.events import INCIDENT_REPORTED, INCIDENT_TRIAGED, NOTIFICATION_SENT, STREAM
from firebreak.launcher import Platform
from firebreak.settings import SERVICES
from tests.conftest import start_platform
from tests.gateway_client import Api

FLOW = [INCIDENT_REPORTED, INCIDENT_TRIAGED, NOTIFICATION_SENT]
SETTLE_POLLS = 8  # unchanged for this many polls (past the relays' poll): nothing is in flight
POLL_SECONDS = 0.2
MAX_POLLS = 300


@pytest.fixture(scope="module")
def quiet_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    platform = start_platform(tmp_path_factory.mktemp("deliveries"))
    yield platform
    platform.stop()


async def deliveries(js: JetStreamContext) -> dict[str, int]:
    """Each durable's deliveries so far, once nothing is pending, unacknowledged or still
    being published."""
    last: tuple[int, dict[str, int]] | None = None
    unchanged = 0
    for _ in range(MAX_POLLS):
        consumers = await js.consumers_info(STREAM)
        stored = (await js.stream_info(STREAM)).state.last_seq
        counts = {
            info.name: int(info.delivered.consumer_seq or 0) if info.delivered else 0
            for info in consumers
        }
        busy = any(info.num_pending or info.num_ack_pending for info in consumers)
        unchanged = unchanged + 1 if not busy and last == (stored, counts) else 0
        if unchanged >= SETTLE_POLLS:
            return counts
        last = (stored, counts)
        await asyncio.sleep(POLL_SECONDS)
    pytest.fail(f"the consumers did not settle; last seen: {last}")


async def test_one_report_is_handed_to_each_consumer_only_where_it_acts(
    quiet_platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    api = Api(quiet_platform)
    tenant = api.new_client()
    admin = await nats.connect(quiet_platform.admin_nats_url)
    try:
        js = admin.jetstream()
        before = await deliveries(js)
        incident = api.report(tenant, impact="minor", urgency="low").json()
        api.wait_until_notified(tenant, incident["id"])
        api.wait_for_timeline(api.admin, incident["id"], len(FLOW))
        after = await deliveries(js)
    finally:
        await admin.close()
    # Each service's durable (the gateway's too; not the ordered consumers of its live board).
    handed = {name: after[name] - before.get(name, 0) for name in SERVICES}
    with capsys.disabled():
        print(f"\ndeliveries for one report → triage → notify: {handed}")
    # Review keeps every event: it is the record.
    assert handed["review"] >= len(FLOW)
    assert handed["triage"] == 1  # incident.reported
    assert handed["notify"] == 1  # incident.triaged
    assert handed["intake"] == 1  # notification.sent, which carries the triaged state
    assert handed["evidence"] == 1  # incident.triaged: whose the incident is
