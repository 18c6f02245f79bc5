"""`make bench`: measures a private platform from a separate load process.

Phases, in order, each starting from a quiet platform (every event processed):

0. paging (reported as 7): open loop at `--paging-rate` P1s/s for `--paging-seconds`, POST
   scheduled send time to each page's arrival at a real SMTP server and a real webhook
   receiver (bench/paging.py says how); first, so that no other phase's escalations are due
   while it runs;
1. accept throughput: closed loop, `--concurrency` workers POSTing for `--accept-seconds`;
   then (reported as 10) the low rate: open loop at `--low-rate`/s for `--low-seconds`, where
   nothing batches, with the same figures as the pipeline latency phase;
2. pipeline latency: open loop at `--latency-rate`/s for `--latency-seconds`, POST scheduled
   send time to the notification.sent event's own occurred_at; CPU per incident over it;
3. pipeline throughput: open-loop steps through `--rates`, each `--step-seconds` long, up to the
   first step whose incidents are not all notified within `--step-grace` s of its end;

then correctness over every accepted incident (the stream for all, the HTTP API for a sample),
and pages lost or doubled; (reported as 8) evidence: one `--evidence-mib` item uploaded and
downloaded through the gateway, with the RSS growth of gateway and evidence (bench/evidence.py);
last (9), the alert storm: `--storm-events` alert events over `--storm-keys` dedup keys, as single
Events v2 requests and as Alertmanager batches, each counted back (bench/storm.py says how). It
comes after the correctness check, which would count its incidents as in the stream but not
accepted, and `--storm-only` runs it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as host
import random
import secrets
import shutil
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import evidence, paging, storm
from bench.figures import fmt, ms, percentile
from bench.load import run_load_process
from bench.observe import (
    FLOW,
    BackendCpu,
    EventWatcher,
    MemorySampler,
    cpu_delta,
    cpu_snapshot,
)
from firebreak.events import INCIDENT_TRIAGED, NOTIFICATION_SENT
from firebreak.launcher import Platform, free_ports
from firebreak.settings import GRPC_SERVICES, SERVICES, Settings

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES_URL = os.environ.get(
    "FIREBREAK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MIB = 1024 * 1024


ALL_RATES = "25,50,75,100,150,200,300,500,750,1000,1500,2000"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short phases: a smoke test")
    parser.add_argument("--accept-seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--latency-rate", type=float, default=100.0)
    parser.add_argument(
        "--low-rate", type=float, default=40.0, help="incidents/s of the low-rate phase"
    )
    parser.add_argument("--low-seconds", type=float, default=15.0)
    parser.add_argument(
        "--rates",
        default=ALL_RATES,
        help="incidents/s of the throughput steps (comma-separated; empty skips the phase)",
    )
    parser.add_argument("--step-seconds", type=float, default=5.0)
    parser.add_argument(
        "--step-grace", type=float, default=1.0, help="s after a step's end to be notified"
    )
    parser.add_argument("--paging-rate", type=float, default=20.0, help="P1s/s of the paging phase")
    parser.add_argument("--paging-seconds", type=float, default=15.0)
    parser.add_argument("--evidence-mib", type=int, default=1024, help="the evidence item's size")
    parser.add_argument("--storm-events", type=int, default=100_000, help="per storm run; 0 skips")
    parser.add_argument("--storm-keys", type=int, default=1000, help="dedup keys of a storm run")
    parser.add_argument(
        "--storm-concurrency", type=int, default=64, help="single-event requests in flight"
    )
    parser.add_argument("--storm-batch", type=int, default=100, help="alerts per Alertmanager POST")
    parser.add_argument(
        "--storm-batch-concurrency", type=int, default=8, help="Alertmanager POSTs in flight"
    )
    parser.add_argument("--storm-only", action="store_true", help="the storm phase alone")
    parser.add_argument("--clients", type=int, default=4, help="client organisations (tenants)")
    parser.add_argument("--sample", type=int, default=200, help="incidents checked over HTTP")
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument(
        "--postgres", action="store_true", help="throw-away PostgreSQL databases, not SQLite"
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL, help="admin connection")
    parser.add_argument("--var-dir", type=Path, help="default: var/bench/<timestamp>")
    parser.add_argument("--keep-var", action="store_true", help="keep the var dir (logs, data)")
    args = parser.parse_args(argv)
    if args.quick:
        args.accept_seconds = min(args.accept_seconds, 2.0)
        args.latency_seconds = min(args.latency_seconds, 3.0)
        args.low_seconds = min(args.low_seconds, 3.0)
        args.step_seconds = min(args.step_seconds, 2.0)
        args.paging_seconds = min(args.paging_seconds, 3.0)
        args.evidence_mib = min(args.evidence_mib, 64)
        args.rates = "25,50" if args.rates == ALL_RATES else args.rates
        args.sample = min(args.sample, 50)
        args.drain_timeout = min(args.drain_timeout, 60.0)
        args.storm_events = min(args.storm_events, 2000)
        args.storm_keys = min(args.storm_keys, 20)
    return args


# --- the load process -------------------------------------------------------------------------


@dataclass
class LoadResult:
    started: float
    ended: float
    cpu_seconds: float
    errors: dict[str, int]
    retries: int  # requests sent again on a new connection after a kept-alive one closed
    # [scheduled wall time, actual start wall time, latency s, status, incident id]
    requests: list[list[Any]]

    @property
    def accepted(self) -> list[list[Any]]:
        return [request for request in self.requests if request[3] == 201]

    @property
    def accepted_ids(self) -> list[str]:
        return [request[4] for request in self.accepted]

    def summary(self) -> dict[str, Any]:
        latencies = [request[2] for request in self.requests]
        return {
            "requests": len(self.requests),
            "accepted": len(self.accepted),
            "errors": dict(sorted(self.errors.items())),
            "connection_retries": self.retries,
            "http_p50_ms": ms(percentile(latencies, 50)),
            "http_p99_ms": ms(percentile(latencies, 99)),
            "http_max_ms": ms(max(latencies, default=None)),
            # How late the load process started requests against its schedule (open loop).
            "send_lag_p99_ms": ms(percentile([r[1] - r[0] for r in self.requests], 99)),
            "load_cpu_seconds": round(self.cpu_seconds, 2),
        }


# --- the bench --------------------------------------------------------------------------------


@dataclass
class Phase:
    """A phase's window: CPU of every process, the incidents it carried."""

    name: str
    load: LoadResult
    cpu: dict[str, float]
    quiet: bool  # everything processed before the drain timeout
    seconds: float  # from load start until quiet


