"""The paging phase: P1s at a fixed rate, and how long each one's pages take to reach a real SMTP
server and a real webhook receiver (bench/receivers.py), with every page lost or doubled counted.

Why two people. A page goes to a person's contact methods in order, their email first, and to
the next method only once the one before has finally failed; one person is therefore never
paged on two channels at once. So the phase's own client gets an escalation policy for P1 whose
one step pages two on-call schedules of one responder each:

- the email responder, whose email the SMTP receiver takes: POST -> SMTP;
- the webhook responder, whose email the SMTP receiver refuses for good (550) and who added a
  signed webhook as their next method. Their first *working* method is the webhook, and POST ->
  webhook is what such a person waits for: the refused SMTP exchange, notify recording it and
  queueing the webhook, the next paging tick (FIREBREAK_PAGING_TICK_SECONDS), the signed POST.

The step gives its targets an hour to acknowledge, so every page during the bench is step 1's
and a second page of one incident at one receiver is a double. Doubles are counted when the
report is made, at the end of the whole run, so that a page sent again after its claim lapsed
(notify claims pages for two minutes) has had time to show. A page is lost when it has not
arrived by the end of the phase's drain timeout. Only this client's incidents page anybody: the
firm's default schedule, which the other phases' incidents page, is empty.

Latency is from each POST's scheduled send time (open loop, as in the latency phase) to the
moment the receiver had the whole message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.figures import fmt, ms, percentile
from bench.load import INCIDENT
from bench.observe import cpu_seconds
from bench.receivers import REFUSED_DOMAIN
from firebreak.launcher import free_ports

REPOSITORY = Path(__file__).resolve().parents[1]
P1_INCIDENT = {
    **INCIDENT,
    "title": "Trading platform down",
    "description": "No trader can log in; orders are not reaching the exchange.",
    "impact": "extensive",
    "urgency": "critical",
}
EMAIL_RESPONDER = "on-call-email@bench.example"
WEBHOOK_RESPONDER = f"on-call-webhook@{REFUSED_DOMAIN}"
STEP_MINUTES = 60  # longer than any bench: no second step, so any second page is a double
CHANNELS = ("email", "webhook")
# The subject of a page: "[P1] INC-2026-000042 Trading platform down".
SUBJECT = re.compile(r"\[(P[1-4])\] (\S+) ")


class Receivers:
    """The receivers' process as the harness sees it: where they listen, and every arrival."""

    def __init__(self) -> None:
        self.smtp_port, self.http_port = free_ports(2)
        # Standard Webhooks: `whsec_` and base64 of at least 24 random bytes.
        self.secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.arrivals: list[dict[str, Any]] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/pages"

    def platform_env(self) -> dict[str, str]:
        """Notify's email goes to the SMTP receiver (loopback: no STARTTLS)."""
        return {
            "FIREBREAK_SMTP_HOST": "127.0.0.1",
            "FIREBREAK_SMTP_PORT": str(self.smtp_port),
            "FIREBREAK_SMTP_STARTTLS": "false",
        }

    async def start(self) -> None:
        config = {"smtp_port": self.smtp_port, "http_port": self.http_port, "secret": self.secret}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.receivers",
            json.dumps(config),
            cwd=REPOSITORY,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None
        ready = await asyncio.wait_for(self.process.stdout.readline(), 30)
        if not ready or json.loads(ready) != {"ready": True}:
            raise RuntimeError(f"the receivers did not start: {ready!r}")
        self._reader = asyncio.create_task(self._read(self.process.stdout))

    async def _read(self, stdout: asyncio.StreamReader) -> None:
        async for line in stdout:
            self.arrivals.append(json.loads(line))

    def cpu_seconds(self) -> float:
        return 0.0 if self.process is None else cpu_seconds(self.process.pid)

    async def stop(self) -> None:
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            await self._reader

    def paged(self, incident_ids: list[str]) -> bool:
        """Whether every one of these incidents has a page at both receivers."""
        seen = {(a["channel"], a.get("incident")) for a in self.arrivals}
        return all((channel, i) in seen for i in incident_ids for channel in CHANNELS)

    async def wait_for_pages(self, incident_ids: list[str], within: float) -> bool:
        deadline = time.monotonic() + within
        while not self.paged(incident_ids):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True


# --- set-up, through the API -------------------------------------------------------------------


