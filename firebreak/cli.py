"""The `firebreak` command: `serve SERVICE` runs one service; `migrate` upgrades the services'
databases; `revision` adds a migration to a service; `run` runs the whole platform locally."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys

import uvloop

from firebreak.database import create_engine
from firebreak.settings import SERVICES, Settings, SettingsError
from firebreak.telemetry import setup_telemetry


def serve(service: str) -> None:
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
    settings = Settings.from_environment()
    setup_telemetry("migrate", settings.traces_dir, settings.log_level)

    from firebreak import migrations  # only here: a serving process must not carry Alembic

    async def migrate_all() -> None:
        for service in services:
            engine = create_engine(settings.database_url(service))
            try:
                await migrations.migrate(engine, service)
            finally:
                await engine.dispose()
            print(f"{service}: schema up to date", flush=True)

    asyncio.run(migrate_all())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="firebreak", description=__doc__)
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
    commands.add_parser("run", help="run the whole platform locally (make run)")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = set(getattr(args, "services", [])) - set(SERVICES)
    if unknown:
        parser.error(f"unknown service(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
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
    else:
        from firebreak.local import run  # only here: services need none of it

        run()


if __name__ == "__main__":
    main()
