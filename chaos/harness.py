"""`make chaos`: a private platform on PostgreSQL of its own, under steady open-loop load,
with faults injected one after another. After each, the harness waits until every report sent
before its restoration is accepted (or given up) and through the pipeline, then goes on.

Faults (`--faults`, comma-separated):
  kill:LABEL[+LABEL]  kill -9 of processes at once; the launcher's supervision restarts them
  nats-stop           the nats-server stopped for --nats-outage s, then started again
  nats-kill           (scaled out) kill -9 of the NATS server leading the stream, down for
                      --nats-outage s; reports how long until a new leader was elected
  postgres-kill       SIGKILL to every PostgreSQL process, started again --postgres-outage s later
  sigstop:LABEL       SIGSTOP for the bus's ack wait + --pause-extra s, then SIGCONT

It exits 1 on any incident lost, any effect doubled, any 500, or a fault the platform did not
recover from; the figures go to stdout as a table and to a JSON file.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import re
import shutil
import signal
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.observe import FLOW, EventWatcher
from chaos import faults, topology
from chaos.clients import Clients
from chaos.faults import Fault, Stage
from chaos.verdict import (
    STEADY,
    Findings,
    Window,
    database_findings,
    stream_findings,
    table,
    verdict,
    window_figures,
)
from firebreak.events import NOTIFICATION_SENT
from firebreak.launcher import Platform

REPOSITORY = Path(__file__).resolve().parents[1]
SINGLE_FAULTS = (
    "kill:gateway,kill:intake,kill:triage,kill:notify,kill:evidence,kill:review,"
    "kill:intake+triage,nats-stop,postgres-kill,sigstop:triage"
)
SCALED_FAULTS = (
    "kill:gateway-2,kill:intake-2,kill:triage-2,kill:notify-2,nats-kill,sigstop:triage-2"
)
LOGGED_ERROR = re.compile(r"ERROR|CRITICAL|Traceback|exited with")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chaos", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--scale-out", action="store_true", help="replicas and a NATS cluster")
    parser.add_argument("--faults", help=f"default: {SINGLE_FAULTS} (scaled: {SCALED_FAULTS})")
    parser.add_argument("--rate", type=float, default=100.0, help="incident reports per second")
    parser.add_argument(
        "--command-share", type=float, default=0.05, help="share of incidents worked through"
    )
    parser.add_argument("--steady", type=float, default=10.0, help="s of load before each fault")
    parser.add_argument("--nats-outage", type=float, default=30.0)
    parser.add_argument("--postgres-outage", type=float, default=5.0)
    parser.add_argument("--pause-extra", type=float, default=10.0)
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument("--give-up", type=float, default=180.0, help="s a client retries for")
    parser.add_argument("--clients", type=int, default=4, help="client organisations")
    parser.add_argument("--sample", type=int, default=100, help="incidents checked over HTTP")
    parser.add_argument("--var-dir", type=Path, help="default: var/chaos/<timestamp>")
    parser.add_argument("--keep-var", action="store_true", help="keep the var dir (logs, data)")
    parser.add_argument("--json", type=Path, help="default: var/chaos/chaos-<timestamp>.json")
    args = parser.parse_args(argv)
    args.faults = args.faults or (SCALED_FAULTS if args.scale_out else SINGLE_FAULTS)
    return args


def progress(what: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


class Chaos:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.var_dir: Path = (args.var_dir or REPOSITORY / "var" / "chaos" / stamp).resolve()
        self.json_path: Path = args.json or REPOSITORY / "var" / "chaos" / f"chaos-{stamp}.json"
        self.nats_urls: list[str] = []
        self.windows: list[Window] = []
        self.settled = 0  # reports before this index are accepted and through, or given up

    async def run(self) -> int:
        args = self.args
        progress(f"var dir {self.var_dir}")
        postgres, urls = await asyncio.to_thread(topology.start_postgres)
        platform = topology.new_platform(
            self.var_dir,
            urls,
            {"FIREBREAK_STREAM_REPLICAS": str(topology.CLUSTER_SIZE)} if args.scale_out else {},
        )
        watcher: EventWatcher | None = None
        report: dict[str, Any] = {"scale_out": args.scale_out, "rate_per_s": args.rate}
        reasons = ["did not finish"]
        try:
            ports = await asyncio.to_thread(self.start_platform, platform)
            watcher = EventWatcher(platform.admin_nats_url)
            stage = Stage(platform, postgres, watcher, ports)
            await topology.wait_until_serving(stage)
            await topology.watch_stream(watcher)
            clients = await self.clients(platform, ports)
            report.update(await self.drive(stage, clients))
            findings, watcher = await self.check(stage, clients, urls)
            end = time.time()
            rows = [
                window_figures(window, following, clients, watcher, findings)
                for window, following in zip(
                    self.windows,
                    [w.injected_at for w in self.windows[1:]] + [end],
                    strict=True,
                )
            ]
            for window, row in zip(self.windows, rows, strict=True):
                row.update(self.flow_after(window, clients, watcher))
            reasons = verdict(rows, findings)
            write_attempts(self.var_dir / "attempts.csv", clients)
            report.update(
                faults=rows,
                lost=findings.lost,
                doubled=findings.doubled,
                gave_up=sum(1 for r in clients.reports if r.gave_up),
                in_stream_not_accepted=self.orphans(clients, watcher),
                lifecycles_done=sum(1 for c in clients.lifecycles if not c.failed),
                lifecycles_failed=[c.failed for c in clients.lifecycles if c.failed][:20],
                verdict=reasons,
            )
            print(table(rows, reasons), flush=True)
        finally:
            for process in platform.processes.values():  # none left stopped by SIGSTOP
                if process.poll() is None:
                    os.kill(process.pid, signal.SIGCONT)
            if watcher is not None:
                await watcher.stop()
            progress("stopping the platform")
            await asyncio.to_thread(platform.stop)
            await asyncio.to_thread(postgres.remove)
            if reasons or args.keep_var:
                report["var_dir"] = str(self.var_dir)
            else:
                shutil.rmtree(self.var_dir, ignore_errors=True)
            self.json_path.parent.mkdir(parents=True, exist_ok=True)
            self.json_path.write_text(json.dumps(report, indent=1, default=str))
            progress(f"figures in {self.json_path}")
        return 1 if reasons else 0

    def start_platform(self, platform: Platform) -> dict[str, int]:
        if not self.args.scale_out:
            return topology.start_single(platform)
        self.nats_urls = topology.start_nats_cluster(platform)
        platform.start_nats = False
        platform.nats_url = ",".join(self.nats_urls)
        return topology.start_scaled(platform)

    async def clients(self, platform: Platform, ports: dict[str, int]) -> Clients:
        """Client organisations with client keys, responders with personal keys, the load."""
        admin = {"Authorization": f"Bearer {platform.admin_key}"}
        async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30) as http:

            async def created(path: str, body: dict[str, Any]) -> dict[str, Any]:
                response = await http.post(path, json=body, headers=admin)
                response.raise_for_status()
                result: dict[str, Any] = response.json()
                return result

            client_keys = []
            for number in range(self.args.clients):
                client = await created("/v1/clients", {"name": f"Chaos client {number}"})
                key = await created(f"/v1/clients/{client['id']}/api-keys", {"role": "client"})
                client_keys.append(key["key"])
            people = []  # one acknowledges (and commands), one is made communications lead;
            # few, as notify pages each responder of every incident
            for number in range(2):
                person = await created(
                    "/v1/people",
                    {
                        "name": f"Responder {number}",
                        "email": f"responder-{uuid.uuid4().hex[:8]}@firm.example",
                        "role": "responder",
                    },
                )
                key = await created(f"/v1/people/{person['id']}/api-keys", {})
                people.append((person["id"], key["key"]))
        return Clients(
            [
                f"http://127.0.0.1:{port}"
                for label, port in ports.items()
                if label.startswith("gateway")
            ],
            client_keys,
            [key for _, key in people[1:]],
            people[0][0],
            rate=self.args.rate,
            command_share=self.args.command_share,
            give_up_after=self.args.give_up,
        )

    async def drive(self, stage: Stage, clients: Clients) -> dict[str, Any]:
        """The load throughout, a steady spell, then each fault in turn."""
        load = asyncio.create_task(clients.run())
        began = time.time()
        progress(f"steady load, {self.args.rate:g} reports/s")
        await asyncio.sleep(self.args.steady)
        self.windows.append(Window(STEADY, began, time.time(), drained=True))
        for name in self.args.faults.split(","):
            offsets = log_offsets(self.var_dir / "logs")
            window = Window(name, time.time(), 0.0)
            progress(f"fault: {name}")
            try:
                fault = await self.fault(name, stage, window)
                window.fault = fault.name
                await fault.inject()
                await asyncio.sleep(fault.hold)
                await fault.restore()
            except Exception as error:  # reported as the fault's failure; the run goes on
                window.error = f"{type(error).__name__}: {error}"
            window.restored_at = time.time()
            window.drained = await self.wait_drained(clients, stage.watcher, window.restored_at)
            window.log_lines = new_error_lines(self.var_dir / "logs", offsets)
            self.windows.append(window)
            progress(f"  drained: {window.drained}; steady load")
            await asyncio.sleep(self.args.steady)
        clients.stop()
        await load
        return {"load_seconds": round(time.time() - began, 1), "reports": len(clients.reports)}

    async def fault(self, name: str, stage: Stage, window: Window) -> Fault:
        kind, _, target = name.partition(":")
        if kind == "kill":
            return faults.kill(stage, *target.split("+"))
        if kind == "sigstop":
            return faults.pause(stage, target, self.args.pause_extra)
        if name == "nats-stop":
            return faults.stop_nats(stage, self.args.nats_outage)
        if name == "postgres-kill":
            return faults.kill_postgres(stage, self.args.postgres_outage)
        if name == "nats-kill":
            return await faults.kill_nats_leader(
                stage, self.nats_urls, self.args.nats_outage, window.extra
            )
        raise ValueError(f"unknown fault {name!r}")

    async def wait_drained(self, clients: Clients, watcher: EventWatcher, until: float) -> bool:
        """Waits until every report sent before `until` is given up or accepted and through the
        pipeline; False after --drain-timeout."""
        deadline = time.monotonic() + self.args.drain_timeout
        while time.monotonic() < deadline:
            reports = clients.reports
            while self.settled < len(reports) and (
                reports[self.settled].gave_up
                or (
                    reports[self.settled].incident_id is not None
                    and watcher.complete(str(reports[self.settled].incident_id))
                )
            ):
                self.settled += 1
            pending = [
                r
                for r in reports[self.settled :]
                if r.due_at <= until
                and not r.gave_up
                and (r.incident_id is None or not watcher.complete(r.incident_id))
            ]
            if not pending:
                return True
            await asyncio.sleep(0.5)
        unanswered = sum(1 for r in pending if r.incident_id is None)
        examples = [self.events_of(r.incident_id, watcher) for r in pending[:3]]
        progress(
            f"  not drained: {unanswered} reports unanswered, {len(pending) - unanswered} accepted"
            f" but not through, e.g. {examples}"
        )
        return False

    @staticmethod
    def events_of(incident_id: str | None, watcher: EventWatcher) -> str:
        events = watcher.incidents.get(incident_id or "")
        return f"{incident_id}: {sorted(events.times) if events else []}"

    async def check(
        self, stage: Stage, clients: Clients, urls: dict[str, str]
    ) -> tuple[Findings, EventWatcher]:
        """Every accepted incident on the stream and in the databases; a sample over HTTP.
        The stream is read again from its start by a new reader, whatever the live one
        missed across the faults; the figures come from it."""
        progress("final drain and checks")
        await self.wait_drained(clients, stage.watcher, time.time())
        # The last notification on the stream is not the end: review, which keeps the
        # timelines the checks read, may still be working through its backlog.
        deadline = time.monotonic() + self.args.drain_timeout
        while time.monotonic() < deadline:
            if not await stage.watcher.consumers_backlog():
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)  # late doubles: a redelivery still on its way
        await stage.watcher.stop()
        whole = EventWatcher(stage.platform.admin_nats_url)
        await whole.start()
        deadline = time.monotonic() + self.args.drain_timeout
        while whole.last_sequence < await whole.stream_last_sequence():
            if time.monotonic() > deadline:
                raise TimeoutError("the stream could not be read to its end")
            await asyncio.sleep(0.2)
        accepted = [r.incident_id for r in clients.reports if r.incident_id is not None]
        findings = Findings()
        stream_findings(whole, accepted, findings)
        await database_findings(urls, accepted, findings)
        await self.http_findings(stage.platform, accepted, findings)
        return findings, whole

    async def http_findings(self, platform: Platform, accepted: list[str], found: Findings) -> None:
        sample = random.Random(0).sample(accepted, min(self.args.sample, len(accepted)))
        admin = {"Authorization": f"Bearer {platform.admin_key}"}
        async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=10) as http:
            for incident_id in sample:
                incident = await http.get(f"/v1/incidents/{incident_id}", headers=admin)
                if incident.status_code != 200 or incident.json()["notified_at"] is None:
                    found.add_lost(incident_id, f"over HTTP: {incident.status_code}")
                    continue
                timeline = await http.get(f"/v1/incidents/{incident_id}/timeline", headers=admin)
                kinds = [e["type"] for e in timeline.json()["entries"] if e["type"] in FLOW]
                if len(kinds) > len(FLOW):
                    found.add_doubled(incident_id, f"timeline over HTTP: {kinds}")
                elif kinds != list(FLOW):
                    found.add_lost(incident_id, f"timeline over HTTP: {kinds}")

    def flow_after(
        self, window: Window, clients: Clients, watcher: EventWatcher
    ) -> dict[str, float | None]:
        """From the injection: the first event the stream stored, the first report sent after
        it that made it through the pipeline."""
        stored = [
            moment
            for events in watcher.incidents.values()
            for moment in events.stored.values()
            if moment > window.injected_at
        ]
        through = [
            moment
            for r in clients.reports
            if r.due_at > window.injected_at and r.incident_id is not None
            if (moment := watcher.stored(r.incident_id, NOTIFICATION_SENT)) is not None
        ]
        return {
            "first_event_stored_s": round(min(stored) - window.injected_at, 2) if stored else None,
            "first_report_through_s": (
                round(min(through) - window.injected_at, 2) if through else None
            ),
        }

    @staticmethod
    def orphans(clients: Clients, watcher: EventWatcher) -> int:
        """Incidents reported on the stream that no client was told of (it gave up waiting)."""
        accepted = {r.incident_id for r in clients.reports}
        return sum(
            1
            for incident_id, events in watcher.incidents.items()
            if incident_id not in accepted and events.times.get(FLOW[0])
        )


def write_attempts(path: Path, clients: Clients) -> None:
    """Every request the clients sent, for a closer look at a failed run."""
    with path.open("w", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["sent_at", "answered_at", "kind", "status", "error", "retry_after", "detail"]
        )
        for a in clients.attempts:
            writer.writerow(
                [
                    f"{a.sent_at:.3f}",
                    f"{a.answered_at:.3f}",
                    a.kind,
                    a.status,
                    a.error,
                    int(a.retry_after),
                    a.detail,
                ]
            )


def log_offsets(logs: Path) -> dict[Path, int]:
    return {path: path.stat().st_size for path in logs.glob("*.log")}


def new_error_lines(logs: Path, offsets: dict[Path, int]) -> list[str]:
    """Error lines the processes logged since `offsets`, each once, prefixed with the process."""
    found: dict[str, None] = {}
    for path in sorted(logs.glob("*.log")):
        with path.open(encoding="utf-8", errors="replace") as log:
            log.seek(offsets.get(path, 0))
            for line in log:
                if LOGGED_ERROR.search(line):
                    found.setdefault(f"{path.stem}: {line.strip()[:300]}")
    return list(found)[:12]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        code = asyncio.run(Chaos(args).run())
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
