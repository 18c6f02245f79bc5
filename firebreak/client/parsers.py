"""The client commands' command lines (argparse only: nothing here talks to anything).

Each leaf sets `client_command`, which firebreak.client.run dispatches on."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from firebreak.client.errors import EXIT_CODES_HELP

# The API's ids (firebreak/keyset_pages.py). `evidence verify` asks the gateway about an item
# by one, where anything else is an export's file, checked offline.
API_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
CONNECTION_HELP = (
    "The gateway and key: FIREBREAK_URL and FIREBREAK_KEY, else those `firebreak login` stored."
)


class HelpFormatter(argparse.HelpFormatter):
    """Wraps a description as usual, but keeps text already laid out in lines (the exit codes,
    the command's docstring) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--json", action="store_true", help="print plain JSON (the API's own shapes) for scripts"
    )
    return parent


def _leaf(commands: Any, name: str, client_command: str, help: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=f"{help[0].upper()}{help[1:]}. {CONNECTION_HELP}",
        parents=[_parent()],
        epilog=EXIT_CODES_HELP,
        formatter_class=HelpFormatter,
    )
    parser.set_defaults(client_command=client_command)
    return parser


def _group(commands: Any, name: str, help: str, dest: str) -> Any:
    parser = commands.add_parser(name, help=help, description=help)
    return parser.add_subparsers(dest=dest, required=True)


def add_client_parsers(commands: Any) -> None:
    """`login`, `incidents`, `timeline`, `schedules`, `trace` and `dead-letters` on the
    `firebreak` command's subparsers (`evidence add | export`: add_evidence_parsers)."""
    login = commands.add_parser(
        "login",
        help="check an API key against the gateway and store it for the other commands",
        description="Checks an API key against the gateway and stores the gateway's URL and the "
        "key in $XDG_CONFIG_HOME/firebreak/login.json (default ~/.config/firebreak), readable by "
        "you only. The key is read from a prompt, or from standard input when that is not a "
        "terminal (`firebreak login < keyfile`), never from the command line, which `ps` shows "
        "to everyone on the machine. FIREBREAK_URL and FIREBREAK_KEY, when set, override the "
        "stored login in every command.",
        parents=[_parent()],
        epilog=EXIT_CODES_HELP,
        formatter_class=HelpFormatter,
    )
    login.add_argument(
        "--url",
        help="the gateway (default: FIREBREAK_URL, the stored login's, else "
        "http://127.0.0.1:8080, where `make run` serves it)",
    )
    login.set_defaults(client_command="login")

    incidents = _group(commands, "incidents", "list, show, report and handle incidents", "what")
    listing = _leaf(incidents, "list", "incidents list", "incidents visible to you, newest first")
    listing.add_argument("--status", help="only these, e.g. triaged")
    listing.add_argument("--priority", help="only these, e.g. P1")
    listing.add_argument("--type", help="only these, e.g. security_breach")
    listing.add_argument(
        "--limit", type=_positive, default=50, help="at most this many (default 50)"
    )
    show = _leaf(incidents, "show", "incidents show", "one incident")
    show.add_argument("incident", help="the incident's id", type=_api_id)
    report = _leaf(incidents, "report", "incidents report", "report an incident")
    report.add_argument("--title", required=True)
    report.add_argument("--description", default="", help="what happened (default: none)")
    report.add_argument("--type", required=True, help="e.g. service_outage, security_breach")
    report.add_argument("--impact", required=True, help="extensive, significant, moderate, minor")
    report.add_argument("--urgency", required=True, help="critical, high, medium, low")
    report.add_argument("--reporter-name", required=True)
    report.add_argument("--reporter-email", required=True)
    report.add_argument("--asset", action="append", default=[], help="an affected asset; repeat")
    report.add_argument("--label", action="append", default=[], help="a label; repeat")
    report.add_argument(
        "--idempotency-key",
        help="retrying with the same key reports the incident once (the API's Idempotency-Key)",
    )
    ack = _leaf(incidents, "ack", "incidents ack", "acknowledge an incident (take it on)")
    ack.add_argument("incident", help="the incident's id", type=_api_id)
    for name, what in (
        ("contain", "record that an incident is contained"),
        ("resolve", "resolve a contained incident"),
    ):
        command = _leaf(incidents, name, f"incidents {name}", what)
        command.add_argument("incident", help="the incident's id", type=_api_id)
        command.add_argument("--summary", required=True, help="what was done")

    timeline = _leaf(commands, "timeline", "timeline", "what happened to an incident, in order")
    timeline.add_argument("incident", help="the incident's id", type=_api_id)
    timeline.add_argument("--key-events", action="store_true", help="only the key events")

    schedules = _group(commands, "schedules", "on-call schedules", "what")
    who = _leaf(schedules, "who", "schedules who", "who is on call now, for each schedule")
    who.add_argument(
        "schedule", nargs="?", type=_api_id, help="only this schedule (its id, or `default`)"
    )

    trace = _leaf(
        commands,
        "trace",
        "trace",
        "an incident's whole trace as a tree: service, span, start offset and duration, with "
        "the time each hop between services took",
    )
    trace.add_argument(
        "incident", help="the incident's id (its trace id is read from the API)", type=_api_id
    )
    trace.add_argument(
        "--traces",
        type=Path,
        help="the folder of the platform's span files (*.jsonl; default: "
        "$FIREBREAK_VAR_DIR/traces, else var/traces, where `make run` writes them)",
    )
    trace.add_argument(
        "--jaeger",
        default=os.environ.get("FIREBREAK_JAEGER_URL"),
        metavar="URL",
        help="read the trace from this Jaeger query service's HTTP API instead, e.g. "
        "http://jaeger:16686 (default: FIREBREAK_JAEGER_URL)",
    )

    _add_dead_letters_parser(commands)


