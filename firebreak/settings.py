"""All configuration, read from the environment in one place, with safe local defaults."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_type_hints

SERVICES = ("gateway", "intake", "triage", "notify", "evidence", "review")
GRPC_SERVICES = ("intake", "triage", "notify", "evidence", "review")
DEFAULT_GRPC_PORTS = {
    "intake": 50151,
    "triage": 50152,
    "notify": 50153,
    "evidence": 50154,
    "review": 50155,
}


ASYNC_DRIVERS = {
    "postgresql://": "postgresql+asyncpg://",
    "postgres://": "postgresql+asyncpg://",
    "sqlite://": "sqlite+aiosqlite://",
}


class SettingsError(ValueError):
    """A FIREBREAK_* variable, or a file one names, that cannot be used; the message names the
    variable, or the file and line."""


# Allowed ranges (inclusive), checked when the environment is read.
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "local_nats_port": (1, 65535),
    "gateway_port": (1, 65535),
    "max_body_bytes": (1024, None),
    # gRPC's default message limit is 4 MiB; larger evidence needs streaming (not yet).
    "evidence_max_bytes": (1024, 3 * 1024 * 1024),
    "outbox_poll_seconds": (0.001, None),
    "stream_replicas": (1, 5),
    "consumer_batch_size": (1, 4096),
    "shutdown_grace_seconds": (0, None),
    "smtp_port": (1, 65535),
    "local_smtp_port": (1, 65535),
    "ack_lapse_minutes": (0, 24 * 60),
    "paging_tick_seconds": (0.01, 60),
    "ack_link_minutes": (1, 7 * 24 * 60),
}


@dataclass(frozen=True)
class Settings:
    """Every FIREBREAK_* variable. Database URLs default to SQLite files in var_dir.

    A plain dataclass rather than pydantic-settings: the gRPC services need nothing else from
    pydantic, and importing it cost each of them about 20 MB of memory."""

    var_dir: Path = Path("var")
    # An external NATS. Unset, services use the local one that `firebreak run` starts, on a
    # port that is not 4222 because a system NATS may already listen there.
    nats_url: str | None = None
    local_nats_port: int = 14222
    log_level: str = "INFO"
    instance_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")

    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    admin_key: str | None = None
    max_body_bytes: int = 64 * 1024
    evidence_max_bytes: int = 3 * 1024 * 1024

    intake_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['intake']}"
    triage_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['triage']}"
    notify_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['notify']}"
    evidence_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['evidence']}"
    review_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['review']}"
    # Where this process's gRPC server listens, when not on its own address above (in a
    # container: all interfaces, while callers use the service's DNS name).
    grpc_listen_addr: str | None = None

    gateway_database_url: str | None = None
    intake_database_url: str | None = None
    triage_database_url: str | None = None
    notify_database_url: str | None = None
    evidence_database_url: str | None = None
    review_database_url: str | None = None

    outbox_poll_seconds: float = 1.0
    # JetStream copies of every event; more than 1 needs a NATS cluster of that many servers.
    stream_replicas: int = 1
    consumer_batch_size: int = 128
    shutdown_grace_seconds: float = 5.0

    # Email, for pages and updates. No host: email cannot be sent, and each such page is
    # recorded as failed at once (so the escalation moves on rather than waiting).
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "firebreak@localhost"
    # make run's catch-all SMTP server, when no FIREBREAK_SMTP_HOST is set.
    local_smtp_port: int = 14025
    # A P1 or P2 acknowledged but not contained or resolved within this many minutes starts
    # paging again; 0: an acknowledgement stops paging for good.
    ack_lapse_minutes: float = 30.0
    # How often notify looks for escalation steps and pages that fell due.
    paging_tick_seconds: float = 0.25

    # The gateway as people reach it (the one-click acknowledge links in pages point there);
    # unset: http://127.0.0.1:<gateway_port> (see `gateway_public_url`).
    public_url: str | None = None
    # The HMAC key notify signs acknowledge links with and the gateway checks them with (at
    # least 32 characters). Unset: pages carry no link and the gateway accepts none; `make run`
    # and the tests generate one per platform start, a deployment takes it from its Secret.
    link_secret: str | None = None
    # How long an acknowledge link works after its page was queued.
    ack_link_minutes: int = 60

    # A firm's own priority matrix and response targets; unset, triage uses the SOP's default.
    response_policy: Path | None = None
    # A firm's playbooks, replacing the default playbook of each incident type the file names.
    playbooks: Path | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Reads FIREBREAK_<FIELD>; raises SettingsError naming the first unusable variable."""
        values: dict[str, object] = {}
        for name, kind in get_type_hints(cls).items():
            variable = f"FIREBREAK_{name.upper()}"
            if variable in environ:
                values[name] = _parse(variable, environ[variable], kind, BOUNDS.get(name))
        admin_key = values.get("admin_key")
        if isinstance(admin_key, str) and len(admin_key) < 24:
            raise SettingsError("FIREBREAK_ADMIN_KEY must be at least 24 characters")
        link_secret = values.get("link_secret")
        if isinstance(link_secret, str) and len(link_secret) < 32:
            raise SettingsError("FIREBREAK_LINK_SECRET must be at least 32 characters")
        public_url = values.get("public_url")
        if isinstance(public_url, str) and not re.fullmatch(
            r"https?://[^\s/?#]+(/[^\s?#]*)?", public_url
        ):
            raise SettingsError(
                f"FIREBREAK_PUBLIC_URL must be an http(s) URL without query, not {public_url!r}"
            )
        return cls(**values)  # type: ignore[arg-type]  # each value was parsed to its type

    @property
    def gateway_public_url(self) -> str:
        """Where people reach the gateway, without a trailing slash."""
        return (self.public_url or f"http://127.0.0.1:{self.gateway_port}").rstrip("/")

    @property
    def bus_url(self) -> str:
        return self.nats_url or f"nats://127.0.0.1:{self.local_nats_port}"

    def database_url(self, service: str) -> str:
        """The service's async SQLAlchemy URL; plain postgresql:// and sqlite:// URLs are taken
        to mean the async drivers Firebreak ships with."""
        explicit = getattr(self, f"{service}_database_url")
        if not explicit:
            return f"sqlite+aiosqlite:///{(self.var_dir / f'{service}.db').resolve()}"
        for plain, driver in ASYNC_DRIVERS.items():
            if explicit.startswith(plain):
                return driver + explicit.removeprefix(plain)
        return explicit

    def grpc_addr(self, service: str) -> str:
        return getattr(self, f"{service}_addr")

    @property
    def traces_dir(self) -> Path:
        return self.var_dir / "traces"


def _parse(
    variable: str, text: str, kind: object, bounds: tuple[float | None, float | None] | None
) -> object:
    if kind in (str, str | None):
        return text
    if kind in (Path, Path | None):
        return Path(text)
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise SettingsError(f"{variable} must be true or false, not {text!r}")
        return text.lower() in ("true", "1", "yes")
    try:
        number = int(text) if kind is int else float(text)
    except ValueError:
        raise SettingsError(f"{variable} must be a number, not {text!r}") from None
    low, high = bounds or (None, None)
    if low is not None and number < low:
        raise SettingsError(f"{variable} must be at least {low}, not {text}")
    if high is not None and number > high:
        raise SettingsError(f"{variable} must be at most {high}, not {text}")
    return number
