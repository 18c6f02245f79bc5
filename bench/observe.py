"""What the harness watches: the platform's processes in /proc, and the events on the stream."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.bus import servers
from firebreak.events import (
    INCIDENT_REPORTED,
    INCIDENT_TRIAGED,
    NOTIFICATION_SENT,
    STREAM,
    SUBJECT_PREFIX,
)
from firebreak.settings import GRPC_SERVICES

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FLOW = (INCIDENT_REPORTED, INCIDENT_TRIAGED, NOTIFICATION_SENT)


# --- /proc ------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of stat


def rss_bytes(pid: int) -> int:
    """VmRSS of one process; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    return {label: cpu_seconds(pid) for label, pid in pids.items()}


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {label: after[label] - before[label] for label in before}


class BackendCpu:
    """CPU of the PostgreSQL server processes that serve the bench's databases (not platform
    processes, but work the platform causes). Each backend's last reading is kept, so one
    that exits still counts up to its last sample."""

    def __init__(self, marker: str) -> None:
        self.marker = marker.encode()  # appears in each backend's command line: its database
        self.seen: dict[int, float] = {}
        self.lock = threading.Lock()

    def total(self) -> float:
        """Cumulative CPU-seconds of every backend seen so far; refreshes first."""
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                    if self.marker not in cmdline.read():
                        continue
            except OSError:
                continue
            seconds = cpu_seconds(int(entry.name))
            with self.lock:
                self.seen[int(entry.name)] = max(seconds, self.seen.get(int(entry.name), 0.0))
        with self.lock:
            return sum(self.seen.values())


class MemorySampler:
    """Samples every process's RSS in a thread; keeps the peak while `loaded` is set."""

    def __init__(
        self, pids: dict[str, int], backends: BackendCpu | None = None, interval: float = 0.25
    ) -> None:
        self.pids = pids
        self.backends = backends  # refreshed on each tick, so exiting backends are counted
        self.interval = interval
        self.loaded = threading.Event()
        self.peak: dict[str, int] = dict.fromkeys(pids, 0)
        self.peak_total = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def sample(self) -> dict[str, int]:
        return {label: rss_bytes(pid) for label, pid in self.pids.items()}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            if self.backends is not None:
                self.backends.total()
            if not self.loaded.is_set():
                continue
            rss = self.sample()
            for label, value in rss.items():
                self.peak[label] = max(self.peak[label], value)
            self.peak_total = max(self.peak_total, sum(rss.values()))


# --- the stream -------------------------------------------------------------------------------


@dataclass
class IncidentEvents:
    """Every event seen for one incident: the occurred_at of each, by type, and when the first
    of each type was stored in the stream (its relay published it); the distinct event ids of
    each type (two ids of one type: an effect applied twice, not a republished event)."""

    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    stored: dict[str, float] = field(default_factory=dict)
    ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


class EventWatcher:
    """Reads every event on the stream with an ordered consumer, from its first message."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.incidents: dict[str, IncidentEvents] = defaultdict(IncidentEvents)
        self.by_type: dict[str, list[float]] = defaultdict(list)  # occurred_at, per type
        self.last_sequence = 0
        self.malformed = 0
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._subscription: JetStreamContext.PushSubscription | None = None

    async def start(self) -> None:
        self._nc = await nats.connect(
            servers=servers(self.url), name="bench-watcher", error_cb=_reconnecting
        )
        self._js = self._nc.jetstream()
        await self.subscribe()

    async def subscribe(self) -> None:
        """Reads on from the message after the last one read (from the first, at the start):
        also after a NATS restart that forgot the ordered consumer."""
        assert self._js is not None
        if self._subscription is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._subscription.unsubscribe()
        self._subscription = await self._js.subscribe(
            SUBJECT_PREFIX + ">",
            stream=STREAM,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=self.last_sequence + 1),
            cb=self._on_message,
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
        )

    async def stop(self) -> None:
        if self._nc is not None:
            await self._nc.close()

    async def _on_message(self, message: Msg) -> None:
        sequence = message.metadata.sequence.stream
        if sequence <= self.last_sequence:
            return  # an ordered consumer does not redeliver; be sure all the same
        self.last_sequence = sequence
        envelope = EventEnvelope()
        try:
            envelope.ParseFromString(message.data)
        except Exception:  # protobuf's DecodeError and friends
            self.malformed += 1
            return
        moment = envelope.occurred_at.seconds + envelope.occurred_at.nanos / 1e9
        events = self.incidents[envelope.incident_id]
        events.times[envelope.type].append(moment)
        events.ids[envelope.type].add(envelope.id)
        events.stored.setdefault(envelope.type, message.metadata.timestamp.timestamp())
        self.by_type[envelope.type].append(moment)

    def first(self, incident_id: str, event_type: str) -> float | None:
        found = self.incidents.get(incident_id)
        if found is None or not found.times.get(event_type):
            return None
        return found.times[event_type][0]

    def stored(self, incident_id: str, event_type: str) -> float | None:
        found = self.incidents.get(incident_id)
        return None if found is None else found.stored.get(event_type)

    def complete(self, incident_id: str) -> bool:
        found = self.incidents.get(incident_id)
        return found is not None and all(found.times.get(kind) for kind in FLOW)

    async def stream_last_sequence(self) -> int:
        assert self._js is not None
        info = await self._js.stream_info(STREAM)
        return int(info.state.last_seq)

    async def consumers_backlog(self) -> int:
        """Messages the services' durable consumers have not yet processed and acknowledged."""
        assert self._js is not None
        backlog = 0
        for name in GRPC_SERVICES:
            try:
                info = await self._js.consumer_info(STREAM, name)
            except nats.js.errors.NotFoundError:
                continue  # e.g. the gateway, which consumes nothing
            backlog += int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        return backlog

    async def wait_until_quiet(self, incident_ids: list[str], within: float) -> bool:
        """Waits until every incident has its three events, the watcher has read the whole
        stream, and every service consumer has processed everything; False on timeout."""
        deadline = time.monotonic() + within
        pending = [incident for incident in incident_ids if not self.complete(incident)]
        while time.monotonic() < deadline:
            pending = [incident for incident in pending if not self.complete(incident)]
            if not pending:
                last = await self.stream_last_sequence()
                if self.last_sequence >= last and await self.consumers_backlog() == 0:
                    # The relays may still hold a row the consumers' last commit produced.
                    await asyncio.sleep(0.3)
                    if await self.stream_last_sequence() == last:
                        return True
            await asyncio.sleep(0.1)
        return False


async def _reconnecting(error: Exception) -> None:
    """The watcher reconnects by itself: a NATS outage is for the harness to report, not for
    nats-py's default handler to print a traceback of every attempt."""
