"""The harness's clients: an open-loop stream of incident reports and, on a share of them, a
responder working the incident through acknowledge, a role, containment and resolution.

Each request is retried as a careful client would: a 503 after its Retry-After, no answer
after a short back-off, a report always under its first Idempotency-Key, so that a retried
report is neither lost nor doubled. Every attempt is recorded for the figures.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.load import INCIDENT

FIRST_BACKOFF_SECONDS = 0.5
LONGEST_BACKOFF_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 10.0
# Requests in flight at once, as a client fleet's connection pools would allow; the rest wait
# their turn here (httpx's own queue costs time quadratic in its length).
CONNECTIONS = 128
# The states from which each command moves an incident on, and the state it reaches.
COMMAND_STATES = {
    "acknowledge": ("triaged", "acknowledged"),
    "contain": ("acknowledged", "contained"),
    "resolve": ("contained", "resolved"),
}
STATE_ORDER = ["reported", "triaged", "acknowledged", "contained", "resolved", "closed"]


@dataclass
class Attempt:
    """One HTTP request: what, when it was sent (wall clock), what came back."""

    kind: str  # "report", "read" or a command
    sent_at: float
    answered_at: float  # or gave up waiting: what came back tells of the platform then
    status: int  # 0: no answer
    error: str = ""  # the exception's class when no answer came
    retry_after: bool = False  # the answer carried Retry-After
    detail: str = ""  # a problem's detail, when the answer was one


@dataclass
class Report:
    """One incident a client reported, under one Idempotency-Key however often it was sent."""

    key: str
    due_at: float  # when the open loop scheduled it (wall clock)
    incident_id: str | None = None
    accepted_at: float | None = None  # when the 201 came
    gave_up: bool = False
    worked: bool = False  # chosen for lifecycle commands


@dataclass
class Lifecycle:
    """What the responders did to one incident: the commands that took effect."""

    incident_id: str
    done: list[str] = field(default_factory=list)
    failed: str = ""  # why the responder stopped, if they did


class Clients:
    """The load: `run()` until `stop()`; `attempts`, `reports` and `lifecycles` say what
    happened."""

    def __init__(
        self,
        gateway_urls: list[str],
        client_keys: list[str],
        staff_keys: list[str],
        lead_person_id: str,
        *,
        rate: float,
        command_share: float,
        give_up_after: float,
    ) -> None:
        # One pool per gateway replica, taken in turn, as a Service spreads connections; a
        # request that got no answer is retried on the next one.
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        self.gateways = [
            httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_SECONDS, limits=limits)
            for url in gateway_urls
        ]
        self._turn = 0
        self.slots = asyncio.Semaphore(CONNECTIONS)
        self.client_keys = client_keys
        self.staff_keys = staff_keys  # personal keys: whoever acknowledges becomes commander
        self.lead_person_id = lead_person_id  # made communications lead of worked incidents
        self.rate = rate
        self.command_share = command_share
        # A client gives up on a request after this long; a report given up is not accepted.
        self.give_up_after = give_up_after
        self.attempts: list[Attempt] = []
        self.reports: list[Report] = []
        self.lifecycles: list[Lifecycle] = []
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._random = random.Random(12)

    def stop(self) -> None:
        """Stops sending new reports; those under way carry on until answered or given up."""
        self._stopping.set()

    async def run(self) -> None:
        """The open loop: a report every 1/rate s, whatever the answers do."""
        start = time.monotonic()
        number = 0
        while not self._stopping.is_set():
            due = start + number / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stopping.wait(), delay)
                    break
                except TimeoutError:
                    pass
            report = Report(
                key=uuid.uuid4().hex,
                due_at=time.time(),
                worked=self._random.random() < self.command_share,
            )
            self.reports.append(report)
            self._spawn(self._report(report, self.client_keys[number % len(self.client_keys)]))
            number += 1
        while self._tasks:
            await asyncio.gather(*list(self._tasks))
        for http in self.gateways:
            await http.aclose()

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(
        self, http: httpx.AsyncClient, kind: str, method: str, path: str, key: str, **request: Any
    ) -> httpx.Response | None:
        """One request to one gateway, recorded; None when no answer came."""
        headers = {"Authorization": f"Bearer {key}", **request.pop("headers", {})}
        async with self.slots:
            sent_at = time.time()
            try:
                response = await http.request(method, path, headers=headers, **request)
            except httpx.HTTPError as error:
                self.attempts.append(Attempt(kind, sent_at, time.time(), 0, type(error).__name__))
                return None
        detail = ""
        if response.headers.get("content-type") == "application/problem+json":
            detail = str(response.json().get("detail", ""))[:200]
        self.attempts.append(
            Attempt(
                kind,
                sent_at,
                time.time(),
                response.status_code,
                retry_after="retry-after" in response.headers,
                detail=detail,
            )
        )
        return response

    async def _retrying(
        self, kind: str, method: str, path: str, key: str, **request: Any
    ) -> httpx.Response | None:
        """Sends until an answer other than 503 and 5xx comes (a 500 is recorded, and retried
        as a client would); None after `give_up_after` s."""
        give_up_at = time.monotonic() + self.give_up_after
        backoff = FIRST_BACKOFF_SECONDS
        self._turn += 1
        attempt = self._turn  # each attempt goes to the next gateway
        while time.monotonic() < give_up_at:
            http = self.gateways[attempt % len(self.gateways)]
            attempt += 1
            response = await self._send(http, kind, method, path, key, **dict(request))
            if response is not None and response.status_code < 500:
                return response
            if response is not None and "retry-after" in response.headers:
                await asyncio.sleep(float(response.headers["retry-after"]))
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, LONGEST_BACKOFF_SECONDS)
        return None

    async def _report(self, report: Report, key: str) -> None:
        response = await self._retrying(
            "report",
            "POST",
            "/v1/incidents",
            key,
            json=INCIDENT,
            headers={"Idempotency-Key": report.key},
        )
        if response is None or response.status_code != 201:
            report.gave_up = True
            return
        report.incident_id, report.accepted_at = response.json()["id"], time.time()
        if report.worked:
            lifecycle = Lifecycle(report.incident_id)
            self.lifecycles.append(lifecycle)
            await self._work(lifecycle)

    async def _status(self, incident_id: str, key: str) -> str | None:
        response = await self._retrying("read", "GET", f"/v1/incidents/{incident_id}", key)
        if response is None or response.status_code != 200:
            return None
        status: str = response.json()["status"]
        return status

    async def _work(self, lifecycle: Lifecycle) -> None:
        """Acknowledge, a communications lead, the containment tasks, contain, resolve."""
        key = self._random.choice(self.staff_keys)
        incident = f"/v1/incidents/{lifecycle.incident_id}"
        give_up_at = time.monotonic() + self.give_up_after
        while (status := await self._status(lifecycle.incident_id, key)) == "reported":
            if time.monotonic() > give_up_at:
                lifecycle.failed = "never triaged"
                return
            await asyncio.sleep(1.0)
        if status != "triaged":
            lifecycle.failed = f"found {status}"
            return
        if not await self._command(lifecycle, "acknowledge", key):
            return
        lead = await self._retrying(
            "assign_role",
            "PUT",
            f"{incident}/roles/communications_lead",
            key,
            json={"person_id": self.lead_person_id},
        )
        if lead is None or lead.status_code != 200:
            lifecycle.failed = f"assign_role answered {None if lead is None else lead.status_code}"
            return
        lifecycle.done.append("assign_role")
        tasks = await self._retrying("read", "GET", f"{incident}/tasks", key)
        if tasks is None or tasks.status_code != 200:
            lifecycle.failed = "tasks unreadable"
            return
        for task in tasks.json()["items"]:
            if task["required"] and task["phase"] == "containment" and task["status"] != "done":
                await self._retrying(
                    "task",
                    "PATCH",
                    f"{incident}/tasks/{task['id']}",
                    key,
                    json={"status": "done", "note": "done"},
                )
        for command, body in (
            ("contain", {"summary": "Host isolated"}),
            ("resolve", {"summary": "Restored from backup"}),
        ):
            if not await self._command(lifecycle, command, key, body):
                return

    async def _command(
        self, lifecycle: Lifecycle, command: str, key: str, body: dict[str, str] | None = None
    ) -> bool:
        """Sends a state command; a 409 after an unanswered attempt is checked against the
        incident's state: the first attempt may have taken effect after all."""
        path = f"/v1/incidents/{lifecycle.incident_id}/{command}"
        response = await self._retrying(command, "POST", path, key, json=body)
        if response is not None and response.status_code == 200:
            lifecycle.done.append(command)
            return True
        if response is not None and response.status_code == 409:
            status = await self._status(lifecycle.incident_id, key)
            reached = COMMAND_STATES[command][1]
            if status in STATE_ORDER and STATE_ORDER.index(status) >= STATE_ORDER.index(reached):
                lifecycle.done.append(command)
                return True
        answer = None if response is None else f"{response.status_code} {response.text[:200]}"
        lifecycle.failed = f"{command} answered {answer}"
        return False
