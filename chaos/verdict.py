"""What each fault did: what clients got, incidents lost, effects doubled, and how long until
reports were accepted again and the pipeline drained; the run's verdict and its table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import asyncpg

from bench.figures import fmt
from bench.observe import FLOW, EventWatcher
from chaos.clients import Attempt, Clients, Report
from firebreak.events import (
    INCIDENT_ACKNOWLEDGED,
    INCIDENT_CONTAINED,
    INCIDENT_RESOLVED,
    NOTIFICATION_SENT,
)

STEADY = "none (steady load)"
# Event types that are each one effect, once per incident: a second id of one is a double.
EFFECTS = (*FLOW, INCIDENT_ACKNOWLEDGED, INCIDENT_CONTAINED, INCIDENT_RESOLVED)


@dataclass
class Window:
    """One fault's span: from its injection until the next fault's (or the run's end)."""

    fault: str
    injected_at: float
    restored_at: float
    drained: bool = False
    error: str = ""  # injecting or restoring it failed
    log_lines: list[str] = field(default_factory=list)  # errors the processes logged meanwhile
    extra: dict[str, Any] = field(default_factory=dict)  # fault-specific figures


@dataclass
class Findings:
    """Incidents lost or doubled over the whole run, and why."""

    lost: dict[str, str] = field(default_factory=dict)  # incident id: what is missing
    doubled: dict[str, str] = field(default_factory=dict)  # incident id: what is twice

    def add_lost(self, incident_id: str, why: str) -> None:
        self.lost.setdefault(incident_id, why)

    def add_doubled(self, incident_id: str, why: str) -> None:
        self.doubled.setdefault(incident_id, why)


def status_label(attempt: Attempt) -> str:
    if attempt.status == 0:
        return "refused" if attempt.error == "ConnectError" else attempt.error
    if attempt.status == 503:
        return "503+Retry-After" if attempt.retry_after else "503 without Retry-After"
    return str(attempt.status)


def stream_findings(watcher: EventWatcher, accepted: list[str], findings: Findings) -> None:
    for incident_id in accepted:
        events = watcher.incidents.get(incident_id)
        missing = [kind for kind in FLOW if events is None or not events.times.get(kind)]
        if missing:
            findings.add_lost(incident_id, "stream lacks " + ", ".join(missing))
        if events is not None:
            for kind in EFFECTS:
                if len(events.ids.get(kind, ())) > 1:
                    findings.add_doubled(incident_id, f"{len(events.ids[kind])} x {kind}")


async def database_findings(urls: dict[str, str], accepted: list[str], findings: Findings) -> None:
    """Intake's registry has each accepted incident triaged and notified; notify and review
    hold no effect twice."""

    async def rows(service: str, query: str, *args: Any) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(urls[service].replace("+asyncpg", ""), timeout=10)
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()

    registry = {
        row["id"]: row
        for row in await rows(
            "intake",
            "SELECT id, triaged_at, notified_at FROM incidents WHERE id = ANY($1::text[])",
            accepted,
        )
    }
    for incident_id in accepted:
        row = registry.get(incident_id)
        if row is None:
            findings.add_lost(incident_id, "not in intake's registry")
        elif row["triaged_at"] is None or row["notified_at"] is None:
            findings.add_lost(incident_id, "registry not triaged and notified")
    for row in await rows(
        "notify",
        "SELECT incident_id, channel, audience, count(*) AS n FROM notifications"
        " WHERE incident_id = ANY($1::text[]) GROUP BY incident_id, channel, audience"
        " HAVING count(*) > 1",
        accepted,
    ):
        findings.add_doubled(row["incident_id"], f"{row['n']} notification rows ({row['channel']})")
    for row in await rows(
        "review",
        "SELECT incident_id, type, count(*) AS n FROM timeline_entries"
        " WHERE incident_id = ANY($1::text[]) AND type = ANY($2::text[])"
        " GROUP BY incident_id, type HAVING count(*) > 1",
        accepted,
        list(EFFECTS),
    ):
        findings.add_doubled(row["incident_id"], f"{row['n']} timeline entries {row['type']}")


def window_figures(
    window: Window, until: float, clients: Clients, watcher: EventWatcher, findings: Findings
) -> dict[str, Any]:
    attempts = [a for a in clients.attempts if window.injected_at <= a.answered_at < until]
    reports = [r for r in clients.reports if window.injected_at <= r.due_at < until]
    ids = [r.incident_id for r in reports if r.incident_id is not None]
    return {
        "fault": window.fault,
        "error": window.error or None,
        "reports": len(reports),
        "accepted": len(ids),
        "gave_up": sum(1 for r in reports if r.gave_up),
        "lost": sum(1 for i in ids if i in findings.lost),
        "doubled": sum(1 for i in ids if i in findings.doubled),
        "accepted_again_s": accepted_again(window, attempts),
        "drained_s": drained_after(window, clients.reports, watcher),
        "drained": window.drained,
        "clients_got": dict(Counter(status_label(a) for a in attempts).most_common()),
        "problems": dict(
            Counter(f"{a.status} {a.detail}" for a in attempts if a.detail).most_common(8)
        ),
        "clients_got_by_kind": {
            kind: dict(Counter(status_label(a) for a in attempts if a.kind == kind))
            for kind in sorted({a.kind for a in attempts})
        },
        "lost_examples": examples(ids, findings.lost),
        "doubled_examples": examples(ids, findings.doubled),
        "log_lines": window.log_lines,
        **window.extra,
    }


def examples(ids: list[str], found: dict[str, str], most: int = 5) -> dict[str, str]:
    return dict(islice(((i, found[i]) for i in ids if i in found), most))


def accepted_again(window: Window, attempts: list[Attempt]) -> float | None:
    """Seconds from the injection to the first report accepted after the last one refused (by
    when the answers came); 0 if none was refused; None if none was accepted after."""
    reports = [a for a in attempts if a.kind == "report"]
    failed = [a.answered_at for a in reports if a.status != 201]
    if not failed:
        return 0.0
    last_failure = max(failed)
    after = [a.answered_at for a in reports if a.status == 201 and a.answered_at > last_failure]
    return round(min(after) - window.injected_at, 2) if after else None


def drained_after(window: Window, reports: list[Report], watcher: EventWatcher) -> float | None:
    """Seconds from the injection until every report sent before the restoration and accepted
    had its notification.sent stored; None if one never had."""
    latest = window.injected_at
    for report in reports:
        if report.due_at > window.restored_at or report.incident_id is None:
            continue
        stored = watcher.stored(report.incident_id, NOTIFICATION_SENT)
        if stored is None:
            return None
        latest = max(latest, stored)
    return round(latest - window.injected_at, 2)


def verdict(rows: list[dict[str, Any]], findings: Findings) -> list[str]:
    """Why the run failed; empty when it passed."""
    reasons = []
    if findings.lost:
        reasons.append(f"{len(findings.lost)} incidents lost")
    if findings.doubled:
        reasons.append(f"{len(findings.doubled)} incidents with an effect doubled")
    served_500 = sum(row["clients_got"].get("500", 0) for row in rows)
    if served_500:
        reasons.append(f"{served_500} answers 500")
    for row in rows:
        if row["error"]:
            reasons.append(f"{row['fault']}: {row['error']}")
        elif not row["drained"]:
            reasons.append(f"{row['fault']}: the pipeline did not drain")
        if row["accepted_again_s"] is None and row["fault"] != STEADY:
            reasons.append(f"{row['fault']}: reports were not accepted again")
    return reasons


def table(rows: list[dict[str, Any]], reasons: list[str]) -> str:
    lines = [
        f"{'fault':<34} {'reports':>7} {'accepted':>8} {'gave up':>7} {'lost':>4} "
        f"{'doubled':>7} {'accepted again':>14} {'drained':>8}  clients got"
    ]
    for row in rows:
        got = "  ".join(f"{label} {count}" for label, count in row["clients_got"].items())
        lines.append(
            f"{row['fault']:<34} {row['reports']:>7} {row['accepted']:>8} {row['gave_up']:>7} "
            f"{row['lost']:>4} {row['doubled']:>7} {fmt(row['accepted_again_s'], 's'):>14} "
            f"{fmt(row['drained_s'], 's') if row['drained'] else 'NO':>8}  {got}"
        )
        for key in ("leader_elected_s", "first_event_stored_s", "first_report_through_s"):
            if key in row:
                lines.append(f"{'':<34} {key.replace('_', ' ')}: {fmt(row[key], 's')}")
        for what in ("lost", "doubled"):
            for incident_id, why in list(row[f"{what}_examples"].items())[:2]:
                lines.append(f"{'':<34} {what}: {incident_id} {why}")
        for problem, count in list(row["problems"].items())[:3]:
            lines.append(f"{'':<34} {count} x {problem[:140]}")
        if row["error"]:
            lines.append(f"{'':<34} ERROR: {row['error']}")
        for line in row["log_lines"][:3]:
            lines.append(f"{'':<34} log: {line[:160]}")
    lines.append("")
    lines.append("verdict: " + ("PASS" if not reasons else "FAIL — " + "; ".join(reasons)))
    return "\n".join(lines)
