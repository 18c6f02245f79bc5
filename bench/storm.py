"""The storm phase of `make bench` (issue 14 §6): `--storm-events` alert events over
`--storm-keys` dedup keys, sent as fast as the load process can (bench/storm_load.py), twice:

- as single PagerDuty Events v2 requests (`POST /v2/enqueue`), `--storm-concurrency` at once;
- as Alertmanager webhooks of `--storm-batch` alerts each, `--storm-batch-concurrency` at once.

Each run has a client and an integration of its own, whose rate limit is the most intake allows
(100,000 events/s, a burst of 1,000,000): the storm measures how much the platform absorbs, not
the limit, which tests/test_alerts.py checks. Afterwards, over the API: exactly one incident per
dedup key (the client's incident list), every accepted event counted on its key's alert and
incident (each incident's `alert_count`, and `GET /v1/incidents/{id}/alerts`), none lost and
none counted twice; on the stream, one incident.reported per incident. A run is absorbed when
the last answer came, and settled when every incident's events have been processed by every
service (reported, triaged, notified, the services' consumers caught up, review's included).

Figures: events/s absorbed (accepted events over the time from the first request to the last
answer; and over the second half of the events alone, when every key has its incident and only
counts), HTTP latency, CPU per event of the platform's processes (absorbing, and until settled),
RSS of each process before, at its peak during the run and after (memory must stay flat), and
how long the pipeline took to settle after the last answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from bench.figures import fmt
from bench.load import run_load_process
from bench.observe import BackendCpu, EventWatcher, MemorySampler, cpu_delta
from bench.storm_load import dedup_key
from firebreak.events import INCIDENT_REPORTED

MIB = 1024 * 1024
KINDS = ("events_v2", "alertmanager")
# The most intake lets an integration have (services/intake/integrations.py).
STORM_RATE_PER_SECOND = 100_000
STORM_BURST = 1_000_000


@dataclass(frozen=True)
class Target:
    """What one run sends to, and reads back with."""

    kind: str
    client_key: str  # the client's own API key: its incident list holds the run's alone
    integration_key: str
    prefix: str  # of the run's dedup keys


@dataclass(frozen=True)
class Platform:
    """The platform as the storm sees it, from the harness."""

    gateway_url: str
    admin_key: str
    pids: dict[str, int]
    backends: BackendCpu | None
    cpu_snapshot: Callable[[], dict[str, float]]
    watcher: EventWatcher
    drain_timeout: float


def _ok(response: httpx.Response) -> Any:
    if not response.is_success:
        request = response.request
        raise RuntimeError(
            f"storm: {request.method} {request.url.path} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    return response.json()


async def set_up(gateway_url: str, admin_key: str, kind: str) -> Target:
    """A client of the run's own, its API key, and its integration of `kind`."""
    admin = {"Authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
        client = _ok(
            await http.post("/v1/clients", json={"name": f"Bench storm ({kind})"}, headers=admin)
        )
        key = _ok(
            await http.post(
                f"/v1/clients/{client['id']}/api-keys", json={"role": "client"}, headers=admin
            )
        )
        integration = _ok(
            await http.post(
                "/v1/integrations",
                json={
                    "client_id": client["id"],
                    "kind": kind,
                    "name": f"Storm ({kind})",
                    "service": "storage",
                    "rate_per_second": STORM_RATE_PER_SECOND,
                    "burst": STORM_BURST,
                },
                headers=admin,
            )
        )
    return Target(kind, key["key"], integration["key"], prefix=f"storm-{kind}")


async def _get(http: httpx.AsyncClient, path: str, **params: Any) -> Any:
    """A GET with the client's key, waiting out its rate limit."""
    while True:
        answer = await http.get(path, params=params)
        if answer.status_code != 429:
            return _ok(answer)
        await asyncio.sleep(float(answer.headers.get("Retry-After", "1")))


async def incidents_of(gateway_url: str, target: Target) -> list[dict[str, Any]]:
    """Every incident of the run's client, through its incident list."""
    headers = {"Authorization": f"Bearer {target.client_key}"}
    found: list[dict[str, Any]] = []
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30, headers=headers) as http:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
            page = await _get(http, "/v1/incidents", **params)
            found += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return found


