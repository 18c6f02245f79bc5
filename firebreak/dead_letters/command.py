"""`firebreak dead-letters`: an operator lists, replays and discards dead letters through the
gateway (GET /v1/admin/dead-letters and its replay and discard routes), without curl."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, NoReturn

import httpx

PATH = "/v1/admin/dead-letters"
TIMEOUT_SECONDS = 30.0


def add_dead_letters_parser(commands: Any) -> None:
    """The `dead-letters` subcommand, on the `firebreak` command's subparsers."""
    parser = commands.add_parser(
        "dead-letters",
        help="list, replay or discard the events services' consumers gave up on (as an admin, "
        "through the gateway)",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("FIREBREAK_PUBLIC_URL", "http://127.0.0.1:8080"),
        help="the gateway (default: FIREBREAK_PUBLIC_URL, else http://127.0.0.1:8080)",
    )
    parser.add_argument(
        "--key", help="an admin's API key (default: FIREBREAK_ADMIN_KEY)", default=None
    )
    actions = parser.add_subparsers(dest="dead_letters_command", required=True)
    listing = actions.add_parser("list", help="every service's dead letters, newest first")
    listing.add_argument("--service", help="only this service's")
    for name, what in (("replay", "apply it now, once"), ("discard", "remove it unapplied")):
        action = actions.add_parser(name, help=what)
        action.add_argument("service", help="the service that parked it")
        action.add_argument("id", help="the dead letter's id")


def run_dead_letters_command(args: argparse.Namespace) -> None:
    """Runs the subcommand; exits 1 with the gateway's problem detail when refused or failed."""
    key = args.key or os.environ.get("FIREBREAK_ADMIN_KEY")
    if not key:
        _fail("an admin's API key is needed: --key or FIREBREAK_ADMIN_KEY")
    with httpx.Client(
        base_url=args.url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=TIMEOUT_SECONDS,
    ) as gateway:
        try:
            if args.dead_letters_command == "list":
                _list(gateway, args.service)
            elif args.dead_letters_command == "replay":
                replayed = _checked(gateway.post(f"{PATH}/{args.service}/{args.id}/replay"))
                note = " (it had been applied before: nothing was done again)"
                print(f"replayed {args.service} {args.id}{note if replayed['duplicate'] else ''}")
            else:
                _checked(gateway.delete(f"{PATH}/{args.service}/{args.id}"))
                print(f"discarded {args.service} {args.id}")
        except httpx.HTTPError as error:
            _fail(f"cannot reach the gateway at {args.url}: {error}")


def _list(gateway: httpx.Client, service: str | None) -> None:
    params = {"service": service} if service else {}
    cursor: str | None = None
    while True:
        page = _checked(gateway.get(PATH, params=params | ({"cursor": cursor} if cursor else {})))
        for letter in page["items"]:
            print(
                "\t".join(
                    str(letter[field])
                    for field in (
                        "service",
                        "id",
                        "parked_at",
                        "reason",
                        "deliveries",
                        "stream_sequence",
                        "subject",
                        "event_id",
                        "incident_id",
                        "error",
                    )
                )
            )
        for missing in page["unavailable"]:
            print(f"{missing} did not answer: its dead letters are not listed", file=sys.stderr)
        cursor = page["next_cursor"]
        if not cursor:
            return


def _checked(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json() if response.content else None
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    _fail(f"{response.status_code}: {detail}")


def _fail(message: str) -> NoReturn:
    print(f"firebreak dead-letters: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)
