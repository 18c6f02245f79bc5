"""The load process: POSTs incidents to the gateway and reports every request as JSON.

It runs apart from the harness (`python -m bench.load CONFIG_JSON`) so that its own CPU shows up
separately, and it prints one JSON object on stdout when done. Two modes:

- closed: `concurrency` workers, each sending its next request when the last one answered;
- open: requests start on a fixed schedule, `rate` per second, whatever the replies do.

Each request records its scheduled start, actual start (wall clock, seconds since the epoch),
latency, HTTP status (0 when no response came, with the error's class name), incident id and
reference. Every request reports the same incident: `INCIDENT`, or the config's `incident`.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

INCIDENT = {
    "title": "Payroll portal unreachable",
    "description": "Client staff cannot reach the payroll portal since 09:10.",
    "type": "service_outage",
    "impact": "significant",
    "urgency": "high",
    "reporter": {"name": "Grace Hopper", "email": "grace@client.example"},
    "affected_assets": ["payroll-portal"],
    "labels": ["payroll"],
}


@dataclass
class Clock:
    """Wall-clock times from the monotonic clock: comparable with the events' occurred_at."""

    wall0: float
    mono0: float

    @classmethod
    def start(cls) -> Clock:
        return cls(time.time(), time.perf_counter())

    def wall(self, mono: float) -> float:
        return self.wall0 + (mono - self.mono0)


class Connections:
    """A keep-alive pool of plain HTTP/1.1 connections: far cheaper per request than a full
    client library, which matters when the load shares the CPUs with what it measures."""

    def __init__(self, url: str, size: int, time_limit: float) -> None:
        parts = urlsplit(url)
        self.time_limit = time_limit
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(size)
        self.retries = 0  # requests sent again after a kept-alive connection closed

    async def post(self, path: str, headers: bytes, body: bytes) -> tuple[int, bytes]:
        """POSTs; returns the status and the body. Raises OSError, TimeoutError or ValueError."""
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Length: {len(body)}\r\n".encode()
            + headers
            + b"\r\n"
            + body
        )
        async with self.slots:
            for attempt in (1, 2):
                connection = self.reusable()
                reused = connection is not None
                try:
                    async with asyncio.timeout(self.time_limit):
                        if connection is None:
                            connection = await asyncio.open_connection(self.host, self.port)
                        reader, writer = connection
                        writer.write(request)
                        head = await reader.readuntil(b"\r\n\r\n")
                        status, length, keep_alive = parse_head(head)
                        content = await reader.readexactly(length)
                except (asyncio.IncompleteReadError, ConnectionError) as error:
                    if connection is not None:
                        connection[1].close()
                    # uvicorn closes connections idle for 5 s; one may close just as it is
                    # reused. Nothing of an answer came, so the server dropped the request
                    # unread: send it once more on a new connection (the Idempotency-Key would
                    # make even a processed one safe to repeat).
                    nothing_came = not isinstance(error, asyncio.IncompleteReadError) or (
                        not error.partial
                    )
                    if reused and attempt == 1 and nothing_came:
                        self.retries += 1
                        continue
                    raise
                except BaseException:
                    if connection is not None:
                        connection[1].close()
                    raise
                if keep_alive:
                    self.idle.append(connection)
                else:
                    writer.close()
                return status, content
        raise AssertionError("unreachable")

    def reusable(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The most recently used idle connection that the server has not closed."""
        while self.idle:
            reader, writer = self.idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return None

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


def parse_head(head: bytes) -> tuple[int, int, bool]:
    """Status, Content-Length and keep-alive of a response head (uvicorn always sends a length)."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines[1:] if line)
    }
    if "content-length" not in fields:
        raise ValueError("response without Content-Length")
    return status, int(fields["content-length"]), fields.get("connection", "").lower() != "close"


class Load:
    def __init__(
        self,
        url: str,
        keys: list[str],
        connections: int,
        timeout: float,
        incident: dict[str, Any],
    ) -> None:
        self.pool = Connections(url, connections, timeout)
        self.headers = [
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n" for key in keys
        ]
        self.body = json.dumps(incident).encode()
        self.clock = Clock.start()
        self.records: list[list[Any]] = []
        self.errors: dict[str, int] = {}
        self.sent = 0

    async def post(self, scheduled: float) -> None:
        headers = self.headers[self.sent % len(self.headers)]
        headers += f"Idempotency-Key: {uuid.uuid4().hex}\r\n"
        self.sent += 1
        started = time.perf_counter()
        incident_id = reference = None
        try:
            status, content = await self.pool.post("/v1/incidents", headers.encode(), self.body)
            if status == 201:
                created = json.loads(content)
                incident_id, reference = created["id"], created["reference"]
            else:
                self.errors[str(status)] = self.errors.get(str(status), 0) + 1
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as error:
            status = 0
            name = type(error).__name__
            self.errors[name] = self.errors.get(name, 0) + 1
        latency = time.perf_counter() - started
        self.records.append(
            [
                round(self.clock.wall(scheduled), 6),
                round(self.clock.wall(started), 6),
                round(latency, 6),
                status,
                incident_id,
                reference,
            ]
        )

    async def closed(self, concurrency: int, duration: float) -> None:
        end = time.perf_counter() + duration

        async def worker() -> None:
            while (now := time.perf_counter()) < end:
                await self.post(now)

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def open(self, rate: float, duration: float) -> None:
        count = max(1, round(rate * duration))
        start = time.perf_counter() + 0.05
        tasks = []
        for number in range(count):
            due = start + number / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.post(due)))
        await asyncio.gather(*tasks)


async def run(config: dict[str, Any]) -> dict[str, Any]:
    load = Load(
        config["url"],
        config["keys"],
        int(config.get("connections", 256)),
        config["timeout"],
        config.get("incident", INCIDENT),
    )
    started = time.time()
    try:
        if config["mode"] == "closed":
            await load.closed(int(config["concurrency"]), float(config["duration"]))
        else:
            await load.open(float(config["rate"]), float(config["duration"]))
    finally:
        load.pool.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "started": started,
        "ended": time.time(),
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "errors": load.errors,
        "retries": load.pool.retries,
        "requests": load.records,
    }


REPOSITORY = Path(__file__).resolve().parents[1]


async def run_load_process(module: str, config: dict[str, Any]) -> dict[str, Any]:
    """Runs a load process (`python -m module config`, as this one) apart from the harness, so
    its CPU is its own; what it printed, as JSON."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        json.dumps(config),
        cwd=REPOSITORY,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 30,
    )
    stdout, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the load process {module} exited with {process.returncode}")
    result: dict[str, Any] = json.loads(stdout)
    return result


def main() -> None:
    config = json.loads(sys.argv[1])
    result = asyncio.run(run(config))
    sys.stdout.write(json.dumps(result, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