@dataclass
class PagingRun:
    """The paging phase, until its pages are counted at the end of the run."""

    phase: Phase
    deadline: float  # wall clock: a page not arrived by then is lost
    receivers_cpu: float


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.var_dir: Path = (args.var_dir or REPOSITORY / "var" / "bench" / stamp).resolve()
        self.databases: list[str] = []
        self.database_prefix = f"firebreak_bench_{uuid.uuid4().hex[:8]}_"
        self.backends: BackendCpu | None = None
        self.platform: Platform | None = None
        self.watcher: EventWatcher | None = None
        self.sampler: MemorySampler | None = None
        self.receivers: paging.Receivers | None = None
        self.keys: list[str] = []
        self.pids: dict[str, int] = {}
        self.accepted: list[str] = []
        self.harness_cpu0 = 0.0

    # --- set-up and tear-down ---

    async def create_databases(self) -> dict[str, str]:
        base = self.args.postgres_url.rsplit("/", 1)[0]
        admin = await asyncpg.connect(self.args.postgres_url, timeout=5)
        urls = {}
        try:
            for service in SERVICES:
                name = f"{self.database_prefix}{service}"
                await admin.execute(f'CREATE DATABASE "{name}"')
                self.databases.append(name)
                urls[service] = f"{base}/{name}"
        finally:
            await admin.close()
        return urls

    async def drop_databases(self) -> None:
        if not self.databases:
            return
        admin = await asyncpg.connect(self.args.postgres_url, timeout=5)
        try:
            for name in self.databases:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    def start_platform(self, database_urls: dict[str, str], extra_env: dict[str, str]) -> Platform:
        nats_port, gateway_port, *grpc_ports = free_ports(2 + len(GRPC_SERVICES))
        platform = Platform(
            var_dir=self.var_dir,
            nats_port=nats_port,
            gateway_port=gateway_port,
            grpc_ports=dict(zip(GRPC_SERVICES, grpc_ports, strict=True)),
            admin_key="fbk_bench_" + secrets.token_urlsafe(24),
            database_urls=database_urls,
            extra_env=extra_env,
        )
        self.platform = platform
        platform.start()
        return platform

    def stop_platform(self) -> dict[str, int]:
        """Stops the services gracefully, NATS last; their exit codes."""
        platform = self.platform
        if platform is None:
            return {}
        services = [label for label in platform.processes if label != "nats"]
        codes = dict(zip(services, platform.stop_processes(services), strict=True))
        if "nats" in platform.processes:
            codes["nats"] = platform.stop_process("nats")
        return codes

    async def make_tenants(self, gateway_url: str, admin_key: str) -> list[str]:
        admin = {"Authorization": f"Bearer {admin_key}"}
        keys = []
        async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
            for number in range(self.args.clients):
                client = await http.post(
                    "/v1/clients", json={"name": f"Bench client {number}"}, headers=admin
                )
                client.raise_for_status()
                key = await http.post(
                    f"/v1/clients/{client.json()['id']}/api-keys",
                    json={"role": "client"},
                    headers=admin,
                )
                key.raise_for_status()
                keys.append(key.json()["key"])
        return keys

    def check_alive(self) -> None:
        assert self.platform is not None
        for label, process in self.platform.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{label} exited with {process.returncode} during the bench")

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU-seconds so far of every platform process, and of its PostgreSQL backends."""
        snapshot = cpu_snapshot(self.pids)
        if self.backends is not None:
            snapshot["postgres"] = self.backends.total()
        return snapshot

    # --- running load ---

    async def run_load(self, **config: Any) -> LoadResult:
        assert self.platform is not None
        config = {
            "url": self.platform.gateway_url,
            "keys": self.keys,
            "timeout": 30.0,
            "connections": 512,
            **config,
        }
        result = LoadResult(**await run_load_process("bench.load", config))
        self.accepted += result.accepted_ids
        return result

    async def phase(self, name: str, **config: Any) -> Phase:
        """Runs load, then waits until every event it caused has been processed."""
        assert self.watcher is not None and self.sampler is not None
        self.check_alive()
        cpu0 = self.cpu_snapshot()
        began = time.monotonic()
        self.sampler.loaded.set()
        try:
            load = await self.run_load(**config)
            quiet = await self.watcher.wait_until_quiet(load.accepted_ids, self.args.drain_timeout)
        finally:
            self.sampler.loaded.clear()
        seconds = time.monotonic() - began
        cpu = cpu_delta(cpu0, self.cpu_snapshot())
        self.check_alive()
        return Phase(name, load, cpu, quiet, seconds)

    # --- what a phase says ---

    def notified_at(self, incident_ids: list[str]) -> dict[str, float]:
        assert self.watcher is not None
        found = {}
        for incident_id in incident_ids:
            moment = self.watcher.first(incident_id, NOTIFICATION_SENT)
            if moment is not None:
                found[incident_id] = moment
        return found

    def stored_at(self, incident_id: str) -> float | None:
        """When JetStream stored the incident's notification.sent."""
        assert self.watcher is not None
        return self.watcher.stored(incident_id, NOTIFICATION_SENT)

    def pipeline_latencies(self, load: LoadResult) -> list[tuple[float, float]]:
        """(scheduled send time, seconds until notification.sent) for each notified incident."""
        notified = self.notified_at(load.accepted_ids)
        return sorted(
            (request[0], notified[request[4]] - request[0])
            for request in load.accepted
            if request[4] in notified
        )

    def drain_rates(self, load: LoadResult) -> dict[str, Any]:
        """With a backlog left when the load stopped: how fast triage and notify worked it off
        (events/s from the load's end to the phase's last such event)."""
        assert self.watcher is not None
        ids = load.accepted_ids
        end = max((request[1] + request[2] for request in load.requests), default=load.ended)
        result: dict[str, Any] = {}
        for kind, key in ((INCIDENT_TRIAGED, "triage"), (NOTIFICATION_SENT, "notify")):
            times = [t for t in (self.watcher.first(i, kind) for i in ids) if t is not None]
            after = sorted(t for t in times if t > end)
            result[f"{key}_backlog_at_load_end"] = len(ids) - (len(times) - len(after))
            if len(after) >= 200 and after[-1] > end:  # fewer say little about a rate
                result[f"{key}_drain_per_s"] = round(len(after) / (after[-1] - end), 1)
            else:
                result[f"{key}_drain_per_s"] = None
        return result

    def cpu_report(self, phase: Phase, incidents: int) -> dict[str, Any]:
        total = sum(phase.cpu.values())
        return {
            "window_seconds": round(phase.seconds, 2),
            "cpu_seconds": round(total, 2),
            "incidents": incidents,
            "cpu_ms_per_incident": round(total / incidents * 1000, 2) if incidents else None,
            "per_process_ms_per_incident": {
                label: round(seconds / incidents * 1000, 2) if incidents else None
                for label, seconds in phase.cpu.items()
            },
            "per_process_cpu_seconds": {
                label: round(seconds, 2) for label, seconds in phase.cpu.items()
            },
            "load_process_cpu_seconds": round(phase.load.cpu_seconds, 2),
        }

    async def paging_phase(self) -> PagingRun:
        """P1s of the paging client at an open-loop rate; the window lasts until their pages
        have all arrived (or the drain timeout) and their events are processed."""
        assert self.platform is not None and self.receivers is not None
        assert self.watcher is not None and self.sampler is not None
        key = await paging.set_up(
            self.platform.gateway_url, self.platform.admin_key, self.receivers
        )
        self.check_alive()
        cpu0, receivers_cpu0 = self.cpu_snapshot(), self.receivers.cpu_seconds()
        began = time.monotonic()
        self.sampler.loaded.set()
        try:
            load = await self.run_load(
                mode="open",
                rate=self.args.paging_rate,
                duration=self.args.paging_seconds,
                keys=[key],
                incident=paging.P1_INCIDENT,
            )
            ids = load.accepted_ids
            paged = await self.receivers.wait_for_pages(ids, self.args.drain_timeout)
            deadline = time.time()
            quiet = await self.watcher.wait_until_quiet(ids, self.args.drain_timeout)
        finally:
            self.sampler.loaded.clear()
        phase = Phase(
            "paging",
            load,
            cpu_delta(cpu0, self.cpu_snapshot()),
            paged and quiet,
            time.monotonic() - began,
        )
        self.check_alive()
        return PagingRun(phase, deadline, self.receivers.cpu_seconds() - receivers_cpu0)

    def paging_report(self, run: PagingRun) -> dict[str, Any]:
        """The paging phase's figures, counting its pages as they stand now (late doubles)."""
        assert self.receivers is not None
        load = run.phase.load
        return {
            "rate_per_s": self.args.paging_rate,
            "seconds": self.args.paging_seconds,
            # The platform's services read the same environment (and the launcher adds none).
            "paging_tick_seconds": Settings.from_environment().paging_tick_seconds,
            **load.summary(),
            **paging.page_figures(load.accepted, self.receivers.arrivals, deadline=run.deadline),
            "drained": run.phase.quiet,
            "receivers_cpu_seconds": round(run.receivers_cpu, 2),
            "cpu": self.cpu_report(run.phase, len(load.accepted)),
        }

    async def accept_phase(self) -> dict[str, Any]:
        phase = await self.phase(
            "accept",
            mode="closed",
            concurrency=self.args.concurrency,
            duration=self.args.accept_seconds,
            connections=self.args.concurrency,
        )
        load = phase.load
        span = max(r[1] + r[2] for r in load.requests) - min(r[1] for r in load.requests)
        notified = len(self.notified_at(load.accepted_ids))
        return {
            "concurrency": self.args.concurrency,
            "seconds": round(span, 2),
            "accepted_per_s": round(len(load.accepted) / span, 1) if span > 0 else None,
            **load.summary(),
            **self.drain_rates(load),
            "drained": phase.quiet,
            "cpu": self.cpu_report(phase, notified),
        }

    async def steady_phase(self, name: str, rate: float, seconds: float) -> dict[str, Any]:
        """Open loop at one rate: pipeline latency, whether it kept up, CPU per incident."""
        phase = await self.phase(name, mode="open", rate=rate, duration=seconds)
        load = phase.load
        latencies = self.pipeline_latencies(load)
        values = [latency for _, latency in latencies]
        stored = [
            moment - request[0]
            for request in load.accepted
            if (moment := self.stored_at(request[4])) is not None
        ]
        first_send = min((r[0] for r in load.requests), default=0.0)
        end = first_send + seconds
        grace = 5.0
        in_time = sum(1 for sent, latency in latencies if sent + latency <= end + grace)
        half = len(values) // 2
        early, late = percentile(values[:half], 50), percentile(values[half:], 50)
        reasons = []
        if load.errors:
            reasons.append("errors")
        if in_time < len(load.accepted):
            reasons.append(f"{len(load.accepted) - in_time} not notified within {grace:g}s")
        if early is not None and late is not None and late > 2 * early + 0.1:
            reasons.append("latency grew")
        if not phase.quiet:
            reasons.append("not drained")
        return {
            "rate_per_s": rate,
            "seconds": seconds,
            **load.summary(),
            "notified": len(values),
            "pipeline_p50_ms": ms(percentile(values, 50)),
            "pipeline_p99_ms": ms(percentile(values, 99)),
            "pipeline_max_ms": ms(max(values, default=None)),
            "pipeline_p50_first_half_ms": ms(early),
            "pipeline_p50_second_half_ms": ms(late),
            # To the moment the event was stored in the stream: adds notify's commit and relay.
            "pipeline_stream_p50_ms": ms(percentile(stored, 50)),
            "pipeline_stream_p99_ms": ms(percentile(stored, 99)),
            f"notified_within_{grace:g}s_of_end": in_time,
            "kept_up": not reasons,
            "why_not": ", ".join(reasons) or None,
            "cpu": self.cpu_report(phase, len(values)),
        }

    async def throughput_phase(self) -> dict[str, Any]:
        rates = [float(rate) for rate in self.args.rates.split(",") if rate.strip()]
        seconds, grace = self.args.step_seconds, self.args.step_grace
        steps: list[dict[str, Any]] = []
        best: float | None = None
        for rate in rates:
            phase = await self.phase(f"step {rate:g}", mode="open", rate=rate, duration=seconds)
            load = phase.load
            latencies = self.pipeline_latencies(load)
            values = [latency for _, latency in latencies]
            first_send = min((r[0] for r in load.requests), default=0.0)
            end = first_send + seconds
            in_time = sum(1 for sent, latency in latencies if sent + latency <= end + grace)
            # Accepted per second of wall time until the last answer (for information: a
            # gateway that falls behind answers late, which stretches the span, and its
            # incidents are then notified late, which fails the step).
            answered = max((r[1] + r[2] for r in load.requests), default=end)
            accepted_rate = len(load.accepted) / max(seconds, answered - first_send)
            reasons = []
            if load.errors:
                reasons.append("errors")
            if in_time < len(load.accepted):
                reasons.append(f"{len(load.accepted) - in_time} not notified within {grace:g}s")
            step = {
                "rate_per_s": rate,
                "accepted_per_s": round(accepted_rate, 1),
                **load.summary(),
                "pipeline_p50_ms": ms(percentile(values, 50)),
                "pipeline_p99_ms": ms(percentile(values, 99)),
                "pipeline_max_ms": ms(max(values, default=None)),
                "notified_in_time": in_time,
                "passed": not reasons,
                "why_not": ", ".join(reasons) or None,
                "cpu_ms_per_incident": self.cpu_report(phase, len(values))["cpu_ms_per_incident"],
            }
            if reasons:
                step.update(self.drain_rates(load))
            steps.append(step)
            if reasons:
                break
            best = rate
        return {
            "step_seconds": seconds,
            "grace_seconds": grace,
            "best_rate_per_s": best,
            "steps": steps,
        }

    async def storm_phase(self) -> dict[str, Any]:
        """The two storm runs, one after the other, each from a quiet platform."""
        assert self.platform is not None and self.watcher is not None
        args = self.args
        seen_by_storm = storm.Platform(
            gateway_url=self.platform.gateway_url,
            admin_key=self.platform.admin_key,
            pids=self.pids,
            backends=self.backends,
            cpu_snapshot=self.cpu_snapshot,
            watcher=self.watcher,
            drain_timeout=args.drain_timeout,
        )
        sizes = {"events": args.storm_events, "keys": args.storm_keys}
        runs = []
        for kind, concurrency in (
            ("events_v2", args.storm_concurrency),
            ("alertmanager", args.storm_batch_concurrency),
        ):
            self.check_alive()
            config = sizes | {"concurrency": concurrency}
            if kind == "alertmanager":
                config["batch"] = args.storm_batch
            runs.append(await storm.run(seen_by_storm, kind, config))
        self.check_alive()
        return sizes | {"runs": runs, "ok": all(run["ok"] for run in runs)}

    async def http_check(self, sample: list[str]) -> list[str]:
        """The incidents of the sample whose registry entry or timeline is incomplete."""
        assert self.platform is not None
        admin = {"Authorization": f"Bearer {self.platform.admin_key}"}
        bad: list[str] = []
        limit = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=self.platform.gateway_url, timeout=10) as http:

            async def check(incident_id: str) -> None:
                async with limit:
                    incident = await http.get(f"/v1/incidents/{incident_id}", headers=admin)
                    timeline = await http.get(
                        f"/v1/incidents/{incident_id}/timeline", headers=admin
                    )
                good = (
                    incident.status_code == 200
                    and incident.json()["status"] == "triaged"
                    and incident.json()["notified_at"] is not None
                    and timeline.status_code == 200
                    # The flow in order; the escalation notify starts adds entries of its own.
                    and [e["type"] for e in timeline.json()["entries"] if e["type"] in FLOW]
                    == list(FLOW)
                )
                if not good:
                    bad.append(incident_id)

            await asyncio.gather(*(check(incident_id) for incident_id in sample))
        return bad

    async def correctness(self) -> dict[str, Any]:
        assert self.watcher is not None
        await self.watcher.wait_until_quiet(self.accepted, self.args.drain_timeout)
        accepted = set(self.accepted)
        missing: dict[str, int] = {kind: 0 for kind in FLOW}
        doubled: dict[str, int] = {kind: 0 for kind in FLOW}
        lost_in_stream, doubled_ids = set(), set()
        for incident_id in accepted:
            times = (
                self.watcher.incidents[incident_id].times
                if incident_id in self.watcher.incidents
                else {}
            )
            for kind in FLOW:
                count = len(times.get(kind, []))
                if count == 0:
                    missing[kind] += 1
                    lost_in_stream.add(incident_id)
                elif count > 1:
                    doubled[kind] += 1
                    doubled_ids.add(incident_id)
        unacknowledged = sum(
            1
            for incident_id, events in self.watcher.incidents.items()
            if incident_id not in accepted and events.times.get(FLOW[0])
        )
        sample = random.Random(0).sample(sorted(accepted), min(self.args.sample, len(accepted)))
        lost_over_http = await self.http_check(sample)
        lost = len(lost_in_stream | set(lost_over_http))
        return {
            "accepted": len(accepted),
            "accepted_ids_repeated": len(self.accepted) - len(accepted),
            "checked_in_stream": len(accepted),
            "checked_over_http": len(sample),
            "lost": lost,
            "lost_in_stream": len(lost_in_stream),
            "lost_over_http": len(lost_over_http),
            "missing_events": missing,
            "doubled": len(doubled_ids),
            "doubled_events": doubled,
            "in_stream_not_accepted": unacknowledged,
            "malformed_events": self.watcher.malformed,
            "ok": lost == 0 and not doubled_ids and len(accepted) > 0,
        }

    # --- the whole run ---

    async def run(self) -> int:
        args = self.args
        print(header(args, self.var_dir), flush=True)
        report: dict[str, Any] = {"backend": "postgresql" if args.postgres else "sqlite"}
        ok = False
        try:
            urls = await self.create_databases() if args.postgres else {}
            self.receivers = paging.Receivers()
            await self.receivers.start()
            platform = await asyncio.to_thread(
                self.start_platform, urls, self.receivers.platform_env()
            )
            self.pids = {label: process.pid for label, process in platform.processes.items()}
            self.harness_cpu0 = sum(os.times()[:2])
            self.watcher = EventWatcher(platform.admin_nats_url)
            await self.watcher.start()
            if args.postgres:
                self.backends = BackendCpu(self.database_prefix)
            self.sampler = MemorySampler(self.pids, self.backends)
            self.sampler.start()
            self.keys = await self.make_tenants(platform.gateway_url, platform.admin_key)

            progress("idle")
            cpu0 = self.cpu_snapshot()
            idle_seconds = 1.0 if args.quick else 3.0
            await asyncio.sleep(idle_seconds)
            idle_cpu = cpu_delta(cpu0, self.cpu_snapshot())
            idle_rss = self.sampler.sample()
            report["idle_cpu_percent"] = round(sum(idle_cpu.values()) / idle_seconds * 100, 1)

            passed = True
            if not args.storm_only:
                progress(f"paging: {args.paging_rate:g} P1s/s for {args.paging_seconds:g}s")
                paging_run = await self.paging_phase()
                progress(
                    f"accept throughput: concurrency {args.concurrency}, {args.accept_seconds:g}s"
                )
                report["accept"] = await self.accept_phase()
                # Below 100/s, before it: CPU per incident where nothing batches (issue 16).
                progress(f"low rate: {args.low_rate:g}/s for {args.low_seconds:g}s")
                report["low_rate"] = await self.steady_phase(
                    "low rate", args.low_rate, args.low_seconds
                )
                progress(f"pipeline latency: {args.latency_rate:g}/s for {args.latency_seconds:g}s")
                report["latency"] = await self.steady_phase(
                    "latency", args.latency_rate, args.latency_seconds
                )
                progress(f"pipeline throughput: steps {args.rates} of {args.step_seconds:g}s")
                report["throughput"] = await self.throughput_phase()
                progress("correctness")
                report["correctness"] = await self.correctness()
                report["paging"] = self.paging_report(paging_run)
                progress(f"evidence: an item of {args.evidence_mib} MiB up and down")
                report["evidence"] = await evidence.run(
                    platform.gateway_url, platform.admin_key, self.pids, args.evidence_mib
                )
                passed = all(report[name]["ok"] for name in ("correctness", "paging", "evidence"))
            if args.storm_events:
                progress(f"alert storm: {args.storm_events} events over {args.storm_keys} keys")
                report["storm"] = await self.storm_phase()
                passed = passed and report["storm"]["ok"]
            report["memory"] = {
                "idle_rss_mib": round(sum(idle_rss.values()) / MIB, 1),
                "load_peak_rss_mib": round(self.sampler.peak_total / MIB, 1),
                "idle_per_process_mib": {k: round(v / MIB, 1) for k, v in idle_rss.items()},
                "load_peak_per_process_mib": {
                    k: round(v / MIB, 1) for k, v in self.sampler.peak.items()
                },
            }
            report["harness_cpu_seconds"] = round(sum(os.times()[:2]) - self.harness_cpu0, 2)
            ok = passed
        finally:
            if self.sampler is not None:
                self.sampler.stop()
            if self.watcher is not None:
                await self.watcher.stop()
            progress("stopping the platform")
            codes = await asyncio.to_thread(self.stop_platform)
            if self.receivers is not None:  # after notify, which may be sending still
                await self.receivers.stop()
            report["exit_codes"] = codes
            # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully.
            report["stopped_cleanly"] = all(code in (0, -signal.SIGTERM) for code in codes.values())
            await self.drop_databases()
            if ok and not args.keep_var:
                shutil.rmtree(self.var_dir, ignore_errors=True)
            else:
                report["var_dir"] = str(self.var_dir)
        print(table(report), flush=True)
        print("BENCH_JSON " + json.dumps(report, separators=(",", ":")), flush=True)
        return 0 if ok else 1


