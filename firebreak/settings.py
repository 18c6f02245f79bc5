"""All configuration, read from the environment in one place, with safe local defaults."""

from __future__ import annotations

import os
import socket
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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


class Settings(BaseSettings):
    """Every FIREBREAK_* variable. Database URLs default to SQLite files in var_dir."""

    model_config = SettingsConfigDict(env_prefix="FIREBREAK_", extra="ignore")

    var_dir: Path = Path("var")
    # An external NATS. Unset, services use the local one that `firebreak run` starts, on a
    # port that is not 4222 because a system NATS may already listen there.
    nats_url: str | None = None
    local_nats_port: int = Field(default=14222, ge=1, le=65535)
    log_level: str = "INFO"
    instance_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")

    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8080, ge=1, le=65535)
    admin_key: str | None = None
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # gRPC's default message limit is 4 MiB; larger evidence needs streaming (not yet).
    evidence_max_bytes: int = Field(default=3 * 1024 * 1024, ge=1024, le=3 * 1024 * 1024)

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

    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    # JetStream copies of every event; more than 1 needs a NATS cluster of that many servers.
    stream_replicas: int = Field(default=1, ge=1, le=5)
    consumer_batch_size: int = Field(default=128, ge=1, le=4096)
    shutdown_grace_seconds: float = Field(default=5.0, ge=0)

    @field_validator("admin_key")
    @classmethod
    def _admin_key_is_strong(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 24:
            raise ValueError("FIREBREAK_ADMIN_KEY must be at least 24 characters")
        return value

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

    @cached_property
    def traces_dir(self) -> Path:
        return self.var_dir / "traces"
