"""`python -m bench --quick` runs end to end and reports a complete, loss-free result, its
paging phase included: every P1's page reached the real SMTP server and the real webhook
receiver (signature verified), once each; and its evidence phase's item came back as sent.

Only the harness is checked here: nothing is asserted about time or speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import storm
from bench.figures import fmt
from bench.observe import EventWatcher
from bench.paging import EMAIL_RESPONDER, page_figures
from firebreak.events import INCIDENT_REPORTED

REPOSITORY = Path(__file__).resolve().parents[1]

# Shorter still than --quick, with a small evidence item: the suite checks that every phase
# runs and counts right; `make bench` measures.
SMALLER = ["--rates", "25", "--evidence-mib", "16"]


def test_quick_bench_reports_every_incident_carried_once(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", *SMALLER, "--var-dir", str(tmp_path / "var")],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=240,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("BENCH_JSON ")]
    assert len(lines) == 1, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(lines[0].removeprefix("BENCH_JSON "))
    correctness = report["correctness"]
    assert correctness["lost"] == 0, correctness
    assert correctness["doubled"] == 0, correctness
    assert correctness["accepted"] > 0
    assert correctness["checked_over_http"] > 0
    assert report["accept"]["accepted"] > 0
    assert report["latency"]["notified"] > 0
    assert report["throughput"]["steps"]
    assert report["latency"]["cpu"]["cpu_seconds"] > 0
    # The low-rate phase (issue 16): its own figures, CPU per incident in total and per process.
    low = report["low_rate"]
    assert low["rate_per_s"] == 40 and low["seconds"] == 3, low
    assert low["accepted"] > 0 and low["notified"] == low["accepted"], low
    assert low["pipeline_p50_ms"] > 0 and low["pipeline_p99_ms"] >= low["pipeline_p50_ms"], low
    assert low["cpu"]["cpu_ms_per_incident"] > 0, low
    assert low["cpu"]["per_process_ms_per_incident"].keys() == set(
        report["memory"]["idle_per_process_mib"]
    )
    assert report["memory"]["idle_rss_mib"] > 0
    paging = report["paging"]
    assert paging["lost"] == 0, paging
    assert paging["doubled"] == 0, paging
    assert paging["malformed"] == 0 and paging["unverified_signatures"] == 0, paging
    assert paging["accepted"] > 0
    assert paging["email"]["paged"] == paging["webhook"]["paged"] == paging["accepted"], paging
    assert paging["email_refused"] >= paging["accepted"]  # the webhook's person's email first
    assert paging["ok"]
    assert report["stopped_cleanly"], report["exit_codes"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1. accept throughput" in result.stdout  # the human-readable table
    assert "10. low rate (open loop 40/s" in result.stdout
    # Issue 16's three figures, one a line, at the end of the table.
    summary = result.stdout[result.stdout.index("CPU per incident (every platform process):") :]
    figures = [line.split()[:3] for line in summary.splitlines()[1:4]]
    assert figures == [
        [label, fmt(report[name]["cpu"]["cpu_ms_per_incident"]), "ms"]
        for label, name in (("40/s", "low_rate"), ("100/s", "latency"), ("saturation", "accept"))
    ], summary
    assert f"at {fmt(report['accept']['accepted_per_s'])} accepted/s" in summary
    assert "7. paging: OK" in result.stdout
    # The evidence phase: a 16 MiB item up and down, stored and returned as sent.
    evidence = report["evidence"]
    assert evidence["size_mib"] == 16, evidence
    assert evidence["stored_digest_matches"] and evidence["downloaded_digest_matches"], evidence
    assert evidence["ok"]
    assert "8. evidence: OK" in result.stdout
    # The alert storm, --quick's size: one incident per dedup key, each event counted once.
    storm = report["storm"]
    assert [run["kind"] for run in storm["runs"]] == ["events_v2", "alertmanager"], storm
    for run in storm["runs"]:
        counted = run["correctness"]
        assert counted["incidents"] == counted["keys"] == 20, counted
        assert counted["events_counted"] == counted["events_accepted"] == 2000, counted
        assert (counted["lost"], counted["doubled"]) == (0, 0), counted
    assert storm["ok"]
    assert "9. alert storm: OK" in result.stdout


def test_pages_late_missing_twice_or_wrong_are_counted() -> None:
    """The paging phase's counting alone, on arrivals as the receivers report them."""
    # The load's records: [scheduled send, start, latency, status, incident id, reference].
    accepted = [[100.0, 100.0, 0.01, 201, f"i{n}", f"INC-2026-00000{n}"] for n in range(1, 5)]

    def email(incident: str, at: float, delivery: str, *, priority: str = "P1") -> dict[str, Any]:
        reference = f"INC-2026-00000{incident[1:]}"
        return {
            "channel": "email",
            "at": at,
            "to": EMAIL_RESPONDER,
            "subject": f"[{priority}] {reference} Trading platform down",
            "incident": incident,
            "id": f"<{delivery}@firebreak>",
        }

    def webhook(incident: str, at: float, delivery: str) -> dict[str, Any]:
        reference = f"INC-2026-00000{incident[1:]}"
        return {
            "channel": "webhook",
            "at": at,
            "incident": incident,
            "reference": reference,
            "priority": "P1",
            "id": delivery,
        }

    arrivals = [
        email("i1", 100.5, "a"),
        webhook("i1", 101.0, "b"),
        email("i2", 100.4, "c"),
        email("i2", 160.0, "c"),  # the same delivery again, after the phase: still a double
        webhook("i2", 100.9, "d"),
        email("i3", 100.3, "e"),
        webhook("i3", 200.0, "f"),  # after the deadline: lost
        email("i4", 100.2, "g", priority="P2"),  # not what a P1 says
        webhook("i4", 100.8, "h"),
        email("elsewhere", 100.1, "i"),  # an incident whose POST was not answered 201
        {"channel": "webhook_unverified", "at": 100.7, "error": "no matching signature"},
        {"channel": "email_refused", "at": 100.2, "to": "x@refused.bench.example"},
    ]
    figures = page_figures(accepted, arrivals, deadline=150.0)

    timings = dict.fromkeys(
        ("p50_ms", "p99_ms", "max_ms", "p50_first_half_ms", "p50_second_half_ms"), 0
    )
    assert figures["email"] | timings == timings | {
        "paged": 3,
        "lost": 1,  # i4's only email was malformed
        "doubled": 1,
        "resent_same_id": 1,
    }
    assert figures["webhook"]["paged"] == 3 and figures["webhook"]["lost"] == 1
    assert figures["email"]["max_ms"] == 500.0
    assert (figures["lost"], figures["doubled"]) == (2, 1)
    assert (figures["malformed"], figures["not_accepted"]) == (1, 1)
    assert (figures["unverified_signatures"], figures["email_refused"]) == (1, 1)
    assert not figures["ok"]