# --- output -----------------------------------------------------------------------------------


def progress(what: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


def header(args: argparse.Namespace, var_dir: Path) -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"Firebreak bench — {datetime.now(UTC).isoformat(timespec='seconds')}\n"
        f"  host      {os.cpu_count()} CPUs ({model}), Python {host.python_version()}\n"
        f"  backend   {'PostgreSQL at ' + args.postgres_url if args.postgres else 'SQLite'}"
        f", its own nats-server; var dir {var_dir}\n"
        f"  NOTE      the load process and this harness run on the same {os.cpu_count()} CPUs as"
        " the platform and compete with it;\n"
        "            every POST carries a fresh Idempotency-Key; figures are from one run."
    )


def table(report: dict[str, Any]) -> str:
    lines: list[str] = []
    add = lines.append
    accept = report.get("accept")
    if accept:
        add("")
        add(f"1. accept throughput (closed loop, concurrency {accept['concurrency']})")
        add(
            f"   accepted         {accept['accepted']} in {accept['seconds']}s = "
            f"{fmt(accept['accepted_per_s'])}/s   errors {accept['errors'] or 'none'}"
            f"   (resent after a keep-alive close: {accept['connection_retries']})"
        )
        add(
            f"   HTTP latency     p50 {fmt(accept['http_p50_ms'])} ms   "
            f"p99 {fmt(accept['http_p99_ms'])} ms   max {fmt(accept['http_max_ms'])} ms"
        )
        add(
            f"   backlog at end   triage {accept['triage_backlog_at_load_end']}   "
            f"notify {accept['notify_backlog_at_load_end']}"
        )
        add(
            f"   drain rate       triage {fmt(accept['triage_drain_per_s'])}/s   notify "
            f"{fmt(accept['notify_drain_per_s'])}/s (events/s after the load stopped)"
        )
        add(
            f"   CPU              {fmt(accept['cpu']['cpu_ms_per_incident'])} ms/incident "
            f"(load process {accept['load_cpu_seconds']} s)"
        )
    latency = report.get("latency")
    if latency:
        lines += steady_lines("2. pipeline latency", latency)
    throughput = report.get("throughput")
    if throughput:
        add("")
        add(
            f"3. pipeline throughput (open-loop steps of {throughput['step_seconds']:g}s; "
            f"pass = all notified within {throughput['grace_seconds']:g}s of the step's end)"
        )
        add(
            f"   {'rate/s':>7} {'acc/s':>7} {'HTTP p99':>9} {'pipe p50':>9} {'pipe p99':>9} "
            f"{'pipe max':>9} {'CPU ms/inc':>10}  verdict"
        )
        for step in throughput["steps"]:
            verdict = "pass" if step["passed"] else f"FAIL: {step['why_not']}"
            add(
                f"   {step['rate_per_s']:>7g} {step['accepted_per_s']:>7.1f} "
                f"{fmt(step['http_p99_ms']):>9} {fmt(step['pipeline_p50_ms']):>9} "
                f"{fmt(step['pipeline_p99_ms']):>9} {fmt(step['pipeline_max_ms']):>9} "
                f"{fmt(step['cpu_ms_per_incident']):>10}  {verdict}"
            )
            if not step["passed"] and step.get("notify_drain_per_s"):
                add(
                    f"   {'':>7} drain after the step: triage {fmt(step['triage_drain_per_s'])}/s"
                    f", notify {fmt(step['notify_drain_per_s'])}/s"
                )
        add(f"   highest passing rate: {fmt(throughput['best_rate_per_s'])} incidents/s")
    memory = report.get("memory")
    if latency and memory:
        # CPU of each open-loop phase, the low rate's first: issue 16 compares them.
        rated = [figures for figures in (report.get("low_rate"), latency) if figures]
        add("")
        add("4./5. per process  CPU ms/incident at each open-loop rate, RSS idle and peak")
        add(
            f"   {'':<15}"
            + "".join(f"{rate_label(figures):>12}" for figures in rated)
            + f"{'RSS MiB idle':>15}{'RSS MiB peak':>15}"
        )
        per_cpu = latency["cpu"]["per_process_ms_per_incident"]
        for label in per_cpu:
            add(
                f"   {label:<15}"
                + "".join(
                    f"{fmt(figures['cpu']['per_process_ms_per_incident'].get(label)):>12}"
                    for figures in rated
                )
                + f"{fmt(memory['idle_per_process_mib'].get(label)):>15}"
                f"{fmt(memory['load_peak_per_process_mib'].get(label)):>15}"
            )
        add(
            f"   {'total':<15}"
            + "".join(f"{fmt(figures['cpu']['cpu_ms_per_incident']):>12}" for figures in rated)
            + f"{memory['idle_rss_mib']:>15.1f}{memory['load_peak_rss_mib']:>15.1f}"
            "   (peak of the sampled sum)"
        )
        if "postgres" in per_cpu:
            add(
                "   (postgres: the server's backends for the bench's own databases, counted in"
                " the total; its background writers are not)"
            )
        add(
            f"   platform idle CPU {report['idle_cpu_percent']}% of one CPU; "
            f"harness (stream reader) used {report['harness_cpu_seconds']} CPU-s in all"
        )
    correctness = report.get("correctness")
    if correctness:
        add("")
        add(
            f"6. correctness: {'OK' if correctness['ok'] else 'FAILED'} — "
            f"{correctness['accepted']} accepted incidents checked on the stream, "
            f"{correctness['checked_over_http']} (a random sample) over HTTP"
        )
        add(
            f"   lost {correctness['lost']} (stream {correctness['lost_in_stream']}, "
            f"HTTP {correctness['lost_over_http']}, missing {correctness['missing_events']})   "
            f"doubled {correctness['doubled']} ({correctness['doubled_events']})"
        )
        add(
            f"   in the stream but not accepted (request failed): "
            f"{correctness['in_stream_not_accepted']}"
        )
    if report.get("paging"):
        lines += paging.table_lines(report["paging"])
    if report.get("evidence"):
        lines += evidence.table_lines(report["evidence"])
    if report.get("storm"):
        lines += storm.table_lines(report["storm"])
    if report.get("low_rate"):
        lines += steady_lines("10. low rate", report["low_rate"])
    add("")
    add(f"platform stopped cleanly: {report.get('stopped_cleanly')} {report.get('exit_codes')}")
    if "var_dir" in report:
        add(f"var dir kept: {report['var_dir']}")
    lines += cpu_summary_lines(report)
    return "\n".join(lines)


