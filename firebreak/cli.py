"""The `firebreak` command: `serve SERVICE` runs one service; `migrate` upgrades the services'
databases; `revision` adds a migration to a service; `run` runs the whole platform locally.
For responders and SREs, against a running platform: `login`, `incidents`, `timeline`,
`evidence add | verify | export`, `schedules who`, `trace` and `dead-letters` (each with --help)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys

from firebreak.client.errors import EXIT_CODES_HELP
from firebreak.client.parsers import (
    HelpFormatter,
    add_client_parsers,
    add_evidence_parsers,
    is_evidence_id,
)
from firebreak.settings import SERVICES, Settings, SettingsError

# The service commands import what they run on only when run: the client commands, run by
# people at a prompt, start without loading SQLAlchemy, uvloop and OpenTelemetry.


def serve(service: str) -> None:
    import uvloop

    from firebreak.telemetry import setup_telemetry

    settings = Settings.from_environment()
    provider = setup_telemetry(service, settings.traces_dir, settings.log_level)
    module = importlib.import_module(f"services.{service}.main")
    try:
        # uvloop: about 15% less CPU per incident than asyncio's own loop in `make bench`;
        # grpc.aio, nats-py and uvicorn all run on it.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(module.serve(settings))
    except SettingsError as error:
        # The operator's to fix, not a crash: one line that names the file and line.
        print(f"firebreak {service}: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    finally:
        provider.shutdown()  # flushes the spans still queued


def migrate(services: list[str]) -> None:
    """Upgrades each service's database to its newest migration (what a deployment runs before
    new pods start)."""
    from firebreak import migrations  # only here: a serving process must not carry Alembic
    from firebreak.database import create_engine
    from firebreak.telemetry import setup_telemetry

    settings = Settings.from_environment()
    setup_telemetry("migrate", settings.traces_dir, settings.log_level)

    async def migrate_all() -> None:
        for service in services:
            engine = create_engine(settings.database_url(service))
            try:
                await migrations.migrate(engine, service)
            finally:
                await engine.dispose()
            print(f"{service}: schema up to date", flush=True)

    asyncio.run(migrate_all())


def evidence(args: argparse.Namespace) -> None:
    # Imported only here: other commands need none of it, and `verify` needs no settings.
    if args.evidence_command == "verify":
        from services.evidence.export_verifier import verify_command

        verify_command(args.target, args.public_key)
    elif args.evidence_command == "public-key":
        from services.evidence.keyring import public_key_command

        public_key_command()
    else:
        from services.evidence.keyring import rotate_master_key_command

        rotate_master_key_command(sys.stdin.read())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="firebreak",
        description=__doc__,
        epilog=EXIT_CODES_HELP,
        formatter_class=HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run one service")
    serve_parser.add_argument("service", choices=SERVICES)
    migrate_parser = commands.add_parser("migrate", help="upgrade the databases")
    migrate_parser.add_argument(
        "services", nargs="*", metavar="SERVICE", help=f"any of {', '.join(SERVICES)}; default: all"
    )
    revision_parser = commands.add_parser(
        "revision", help="write a service's next migration (in a source checkout)"
    )
    revision_parser.add_argument("service", choices=SERVICES)
    revision_parser.add_argument("-m", "--message", required=True, help="what it changes")
    revision_parser.add_argument(
        "--autogenerate",
        action="store_true",
        help="fill it with what the models have and the migrations lack; review the result",
    )
    evidence_parser = commands.add_parser(
        "evidence", help="add, verify and export evidence; rotate and show evidence's keys"
    )
    evidence_commands = evidence_parser.add_subparsers(dest="evidence_command", required=True)
    evidence_commands.add_parser(
        "rotate-master-key",
        help="re-wrap every evidence data key with a new master key, read from standard input "
        "(base64 of 32 bytes); the current one is FIREBREAK_EVIDENCE_MASTER_KEY",
    )
    verify_parser = evidence_commands.add_parser(
        "verify",
        help="check an evidence export (a ZIP from `firebreak evidence export`) offline: "
        "contents, custody chains and signatures; or have evidence verify one item (its id: "
        "through the gateway, as logged in); exit 0 when intact, 1 when not",
        epilog=EXIT_CODES_HELP,
        formatter_class=HelpFormatter,
    )
    verify_parser.add_argument(
        "target",
        metavar="ARCHIVE|EVIDENCE_ID",
        help="the export's ZIP file, or an item's id (unless a file of that name exists)",
    )
    verify_parser.add_argument(
        "--json", action="store_true", help="(an item) print the verification as JSON"
    )
    verify_parser.add_argument(
        "--public-key",
        action="append",
        default=[],
        metavar="FILE",
        help="the firm's Ed25519 public key (PEM, or base64 of its 32 bytes) to trust instead "
        "of the one inside the archive; repeat it for keys used before a rotation",
    )
    evidence_commands.add_parser(
        "public-key",
        help="print the public key of FIREBREAK_EVIDENCE_SIGNING_KEY and its fingerprint: what "
        "the firm publishes for exports to be verified against",
    )
    add_evidence_parsers(evidence_commands)
    commands.add_parser("run", help="run the whole platform locally (make run)")
    add_client_parsers(commands)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = set(getattr(args, "services", [])) - set(SERVICES)
    if unknown:
        parser.error(f"unknown service(s): {', '.join(sorted(unknown))}")
    if args.command == "evidence" and args.evidence_command == "verify":
        if is_evidence_id(args.target):
            if args.public_key:
                parser.error("--public-key is for an export's ZIP, not an item's id")
            args.client_command = "evidence verify"
        elif args.json:
            parser.error("--json is for an item's id, not an export's ZIP")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if getattr(args, "client_command", None):
        from firebreak.client.run import run_client_command

        raise SystemExit(run_client_command(args))
    if args.command == "serve":
        serve(args.service)
    elif args.command == "migrate":
        migrate(args.services or list(SERVICES))
    elif args.command == "revision":
        from firebreak import migrations

        path = asyncio.run(
            migrations.new_revision(args.service, args.message, autogenerate=args.autogenerate)
        )
        print(f"wrote {path}")
    elif args.command == "evidence":
        evidence(args)
    else:
        from firebreak.local import run  # only here: services need none of it

        run()


if __name__ == "__main__":
    main()
