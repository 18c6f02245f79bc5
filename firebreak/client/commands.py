"""`firebreak login`, `incidents …`, `timeline` and `schedules who`: one function per command,
each given its parsed arguments, the gateway and the output."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from rich.markup import escape

from firebreak.client import config
from firebreak.client.errors import CommandFailed, ExitCode, Refused
from firebreak.client.gateway import Gateway
from firebreak.client.output import PRIORITY_STYLES, STATUS_STYLES, Output, styled, when


def login(args: argparse.Namespace, out: Output) -> None:
    url = (args.url or config.gateway_url()).rstrip("/")
    key = _read_key()
    if not key:
        raise CommandFailed(ExitCode.USAGE, "no key given")
    with Gateway(config.Login(url=url, key=key)) as gateway:
        # Any key may list incidents (a client's its own): a refusal means the key is no good.
        try:
            gateway.call("GET", "/v1/incidents", params={"limit": "1"})
        except Refused as refused:
            raise CommandFailed(
                ExitCode.REFUSED,
                f"the gateway at {url} refused the key ({refused.status} "
                f"{refused.problem.get('title', '')}); nothing was stored",
            ) from None
    path = config.store_login(config.Login(url=url, key=key))
    if out.as_json:
        out.json({"url": url, "stored_in": str(path)})
    else:
        out.line(f"Logged in to {escape(url)}; the key is kept in {escape(str(path))}.")


def _read_key() -> str:
    """From a prompt that does not echo, or the first line of standard input when piped."""
    if sys.stdin.isatty():
        return getpass.getpass("API key: ").strip()
    return sys.stdin.readline().strip()


def incidents_list(args: argparse.Namespace, gateway: Gateway, out: Output) -> None:
    filters = {
        name: value
        for name in ("status", "priority", "type")
        if (value := getattr(args, name)) is not None
    }
    items = gateway.pages("/v1/incidents", filters, limit=args.limit)
    if out.as_json:
        out.json(items)
        return
    if not items:
        out.line("No incidents.")
        return
    out.table(
        ["REFERENCE", "ID", "STATUS", "PRIORITY", "CREATED", "TITLE"],
        [
            [
                escape(item["reference"]),
                escape(item["id"]),
                styled(item["status"], STATUS_STYLES),
                styled(item["priority"], PRIORITY_STYLES),
                when(item["created_at"]),
                escape(item["title"]),
            ]
            for item in items
        ],
    )


def incidents_show(args: argparse.Namespace, gateway: Gateway, out: Output) -> None:
    _show(gateway.call("GET", f"/v1/incidents/{args.incident}"), out)


def incidents_report(args: argparse.Namespace, gateway: Gateway, out: Output) -> None:
    body = {
        "title": args.title,
        "description": args.description,
        "type": args.type,
        "impact": args.impact,
        "urgency": args.urgency,
        "reporter": {"name": args.reporter_name, "email": args.reporter_email},
        "affected_assets": args.asset,
        "labels": args.label,
    }
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    _show(gateway.call("POST", "/v1/incidents", json=body, headers=headers), out)


def incidents_command(args: argparse.Namespace, gateway: Gateway, out: Output) -> None:
    """ack, contain and resolve: one lifecycle command, answered with the incident after it."""
    route = {"ack": "acknowledge", "contain": "contain", "resolve": "resolve"}[args.what]
    body = {"summary": args.summary} if args.what in ("contain", "resolve") else None
    _show(gateway.call("POST", f"/v1/incidents/{args.incident}/{route}", json=body), out)


def _show(incident: dict[str, Any], out: Output) -> None:
    if out.as_json:
        out.json(incident)
        return
    milestones = incident["milestones"]
    roles = incident.get("roles") or {}
    commander = roles.get("incident_commander")
    pairs = [
        ("Reference", escape(incident["reference"])),
        ("Id", escape(incident["id"])),
        ("Title", escape(incident["title"])),
        ("Status", styled(incident["status"], STATUS_STYLES)),
        ("Priority", styled(incident["priority"], PRIORITY_STYLES)),
        (
            "Type",
            escape(
                f"{incident['type']}, impact {incident['impact']}, urgency {incident['urgency']}"
            ),
        ),
        ("Client", escape(incident["client_id"])),
        ("Reporter", escape(f"{incident['reporter']['name']} <{incident['reporter']['email']}>")),
    ]
    if commander:
        pairs.append(("Commander", escape(commander["name"])))
    for stage in ("reported", "triaged", "acknowledged", "contained", "resolved", "closed"):
        if moment := milestones.get(f"{stage}_at"):
            pairs.append((stage.capitalize(), when(moment)))
    pairs.append(("Trace", escape(incident["trace_id"])))
    if incident["description"]:
        pairs.append(("Description", escape(incident["description"])))
    out.fields(pairs)


def timeline(args: argparse.Namespace, gateway: Gateway, out: Output) -> None:
    params = {"key_events": "true"} if args.key_events else {}
    entries = gateway.call("GET", f"/v1/incidents/{args.incident}/timeline", params=params)[
        "entries"
    ]
    if out.as_json:
        out.json(entries)
        return
    if not entries:
        out.line("Nothing on the timeline yet.")
        return
    rows = []
    for entry in entries:
        text = entry["summary"]
        written = "; ".join(f"{field['name']}: {field['value']}" for field in entry["fields"])
        rows.append(
            [
                when(entry["occurred_at"]),
                ("[bold]★[/] " if entry["key_event"] else "") + escape(entry["type"]),
                escape(entry["actor"]["name"] or entry["actor"]["id"]),
                escape(f"{text} ({written})" if written else text),
            ]
        )
    out.table(["WHEN", "WHAT", "WHO", "SUMMARY"], rows)


def schedules_who(args: argparse.Namespace, gateway: Gateway, out: Output) -> None:
    if args.schedule:
        schedules = [gateway.call("GET", f"/v1/schedules/{args.schedule}")]
    else:
        schedules = gateway.pages("/v1/schedules", {}, limit=10_000)
    answers = []
    for schedule in schedules:
        on_call = gateway.call("GET", f"/v1/schedules/{schedule['id']}/on-call")
        answers.append({"schedule": {"id": schedule["id"], "name": schedule["name"]}, **on_call})
    if out.as_json:
        out.json(answers)
        return
    rows = []
    for answer in answers:
        person = answer["person"]
        rows.append(
            [
                escape(answer["schedule"]["name"]),
                escape(answer["schedule_id"]),
                escape(person["name"] or person["id"]) if person else "[dim]nobody[/]",
                escape(answer["source"] or "-"),
                when(answer["until"]),
            ]
        )
    out.table(["SCHEDULE", "ID", "ON CALL", "FROM", "UNTIL"], rows)