def test_storm_losses_doubles_and_extra_incidents_are_counted() -> None:
    """The storm's counting alone, on incidents and alerts as the API lists them."""
    target = storm.Target("events_v2", "client key", "integration key", prefix="k")
    accepted_per_key = [3, 2, 4, 1]  # k-00000 … k-00003
    incidents: list[dict[str, Any]] = [
        {"id": "a", "dedup_key": "k-00000", "alert_count": 3},
        {"id": "b", "dedup_key": "k-00001", "alert_count": 1},  # one event lost
        {"id": "c", "dedup_key": "k-00002", "alert_count": 4},
        {"id": "d", "dedup_key": "k-00002", "alert_count": 1},  # a second incident, one more
        {"id": "e", "dedup_key": "other", "alert_count": 1},  # a key the storm never sent
    ]  # k-00003: no incident
    alerts = {incident["id"]: [{"count": incident["alert_count"]}] for incident in incidents} | {
        "c": [{"count": 2}, {"count": 2}]
    }
    watcher = EventWatcher("nats://127.0.0.1:0")  # not started: its events are set here
    for incident in incidents:
        watcher.incidents[incident["id"]].ids[INCIDENT_REPORTED].add(f"event-{incident['id']}")
    watcher.incidents["a"].ids[INCIDENT_REPORTED].add("a second one")

    figures = storm.check(target, accepted_per_key, incidents, alerts, watcher)

    assert figures == {
        "keys": 4,
        "incidents": 5,
        "keys_without_incident": 1,
        "keys_with_several_incidents": 1,
        "incidents_of_unknown_keys": 1,
        "events_accepted": 10,
        "events_counted": 10,
        "lost": 2,  # k-00001's one, k-00003's one
        "doubled": 2,  # k-00002's one, the unknown key's one
        "alert_counts_differ_from_incident": 0,
        "incidents_not_of_one_alert": 1,
        "reported_not_once": 1,
        "ok": False,
    }
