"""The storm's load process: alert events sent as fast as it can, and what was answered for each.

It runs apart from the harness (`python -m bench.storm_load CONFIG_JSON`) so that its own CPU
shows up separately, and prints one JSON object on stdout when done. Event `i` of `events`
triggers dedup key `i % keys`. Two kinds:

- events_v2: one event per `POST /v2/enqueue`, `concurrency` requests in flight at a time;
- alertmanager: `POST /v1/alerts/alertmanager` webhooks of `batch` consecutive events each,
  `concurrency` in flight.

A 202 (or 200) counts each of its events as accepted, on its key; a 429 is sent again a second
later (the bench's integrations have a rate above the storm's, so none is expected); any
other answer counts as refused, and no answer at all (or a 5xx) as uncertain: such an event may
or may not have been committed, so a run with any is not a clean count.

It uses bench/load.py's keep-alive pool of plain HTTP/1.1 connections rather than a client
library: on this machine the load shares the CPUs with the platform it measures, and a full
client costs several times as much CPU per request.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.figures import ms, percentile
from bench.load import Connections

# A request of the storm: path, headers, body, and the keys of its events.
Request = tuple[str, bytes, bytes, list[int]]


def dedup_key(prefix: str, number: int) -> str:
    return f"{prefix}-{number:05d}"


def enqueue_body(routing_key: str, key: str) -> bytes:
    """A PagerDuty Events v2 trigger, as a PagerDuty client sends it."""
    return json.dumps(
        {
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": key,
            "payload": {
                "summary": f"Disk almost full on {key}",
                "source": f"{key}.storm.example",
                "severity": "error",
                "component": "disk",
                "custom_details": {"free_percent": 3},
            },
        }
    ).encode()


def alertmanager_body(fingerprints: list[str]) -> bytes:
    """An Alertmanager webhook (version 4) of firing alerts, as Alertmanager sends it."""
    return json.dumps(
        {
            "version": "4",
            "groupKey": '{}:{alertname="DiskFull"}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "firebreak",
            "groupLabels": {"alertname": "DiskFull"},
            "commonLabels": {"alertname": "DiskFull", "severity": "error"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {
                        "alertname": "DiskFull",
                        "instance": f"{fingerprint}:9100",
                        "severity": "error",
                    },
                    "annotations": {"summary": "disk almost full"},
                    "startsAt": "2026-03-02T10:00:00.000Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus:9090/graph?g0.expr=disk",
                    "fingerprint": fingerprint,
                }
                for fingerprint in fingerprints
            ],
        }
    ).encode()


@dataclass
class Storm:
    config: dict[str, Any]
    pool: Connections
    accepted: list[int]  # per key
    errors: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    answered: list[tuple[float, int]] = field(default_factory=list)  # (when, events accepted)
    throttled: int = 0
    uncertain: int = 0
    last_answer: float = 0.0

    async def send(self, path: str, headers: bytes, body: bytes, keys: list[int]) -> None:
        """Sends one request until it is answered other than 429; counts its events."""
        while True:
            started = time.perf_counter()
            try:
                status, _ = await self.pool.post(path, headers, body)
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as error:
                self._error(type(error).__name__, len(keys), uncertain=True)
                return
            self.latencies.append(time.perf_counter() - started)
            self.last_answer = time.time()
            if status == 429:
                # Retry-After is whole seconds, at least one: try again after one.
                self.throttled += 1
                await asyncio.sleep(1.0)
                continue
            if status in (200, 202):
                for key in keys:
                    self.accepted[key] += 1
                self.answered.append((self.last_answer, len(keys)))
            else:
                self._error(str(status), len(keys), uncertain=status >= 500)
            return

    def _error(self, name: str, events: int, *, uncertain: bool) -> None:
        self.errors[name] = self.errors.get(name, 0) + events
        if uncertain:
            self.uncertain += events

    async def run(self, requests: list[Request]) -> None:
        queue = iter(requests)

        async def worker() -> None:
            for request in queue:
                await self.send(*request)

        await asyncio.gather(*(worker() for _ in range(self.config["concurrency"])))


def plan(config: dict[str, Any]) -> list[Request]:
    """Every request of the storm, in the order they are sent."""
    events, keys = config["events"], config["keys"]
    names = [dedup_key(config["prefix"], number) for number in range(keys)]
    content_type = b"Content-Type: application/json\r\n"
    if config["kind"] == "events_v2":
        bodies = [enqueue_body(config["key"], name) for name in names]
        return [("/v2/enqueue", content_type, bodies[i % keys], [i % keys]) for i in range(events)]
    headers = content_type + f"Authorization: Bearer {config['key']}\r\n".encode()
    requests = []
    for first in range(0, events, config["batch"]):
        numbers = [i % keys for i in range(first, min(events, first + config["batch"]))]
        body = alertmanager_body([names[number] for number in numbers])
        requests.append(("/v1/alerts/alertmanager", headers, body, numbers))
    return requests


def second_half_rate(answered: list[tuple[float, int]]) -> float | None:
    """Events/s accepted over the second half of the run's events: once the first triggers of
    every key have opened their incidents (and the pipeline is busy with them), how fast the
    platform absorbs triggers that only count."""
    answered = sorted(answered)
    total = sum(events for _, events in answered)
    so_far = 0
    for when, events in answered:
        so_far += events
        if so_far * 2 >= total:
            seconds = answered[-1][0] - when
            return round((total - so_far) / seconds, 1) if seconds > 0 else None
    return None


async def run(config: dict[str, Any]) -> dict[str, Any]:
    storm = Storm(
        config,
        Connections(config["url"], config["concurrency"], config["timeout"]),
        [0] * config["keys"],
    )
    requests = plan(config)
    started = time.time()
    try:
        await storm.run(requests)
    finally:
        storm.pool.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "started": started,
        "ended": time.time(),
        "last_answer": storm.last_answer or time.time(),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "requests": len(storm.latencies),
        "accepted_per_key": storm.accepted,
        "errors": storm.errors,
        "throttled": storm.throttled,
        "uncertain": storm.uncertain,
        "connection_retries": storm.pool.retries,
        "second_half_events_per_s": second_half_rate(storm.answered),
        "http_p50_ms": ms(percentile(storm.latencies, 50)),
        "http_p99_ms": ms(percentile(storm.latencies, 99)),
        "http_max_ms": ms(max(storm.latencies, default=None)),
    }


def main() -> None:
    config = json.loads(sys.argv[1])
    result = asyncio.run(run(config))
    sys.stdout.write(json.dumps(result, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