def steady_lines(title: str, figures: dict[str, Any]) -> list[str]:
    """The table's lines for an open-loop phase at one rate (`Bench.steady_phase`)."""
    cpu = figures["cpu"]
    return [
        "",
        f"{title} (open loop {figures['rate_per_s']:g}/s for {figures['seconds']:g}s; "
        "POST scheduled send -> notification.sent occurred_at)",
        f"   accepted         {figures['accepted']}   notified {figures['notified']}   "
        f"errors {figures['errors'] or 'none'} (resent {figures['connection_retries']})"
        f"   kept up: {'yes' if figures['kept_up'] else 'NO: ' + figures['why_not']}",
        f"   pipeline         p50 {fmt(figures['pipeline_p50_ms'])} ms   "
        f"p99 {fmt(figures['pipeline_p99_ms'])} ms   max {fmt(figures['pipeline_max_ms'])} ms"
        f"   (p50 1st half {fmt(figures['pipeline_p50_first_half_ms'])}, "
        f"2nd half {fmt(figures['pipeline_p50_second_half_ms'])})",
        f"   to stream        p50 {fmt(figures['pipeline_stream_p50_ms'])} ms   "
        f"p99 {fmt(figures['pipeline_stream_p99_ms'])} ms   (to when JetStream stored the "
        "notification.sent: adds notify's commit and relay)",
        f"   HTTP latency     p50 {fmt(figures['http_p50_ms'])} ms   "
        f"p99 {fmt(figures['http_p99_ms'])} ms   send lag p99 "
        f"{fmt(figures['send_lag_p99_ms'])} ms",
        f"   CPU              {fmt(cpu['cpu_ms_per_incident'])} ms/incident = "
        f"{cpu['cpu_seconds']} CPU-s over {cpu['window_seconds']} s / "
        f"{cpu['incidents']} incidents (load process {cpu['load_process_cpu_seconds']} s)",
    ]


def rate_label(figures: dict[str, Any]) -> str:
    return f"{figures['rate_per_s']:g}/s"


def cpu_summary_lines(report: dict[str, Any]) -> list[str]:
    """Issue 16's three figures, one a line, to paste into README's before/after table."""
    low, latency, accept = (report.get(name) for name in ("low_rate", "latency", "accept"))
    if not (low and latency and accept):
        return []

    def at_rate(figures: dict[str, Any]) -> str:
        # A figure from a phase that fell behind is not comparable with one that kept up.
        kept_up = "kept up" if figures["kept_up"] else "NOT kept up"
        return (
            f"   {rate_label(figures):<11} "
            f"{fmt(figures['cpu']['cpu_ms_per_incident'])} ms"
            f"   ({kept_up}, pipeline p99 {fmt(figures['pipeline_p99_ms'])} ms)"
        )

    return [
        "",
        "CPU per incident (every platform process):",
        at_rate(low),
        at_rate(latency),
        f"   {'saturation':<11} {fmt(accept['cpu']['cpu_ms_per_incident'])} ms at "
        f"{fmt(accept['accepted_per_s'])} accepted/s (concurrency {accept['concurrency']})",
    ]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        code = asyncio.run(Bench(args).run())
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