def add_evidence_parsers(evidence_commands: Any) -> None:
    """`evidence add` and `evidence export` on the `evidence` command's subparsers."""
    add = _leaf(
        evidence_commands,
        "add",
        "evidence add",
        "submit a file as an evidence item of an incident, streamed from disk with its "
        "SHA-256: nothing is kept unless all of it arrived unchanged",
    )
    add.add_argument("incident", help="the incident's id", type=_api_id)
    add.add_argument("file", type=Path, help="the item")
    add.add_argument("--filename", help="its name in the record (default: the file's name)")
    add.add_argument("--description", default="")
    add.add_argument("--source", default="", help="where it came from: host, path, device, person")
    add.add_argument(
        "--acquisition",
        default="copy",
        help="copy (default), image, export, photo or statement",
    )
    add.add_argument(
        "--collected-at", help="when it was collected, ISO 8601 with an offset (default: now)"
    )
    export = _leaf(
        evidence_commands,
        "export",
        "evidence export",
        "download an incident's evidence export (a ZIP that `firebreak evidence verify` checks "
        "offline), streamed to a file",
    )
    export.add_argument("incident", help="the incident's id", type=_api_id)
    export.add_argument(
        "-o",
        "--output",
        type=Path,
        help="the file to write (default: evidence-<incident>.zip here); never overwritten",
    )


def is_evidence_id(target: str) -> bool:
    """`evidence verify TARGET`: an item's id (asked of the gateway) unless a file by that name
    exists (an export, checked offline)."""
    return API_ID.fullmatch(target) is not None and not Path(target).exists()


def _add_dead_letters_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "dead-letters",
        help="list, replay or discard the events services' consumers gave up on (as an admin, "
        "through the gateway)",
        description="Lists, replays or discards dead letters through the gateway (GET "
        "/v1/admin/dead-letters and its replay and discard routes), as an admin. The key: --key "
        "or FIREBREAK_ADMIN_KEY, else the login's (FIREBREAK_KEY, or `firebreak login`'s).",
        epilog=EXIT_CODES_HELP,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--url",
        help="the gateway (default: FIREBREAK_PUBLIC_URL with an admin key, else the login's)",
    )
    parser.add_argument(
        "--key", help="an admin's API key (default: FIREBREAK_ADMIN_KEY, else the login's)"
    )
    parser.set_defaults(client_command="dead-letters")
    actions = parser.add_subparsers(dest="dead_letters_command", required=True)
    listing = actions.add_parser("list", help="every service's dead letters, newest first")
    listing.add_argument("--service", help="only this service's")
    for name, what in (("replay", "apply it now, once"), ("discard", "remove it unapplied")):
        action = actions.add_parser(name, help=what)
        action.add_argument("service", type=_api_id, help="the service that parked it")
        action.add_argument("id", type=_api_id, help="the dead letter's id")


def _api_id(text: str) -> str:
    """An id as the API's are: anything else (a slash, say) would name another route."""
    if API_ID.fullmatch(text) is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an id (letters, digits and '-')")
    return text


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value
