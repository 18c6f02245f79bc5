"""`firebreak run`: the whole platform on this machine, as `make run` starts it.

Kept apart from the CLI so that a service process (`firebreak serve`) never loads what only this
needs (httpx, the launcher).
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import signal
import time
from pathlib import Path

import httpx

from firebreak.launcher import Platform, new_evidence_key
from firebreak.local_secrets import kept_secret, write_private
from firebreak.settings import DEFAULT_GRPC_PORTS, Settings

ADMIN_KEY_FILE = "admin-key"
# Intake's SMTP listener for reports by email, when FIREBREAK_INBOUND_SMTP_PORT sets none.
LOCAL_INBOUND_SMTP_PORT = 14026


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run() -> None:
    # Stop cleanly on Ctrl-C and on SIGTERM, even when started with SIGINT ignored (as a
    # non-interactive shell does for background jobs, and children inherit).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    settings = Settings.from_environment()
    admin_key = settings.admin_key or local_admin_key(settings.var_dir.resolve())
    master_key, signing_key = _evidence_keys(settings)
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
        mail_port=_mail_catcher_port(settings),
        inbound_mail_port=settings.inbound_smtp_port or LOCAL_INBOUND_SMTP_PORT,
        evidence_master_key=master_key,
        evidence_signing_key=signing_key,
        log_line=lambda label, line: print(f"{label:>8} | {line}", flush=True),
    )
    try:
        platform.start()
        demo_client, demo_key = _demo_client(platform)
        sign_in_link = _console_sign_in_link(platform)
        print(
            f"""
Firebreak is running.
  API          {platform.gateway_url}   (OpenAPI docs: {platform.gateway_url}/docs)
  console      {platform.gateway_url}/console
               first sign-in: {sign_in_link}
               (one-time, 24 h: sets the local admin's password; a new one at each start)
  admin key    {_admin_key_line(settings, platform)}
  demo client  {demo_client}
  demo key     {demo_key}
  data         {platform.var_dir}   (SQLite files, NATS store, traces/*.jsonl, logs/)
  mail         {_mail_line(platform)}
  mail in      {_inbound_mail_line(settings, platform)}

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
        # A process that dies is started again, as a Deployment would: one dead service no
        # longer stops the whole platform.
        while True:
            platform.restart_dead()
            time.sleep(0.25)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    finally:
        # A second Ctrl-C must not cut the shutdown short and orphan the services.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        platform.stop()
        print("Firebreak stopped.", flush=True)


def local_admin_key(var_dir: Path) -> str:
    """The bootstrap admin key of a local platform: generated on the first run and kept in
    the var dir, readable by its owner only. Never printed: the banner says where it is, since
    whatever the terminal shows may end up in a log or on a shared screen."""
    return kept_secret(var_dir / ADMIN_KEY_FILE, lambda: "fbk_" + secrets.token_urlsafe(32))


def _admin_key_line(settings: Settings, platform: Platform) -> str:
    if settings.admin_key is not None:
        return "the one in FIREBREAK_ADMIN_KEY"
    path = platform.var_dir / ADMIN_KEY_FILE
    return f"in {path}   (ADMIN=$(cat {path}))"


def _evidence_keys(settings: Settings) -> tuple[str, str]:
    """Evidence's keys from the environment, else the ones kept in var/ since the first run:
    a new master key at every start would leave the evidence stored before unreadable."""
    saved = settings.var_dir / "evidence-keys.json"
    keys = json.loads(saved.read_text()) if saved.exists() else {}
    if not keys:
        keys = {"master_key": new_evidence_key(), "signing_key": new_evidence_key()}
        write_private(saved, json.dumps(keys))  # the keys to the evidence
    return (
        settings.evidence_master_key or keys["master_key"],
        settings.evidence_signing_key or keys["signing_key"],
    )


def _mail_line(platform: Platform) -> str:
    if platform.mail_port is None:
        return "through FIREBREAK_SMTP_HOST (or not at all: see README, Configuration)"
    return f"caught on 127.0.0.1:{platform.mail_port} and printed below, prefixed 'mail'"


def _inbound_mail_line(settings: Settings, platform: Platform) -> str:
    address = f"<an email integration's key>@{settings.inbound_mail_domain}"
    return f"reports by email on smtp://127.0.0.1:{platform.inbound_mail_port}, to {address}"


def _mail_catcher_port(settings: Settings) -> int | None:
    """With no SMTP server configured, a local one that prints what it gets, if aiosmtpd (a
    development dependency, which make run installs) is there."""
    if settings.smtp_host is not None or importlib.util.find_spec("aiosmtpd") is None:
        return None
    return settings.local_smtp_port


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
    write_private(saved, json.dumps({"client_id": client["id"], "key": key["key"]}))  # a live key
    return client["id"], key["key"]


def _console_sign_in_link(platform: Platform) -> str:
    """A one-time link for the local admin (a person, created once) to set a console password:
    the bootstrap key belongs to no one, and the console signs in people."""
    saved = platform.var_dir / "console-admin.json"
    admin = {"Authorization": f"Bearer {platform.admin_key}"}
    person_id = json.loads(saved.read_text())["person_id"] if saved.exists() else None
    if person_id is None:
        person = {"name": "Local admin", "email": "admin@example.com", "role": "admin"}
        created = httpx.post(f"{platform.gateway_url}/v1/people", json=person, headers=admin)
        person_id = created.raise_for_status().json()["id"]
        saved.write_text(json.dumps({"person_id": person_id}))
    link = httpx.post(
        f"{platform.gateway_url}/v1/people/{person_id}/sign-in-links", headers=admin
    ).raise_for_status()
    url: str = link.json()["url"]
    return url
