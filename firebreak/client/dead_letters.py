"""`firebreak dead-letters`: an operator lists, replays and discards dead letters through the
gateway (GET /v1/admin/dead-letters and its replay and discard routes), without curl."""

from __future__ import annotations

import argparse
import os
import sys

from firebreak.client import config
from firebreak.client.gateway import Gateway

PATH = "/v1/admin/dead-letters"
FIELDS = (
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


def run(args: argparse.Namespace) -> None:
    with Gateway(_login(args)) as gateway:
        if args.dead_letters_command == "list":
            _list(gateway, args.service)
        elif args.dead_letters_command == "replay":
            replayed = gateway.call("POST", f"{PATH}/{args.service}/{args.id}/replay")
            note = " (it had been applied before: nothing was done again)"
            print(f"replayed {args.service} {args.id}{note if replayed['duplicate'] else ''}")
        else:
            gateway.call("DELETE", f"{PATH}/{args.service}/{args.id}")
            print(f"discarded {args.service} {args.id}")


def _login(args: argparse.Namespace) -> config.Login:
    """An admin key given (--key, FIREBREAK_ADMIN_KEY) goes to --url, FIREBREAK_PUBLIC_URL or
    the local gateway; otherwise the login's key goes to its gateway (or --url)."""
    key = args.key or os.environ.get("FIREBREAK_ADMIN_KEY")
    if key:
        url = args.url or os.environ.get("FIREBREAK_PUBLIC_URL") or config.DEFAULT_URL
        return config.Login(url=url, key=key)
    login = config.current_login()
    return config.Login(url=args.url or login.url, key=login.key)


def _list(gateway: Gateway, service: str | None) -> None:
    params = {"service": service} if service else {}
    cursor: str | None = None
    while True:
        page = gateway.call("GET", PATH, params=params | ({"cursor": cursor} if cursor else {}))
        for letter in page["items"]:
            print("\t".join(str(letter[field]) for field in FIELDS))
        for missing in page["unavailable"]:
            print(f"{missing} did not answer: its dead letters are not listed", file=sys.stderr)
        cursor = page["next_cursor"]
        if not cursor:
            return
