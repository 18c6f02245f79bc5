"""The `firebreak` command: `serve SERVICE` runs one service; `migrate` creates the services'
database schemas; `run` runs the whole platform locally."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import secrets
import signal
import sys
import time

import httpx
import uvloop

from firebreak.database import create_engine, create_schema
from firebreak.launcher import Platform
from firebreak.settings import DEFAULT_GRPC_PORTS, SERVICES, Settings
from firebreak.telemetry import setup_telemetry


def serve(service: str) -> None:
    settings = Settings()
    provider = setup_telemetry(service, settings.traces_dir, settings.log_level)
    module = importlib.import_module(f"services.{service}.main")
    try:
        # uvloop: the event loop's own work was the largest single cost per event after
        # SQLite's; grpc.aio, nats-py and uvicorn all run on it.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(module.serve(settings))
    finally:
        provider.shutdown()  # flushes the spans still queued


def migrate(services: list[str]) -> None:
    """Creates each service's missing tables (what a deployment runs before new pods start)."""
    settings = Settings()
    setup_telemetry("migrate", settings.traces_dir, settings.log_level)

    async def migrate_all() -> None:
        for service in services:
            models = importlib.import_module(f"services.{service}.models")
            engine = create_engine(settings.database_url(service))
            try:
                await create_schema(engine, models.metadata)
            finally:
                await engine.dispose()
            print(f"{service}: schema up to date", flush=True)

    asyncio.run(migrate_all())


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run() -> None:
    # Stop cleanly on Ctrl-C and on SIGTERM, even when started with SIGINT ignored (as a
    # non-interactive shell does for background jobs, and children inherit).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    settings = Settings()
    admin_key = settings.admin_key or "fbk_" + secrets.token_urlsafe(32)
    platform = Platform(
        var_dir=settings.var_dir.resolve(),
        nats_port=settings.local_nats_port,
        nats_url=settings.bus_url,
        start_nats=settings.nats_url is None,  # an explicit URL means an external NATS
        gateway_port=settings.gateway_port,
        grpc_ports={
            name: int(settings.grpc_addr(name).rsplit(":", 1)[1]) for name in DEFAULT_GRPC_PORTS
        },
        admin_key=admin_key,
        log_line=lambda label, line: print(f"{label:>8} | {line}", flush=True),
    )
    try:
        platform.start()
        demo_client, demo_key = _demo_client(platform)
        print(
            f"""
Firebreak is running.
  API          {platform.gateway_url}   (OpenAPI docs: {platform.gateway_url}/docs)
  admin key    {admin_key}
  demo client  {demo_client}
  demo key     {demo_key}
  data         {platform.var_dir}   (SQLite files, NATS store, traces/*.jsonl, logs/)

Try:
  curl -s -X POST {platform.gateway_url}/v1/incidents \\
    -H 'Authorization: Bearer {demo_key}' -H 'Content-Type: application/json' \\
    -d '{{"title": "VPN down", "description": "No one can connect", "type": "service_outage",
         "impact": "significant", "urgency": "high",
         "reporter": {{"name": "Ada", "email": "ada@example.com"}}}}'

Press Ctrl-C to stop.
""",
            flush=True,
        )
        while all(process.poll() is None for process in platform.processes.values()):
            time.sleep(0.5)
        print("a process exited; stopping the platform", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    finally:
        # A second Ctrl-C must not cut the shutdown short and orphan the services.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        platform.stop()
        print("Firebreak stopped.", flush=True)


def _demo_client(platform: Platform) -> tuple[str, str]:
    """The demo client and its key, created once and reused while the key still works."""
    saved = platform.var_dir / "demo-client.json"
    if saved.exists():
        demo = json.loads(saved.read_text())
        check = httpx.get(
            f"{platform.gateway_url}/v1/incidents?limit=1",
            headers={"Authorization": f"Bearer {demo['key']}"},
        )
        if check.status_code == 200:
            return demo["client_id"], demo["key"]
    admin = {"Authorization": f"Bearer {platform.admin_key}"}
    client = (
        httpx.post(
            f"{platform.gateway_url}/v1/clients", json={"name": "Demo client"}, headers=admin
        )
        .raise_for_status()
        .json()
    )
    key = (
        httpx.post(
            f"{platform.gateway_url}/v1/clients/{client['id']}/api-keys",
            json={"role": "client"},
            headers=admin,
        )
        .raise_for_status()
        .json()
    )
    saved.write_text(json.dumps({"client_id": client["id"], "key": key["key"]}))
    saved.chmod(0o600)  # a live key: readable by its owner only
    return client["id"], key["key"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="firebreak", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run one service")
    serve_parser.add_argument("service", choices=SERVICES)
    migrate_parser = commands.add_parser("migrate", help="create the database schemas")
    migrate_parser.add_argument(
        "services", nargs="*", metavar="SERVICE", help=f"any of {', '.join(SERVICES)}; default: all"
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
    else:
        run()


if __name__ == "__main__":
    main()