def _ok(response: httpx.Response) -> Any:
    if not response.is_success:
        request = response.request
        raise RuntimeError(
            f"paging set-up: {request.method} {request.url.path} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response.json()


async def _on_call_responder(
    http: httpx.AsyncClient, admin: dict[str, str], *, channel: str, email: str
) -> tuple[str, str]:
    """A responder alone on a schedule of their own: their id and the schedule's."""
    person = _ok(
        await http.post(
            "/v1/people",
            json={"name": f"On-call by {channel}", "email": email, "role": "responder"},
            headers=admin,
        )
    )
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    layer = {
        "participants": [person["id"]],
        "rotation": "weekly",
        "handoff_time": "00:00",
        "starts_at": (midnight - timedelta(days=1)).isoformat(),
    }
    schedule = _ok(
        await http.post(
            "/v1/schedules",
            json={
                "name": f"Bench on-call ({channel})",
                "timezone": "UTC",
                "layers": [layer],
                "overrides": [],
            },
            headers=admin,
        )
    )
    on_call = _ok(await http.get(f"/v1/schedules/{schedule['id']}/on-call", headers=admin))
    if (on_call["person"] or {}).get("id") != person["id"]:
        raise RuntimeError(f"paging set-up: schedule {schedule['id']} has {on_call} on call")
    return person["id"], schedule["id"]


async def _known_to_notify(
    http: httpx.AsyncClient, admin: dict[str, str], person_id: str, methods: int
) -> None:
    """Waits until notify has the person (from person.registered) and their methods: before
    that, a step would name them as not paged."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = _ok(await http.get(f"/v1/people/{person_id}/contact-methods", headers=admin))
        items = listed["items"]
        if len(items) == methods and items[0]["implicit"]:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"paging set-up: notify does not know person {person_id} after 30 s")


async def set_up(gateway_url: str, admin_key: str, receivers: Receivers) -> str:
    """The phase's client, its two on-call responders (the second with a webhook), their
    schedules, and the client's P1 policy paging both; returns the client's key."""
    admin = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
        client = _ok(
            await http.post("/v1/clients", json={"name": "Bench paging client"}, headers=admin)
        )
        key = _ok(
            await http.post(
                f"/v1/clients/{client['id']}/api-keys", json={"role": "client"}, headers=admin
            )
        )
        by_email, email_schedule = await _on_call_responder(
            http, admin, channel="email", email=EMAIL_RESPONDER
        )
        by_webhook, webhook_schedule = await _on_call_responder(
            http, admin, channel="webhook", email=WEBHOOK_RESPONDER
        )
        _ok(
            await http.post(
                f"/v1/people/{by_webhook}/contact-methods",
                json={
                    "kind": "webhook",
                    "address": receivers.webhook_url,
                    "secret": receivers.secret,
                },
                headers=admin,
            )
        )
        policy = {
            "name": "Bench: P1 pages both on-call responders",
            "client_id": client["id"],
            "priorities": ["P1"],
            "steps": [
                {
                    "targets": [{"schedule_id": email_schedule}, {"schedule_id": webhook_schedule}],
                    "after_minutes": STEP_MINUTES,
                }
            ],
            "repeat": 0,
        }
        _ok(await http.post("/v1/escalation-policies", json=policy, headers=admin))
        await _known_to_notify(http, admin, by_email, methods=1)
        await _known_to_notify(http, admin, by_webhook, methods=2)
    return str(key["key"])


# --- what the phase says -----------------------------------------------------------------------


def _as_expected(arrival: dict[str, Any], reference: str) -> bool:
    """A page for an accepted incident says what it should: P1, its reference, the right
    person."""
    if arrival["channel"] == "webhook":
        return arrival["priority"] == "P1" and arrival["reference"] == reference
    subject = SUBJECT.match(arrival["subject"])
    return (
        subject is not None
        and subject.groups() == ("P1", reference)
        and arrival["to"] == EMAIL_RESPONDER
    )


def page_figures(
    accepted: list[list[Any]], arrivals: list[dict[str, Any]], *, deadline: float
) -> dict[str, Any]:
    """Per receiver: latency of each accepted incident's first page, pages lost (none by
    `deadline`, wall clock) and doubled (more than one, whenever). `accepted` are the load's
    records: [scheduled send, start, latency, status, incident id, reference]."""
    sent = {record[4]: record[0] for record in accepted}
    references = {record[4]: record[5] for record in accepted}
    # channel -> incident -> [(arrival time, delivery id)]
    pages: dict[str, dict[str, list[tuple[float, str]]]] = {c: defaultdict(list) for c in CHANNELS}
    malformed = not_accepted = 0
    for arrival in arrivals:
        if arrival["channel"] not in CHANNELS:
            continue
        incident = arrival["incident"]
        if incident not in sent:
            not_accepted += 1  # its POST failed on the way back, or names no incident at all
        elif not _as_expected(arrival, references[incident]):
            malformed += 1
        else:
            pages[arrival["channel"]][incident].append((arrival["at"], arrival["id"]))
    figures: dict[str, Any] = {}
    lost_ids: set[str] = set()
    doubled_ids: set[str] = set()
    for channel, seen in pages.items():
        first = {i: min(at for at, _ in found) for i, found in seen.items()}
        in_time = {i: at for i, at in first.items() if at <= deadline}
        lost = set(sent) - set(in_time)
        doubled = {i for i, found in seen.items() if len(found) > 1}
        # In send order, so that the halves show whether paging kept up or fell behind.
        latencies = [at - sent[i] for i, at in sorted(in_time.items(), key=lambda i: sent[i[0]])]
        half = len(latencies) // 2
        figures[channel] = {
            "paged": len(in_time),
            "p50_ms": ms(percentile(latencies, 50)),
            "p99_ms": ms(percentile(latencies, 99)),
            "max_ms": ms(max(latencies, default=None)),
            "p50_first_half_ms": ms(percentile(latencies[:half], 50)),
            "p50_second_half_ms": ms(percentile(latencies[half:], 50)),
            "lost": len(lost),
            "doubled": len(doubled),
            # Copies under a delivery id already received: a resend a receiver can drop by id.
            "resent_same_id": sum(
                len(found) - len({delivery for _, delivery in found}) for found in seen.values()
            ),
        }
        lost_ids |= lost
        doubled_ids |= doubled
    unverified = sum(1 for a in arrivals if a["channel"] == "webhook_unverified")
    return {
        **figures,
        "lost": len(lost_ids),
        "doubled": len(doubled_ids),
        "malformed": malformed,
        "unverified_signatures": unverified,
        "not_accepted": not_accepted,
        "email_refused": sum(1 for a in arrivals if a["channel"] == "email_refused"),
        "ok": bool(sent) and not lost_ids and not doubled_ids and not malformed and not unverified,
    }


def table_lines(paging: dict[str, Any]) -> list[str]:
    email, webhook = paging["email"], paging["webhook"]
    return [
        "",
        f"7. paging: {'OK' if paging['ok'] else 'FAILED'} (run first, on the fresh platform; "
        f"open loop {paging['rate_per_s']:g} P1s/s for {paging['seconds']:g}s; POST scheduled "
        "send -> page at the receiver)",
        f"   accepted         {paging['accepted']}   errors {paging['errors'] or 'none'}   "
        f"paging tick {paging['paging_tick_seconds']:g}s",
        f"   email (SMTP)     p50 {fmt(email['p50_ms'])} ms   p99 {fmt(email['p99_ms'])} ms   "
        f"max {fmt(email['max_ms'])} ms   (p50 1st half {fmt(email['p50_first_half_ms'])}, "
        f"2nd half {fmt(email['p50_second_half_ms'])}; {email['paged']} paged)",
        f"   webhook          p50 {fmt(webhook['p50_ms'])} ms   p99 {fmt(webhook['p99_ms'])} ms"
        f"   max {fmt(webhook['max_ms'])} ms   (p50 1st half {fmt(webhook['p50_first_half_ms'])}"
        f", 2nd half {fmt(webhook['p50_second_half_ms'])}; {webhook['paged']} paged)",
        f"   {'':16} (each webhook page follows the refusal, 550, of its person's email: "
        f"{paging['email_refused']} refused)",
        f"   lost {paging['lost']} (email {email['lost']}, webhook {webhook['lost']})   "
        f"doubled {paging['doubled']} (email {email['doubled']}, webhook {webhook['doubled']}; "
        f"same delivery id {email['resent_same_id'] + webhook['resent_same_id']})   "
        f"malformed {paging['malformed']}   bad signatures {paging['unverified_signatures']}   "
        f"of unaccepted POSTs {paging['not_accepted']}",
        f"   CPU              {fmt(paging['cpu']['cpu_ms_per_incident'])} ms/incident "
        f"(load process {paging['load_cpu_seconds']} s, receivers "
        f"{paging['receivers_cpu_seconds']} s)",
    ]