async def alerts_of(
    gateway_url: str, target: Target, incident_ids: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """Each incident's alerts, through `GET /v1/incidents/{id}/alerts`."""
    headers = {"Authorization": f"Bearer {target.client_key}"}
    limit = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30, headers=headers) as http:

        async def read(incident_id: str) -> list[dict[str, Any]]:
            async with limit:
                listed = await _get(http, f"/v1/incidents/{incident_id}/alerts")
            items: list[dict[str, Any]] = listed["items"]
            return items

        lists = await asyncio.gather(*(read(incident_id) for incident_id in incident_ids))
    return dict(zip(incident_ids, lists, strict=True))


def check(
    target: Target,
    accepted_per_key: list[int],
    incidents: list[dict[str, Any]],
    alerts: dict[str, list[dict[str, Any]]],
    watcher: EventWatcher,
) -> dict[str, Any]:
    """One incident per dedup key, holding every accepted event of its key once."""
    expected = {dedup_key(target.prefix, n): count for n, count in enumerate(accepted_per_key)}
    by_key: dict[str, list[dict[str, Any]]] = {}
    for incident in incidents:
        by_key.setdefault(incident["dedup_key"], []).append(incident)
    counted = {key: sum(i["alert_count"] for i in found) for key, found in by_key.items()}
    on_alerts = {
        key: sum(alert["count"] for i in found for alert in alerts[i["id"]])
        for key, found in by_key.items()
    }
    lost = sum(max(0, count - counted.get(key, 0)) for key, count in expected.items())
    doubled = sum(max(0, counted[key] - expected.get(key, 0)) for key in counted)
    reported = [
        len(watcher.incidents[i["id"]].ids.get(INCIDENT_REPORTED, ()))
        if i["id"] in watcher.incidents
        else 0
        for i in incidents
    ]
    figures = {
        "keys": len(expected),
        "incidents": len(incidents),
        "keys_without_incident": sum(1 for key in expected if key not in by_key),
        "keys_with_several_incidents": sum(1 for found in by_key.values() if len(found) > 1),
        "incidents_of_unknown_keys": sum(
            len(found) for key, found in by_key.items() if key not in expected
        ),
        "events_accepted": sum(accepted_per_key),
        "events_counted": sum(counted.values()),
        "lost": lost,
        "doubled": doubled,
        "alert_counts_differ_from_incident": sum(
            1 for key in counted if counted[key] != on_alerts[key]
        ),
        "incidents_not_of_one_alert": sum(1 for i in incidents if len(alerts[i["id"]]) != 1),
        "reported_not_once": sum(1 for count in reported if count != 1),
    }
    figures["ok"] = (
        figures["incidents"] == figures["keys"]
        and figures["events_counted"] == figures["events_accepted"]
        and not any(
            figures[name]
            for name in (
                "keys_without_incident",
                "keys_with_several_incidents",
                "incidents_of_unknown_keys",
                "lost",
                "doubled",
                "alert_counts_differ_from_incident",
                "incidents_not_of_one_alert",
                "reported_not_once",
            )
        )
    )
    return figures


def _per_event(seconds: float, events: int) -> float | None:
    return round(seconds / events * 1000, 3) if events else None


def _mib(values: dict[str, int]) -> dict[str, float]:
    return {label: round(value / MIB, 1) for label, value in values.items()}


async def run(platform: Platform, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """One storm: `config` holds events, keys, concurrency and (for alertmanager) batch."""
    target = await set_up(platform.gateway_url, platform.admin_key, kind)
    sampler = MemorySampler(platform.pids, platform.backends)
    before = sampler.sample()
    sampler.loaded.set()
    sampler.start()
    try:
        cpu0 = platform.cpu_snapshot()
        load = await run_load_process(
            "bench.storm_load",
            {
                "url": platform.gateway_url,
                "kind": kind,
                "key": target.integration_key,
                "prefix": target.prefix,
                "timeout": 60.0,
                **config,
            },
        )
        absorbed_cpu = cpu_delta(cpu0, platform.cpu_snapshot())
        incidents = await incidents_of(platform.gateway_url, target)
        ids = [incident["id"] for incident in incidents]
        quiet = await platform.watcher.wait_until_quiet(ids, platform.drain_timeout)
        settled = time.time()
        settled_cpu = cpu_delta(cpu0, platform.cpu_snapshot())
    finally:
        sampler.stop()
    after = sampler.sample()
    # The list read as the load ended holds every count: an answered event was committed.
    alerts = await alerts_of(platform.gateway_url, target, [i["id"] for i in incidents])
    correctness = check(target, load["accepted_per_key"], incidents, alerts, platform.watcher)
    events = correctness["events_accepted"]
    absorbing = load["last_answer"] - load["started"]
    return {
        "kind": kind,
        **config,
        "requests": load["requests"],
        "errors": load["errors"],
        "uncertain": load["uncertain"],
        "throttled": load["throttled"],
        "connection_retries": load["connection_retries"],
        "absorb_seconds": round(absorbing, 2),
        "events_per_s": round(events / absorbing, 1) if absorbing > 0 else None,
        "second_half_events_per_s": load["second_half_events_per_s"],
        "http_p50_ms": load["http_p50_ms"],
        "http_p99_ms": load["http_p99_ms"],
        "http_max_ms": load["http_max_ms"],
        "settled": quiet,
        "settle_seconds_after_load": round(settled - load["last_answer"], 2),
        "cpu_ms_per_event_absorbing": _per_event(sum(absorbed_cpu.values()), events),
        "cpu_ms_per_event_settled": _per_event(sum(settled_cpu.values()), events),
        "cpu_seconds_absorbing": {k: round(v, 2) for k, v in absorbed_cpu.items()},
        "cpu_seconds_settled": {k: round(v, 2) for k, v in settled_cpu.items()},
        "load_process_cpu_seconds": load["cpu_seconds"],
        "load_process_peak_rss_mib": load["peak_rss_mib"],
        "rss_before_mib": _mib(before),
        "rss_peak_mib": _mib(sampler.peak),
        "rss_after_mib": _mib(after),
        "correctness": correctness,
        "ok": correctness["ok"] and quiet and not load["uncertain"] and not load["errors"],
    }


def table_lines(storm: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"9. alert storm: {'OK' if storm['ok'] else 'FAILED'} ({storm['events']} events over "
        f"{storm['keys']} dedup keys per run, sent as fast as the load process can; each run's "
        f"integration limited to {STORM_RATE_PER_SECOND:,}/s)",
    ]
    for run_figures in storm["runs"]:
        c = run_figures["correctness"]
        how = (
            f"single Events v2 requests, {run_figures['concurrency']} in flight"
            if run_figures["kind"] == "events_v2"
            else f"Alertmanager batches of {run_figures['batch']}, "
            f"{run_figures['concurrency']} in flight"
        )
        lines += [
            f"   {how}: {'OK' if run_figures['ok'] else 'FAILED'}",
            f"     absorbed       {fmt(run_figures['events_per_s'])} events/s "
            f"({c['events_accepted']} in {run_figures['absorb_seconds']} s; second half "
            f"{fmt(run_figures['second_half_events_per_s'])}/s; HTTP p50 "
            f"{fmt(run_figures['http_p50_ms'])} ms, p99 {fmt(run_figures['http_p99_ms'])} ms)   "
            f"errors {run_figures['errors'] or 'none'}   429s {run_figures['throttled']}",
            f"     settled        {run_figures['settle_seconds_after_load']} s after the last "
            f"answer ({'all' if run_figures['settled'] else 'NOT all'} incidents through "
            "triage, notify and review)",
            f"     incidents      {c['incidents']} for {c['keys']} keys   events counted "
            f"{c['events_counted']} of {c['events_accepted']} accepted   lost {c['lost']}   "
            f"doubled {c['doubled']}   reported more or less than once "
            f"{c['reported_not_once']}",
            f"     CPU            {fmt(run_figures['cpu_ms_per_event_absorbing'])} ms/event "
            f"absorbing, {fmt(run_figures['cpu_ms_per_event_settled'])} ms/event until settled "
            f"(platform; load process {run_figures['load_process_cpu_seconds']} s)",
            "     RSS MiB        "
            + "  ".join(
                f"{label} {run_figures['rss_before_mib'][label]:g}"
                f"→{run_figures['rss_peak_mib'][label]:g}"
                f"→{run_figures['rss_after_mib'][label]:g}"
                for label in run_figures["rss_peak_mib"]
            )
            + "   (before → peak → after)",
        ]
    return lines
