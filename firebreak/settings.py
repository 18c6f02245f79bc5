"""All configuration, read from the environment in one place, with safe local defaults."""

from __future__ import annotations

import base64
import binascii
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
    "alertmanager_max_body_bytes": (1024, None),
    "gateway_limit_concurrency": (2, None),  # uvicorn counts the request's own connection
    "grpc_max_concurrent_rpcs": (1, None),
    "grpc_health_port": (1, 65535),
    # A page crosses gRPC, whose channels take messages of up to 4 MiB.
    "list_page_max_bytes": (1024, 3 * 1024 * 1024),
    "evidence_max_bytes": (1024, None),  # streamed: memory stays flat whatever the size
    "evidence_verify_interval_seconds": (1, None),
    "evidence_sign_interval_seconds": (1, None),
    "outbox_poll_seconds": (0.001, None),
    "stream_replicas": (1, 5),
    "stream_max_bytes": (64 * 1024, None),
    "consumer_batch_size": (1, 4096),
    "max_deliveries": (1, 1000),
    "retry_delay_seconds": (0.001, 3600),
    "newer_schema_delay_seconds": (0.001, 3600),
    "shutdown_grace_seconds": (0, None),
    "console_idle_minutes": (1, None),
    # A cached principal outlives a missed revocation event by at most this long.
    "principal_cache_seconds": (0, 60),
    "console_session_hours": (1, 24 * 30),
    "metrics_port": (0, 65535),
    "metrics_sample_seconds": (0.05, 3600),
    "smtp_port": (1, 65535),
    "local_smtp_port": (1, 65535),
    "inbound_smtp_port": (0, 65535),
    "inbound_mail_max_bytes": (1024, 50 * 1024 * 1024),
    "heartbeat_tick_seconds": (0.01, 60),
    "heartbeat_min_interval_seconds": (0.01, 24 * 3600),
    "ack_lapse_minutes": (0, 24 * 60),
    "paging_tick_seconds": (0.01, 60),
    "ack_link_minutes": (1, 7 * 24 * 60),
    "effectiveness_check_days": (0, 3650),
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
    # This process's NATS user and password (firebreak/bus_auth.py: each service has its own,
    # limited to its own subjects); unset: none sent, for a NATS without authorisation.
    nats_user: str | None = None
    nats_password: str | None = None
    # With tls:// URLs: the CA that signed the NATS servers' certificates (unset: the system's),
    # and the client certificate and key for servers that require one.
    nats_tls_ca: Path | None = None
    nats_tls_cert: Path | None = None
    nats_tls_key: Path | None = None
    log_level: str = "INFO"
    instance_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")

    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    # The operator's bootstrap admin key; the gateway refuses to start without it.
    admin_key: str | None = None
    # Whether the gateway serves /docs, /redoc and /openapi.json.
    api_docs: bool = True
    max_body_bytes: int = 64 * 1024
    # The Alertmanager webhook's own: Alertmanager sends every alert of a group in one request
    # and drops a group it is refused (a 4xx), so a real group must fit. A few thousand alerts
    # of one or two KiB each; the body is held and parsed in memory, which this bounds.
    alertmanager_max_body_bytes: int = 4 * 1024 * 1024
    # Token buckets per API key and per client organisation (services/gateway/rate_limits.py):
    # "rate per second,burst"; empty or 0: no limit. Generous: they stop a runaway script, not
    # a busy client (an alert storm is reported, not refused).
    rate_limit_key: str = "500,1000"
    rate_limit_client: str = "1000,2000"
    # Open connections plus requests in progress the gateway holds before answering 503
    # (uvicorn's limit_concurrency): an overload is shed, not queued in memory.
    gateway_limit_concurrency: int = 1000
    # Calls a gRPC service runs at once; beyond it, RESOURCE_EXHAUSTED (the gateway: 503).
    grpc_max_concurrent_rpcs: int = 500
    # A list page stops before its items' serialised size passes this (and holds one item at
    # least), as well as at its item limit (firebreak/keyset_pages.py).
    list_page_max_bytes: int = 1024 * 1024
    # The console (services/gateway/console/): a session ends after this long without a request,
    # and at the latest this many hours after its sign-in.
    console_idle_minutes: float = 30
    console_session_hours: float = 12
    # How long a gateway replica trusts the principal it read for an API key before reading it
    # again (services/gateway/principal_cache.py): a revocation, deactivation or change drops
    # it at once, this bounds a replica that missed the change's event. 0: read every request.
    principal_cache_seconds: float = 5.0
    evidence_max_bytes: int = 2 * 1024 * 1024 * 1024
    # Where evidence keeps its encrypted blobs; unset: <var_dir>/evidence (see evidence_store).
    evidence_dir: Path | None = None
    # The firm's master key for evidence, base64 of 32 random bytes: it wraps each blob's own
    # data key, so losing it loses the evidence. Evidence will not start without it; `make run`
    # keeps one in var/, the tests generate one, a deployment takes it from its Secret.
    evidence_master_key: str | None = None
    # The Ed25519 key (base64 of its 32-byte private seed) that signs each client's custody
    # chain heads; required by evidence, like the master key.
    evidence_signing_key: str | None = None
    # How often evidence re-verifies every item, and signs the chain heads that changed.
    evidence_verify_interval_seconds: float = 24 * 3600.0
    evidence_sign_interval_seconds: float = 24 * 3600.0

    intake_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['intake']}"
    triage_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['triage']}"
    notify_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['notify']}"
    evidence_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['evidence']}"
    review_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['review']}"
    # Where this process's gRPC server listens, when not on its own address above (in a
    # container: all interfaces, while callers use the service's DNS name).
    grpc_listen_addr: str | None = None
    # mTLS between the gateway and the services (firebreak/grpc_tls.py): the CA, and this
    # process's certificate and key, all three or none; none: plaintext, for loopback only.
    grpc_tls_ca: Path | None = None
    grpc_tls_cert: Path | None = None
    grpc_tls_key: Path | None = None
    # A second, plaintext port serving grpc.health.v1 alone (firebreak/runtime.py), on the host
    # of the gRPC listen address: kubelet's grpc probes cannot do TLS, so with mTLS on they
    # ask here. Unset: no such port (the probes, or the launcher, ask the main port).
    grpc_health_port: int | None = None
    # The scope tokens the gateway signs for its calls (firebreak/scope_token.py): its Ed25519
    # key, base64 of the 32-byte seed, which only the gateway holds; and the public key, base64
    # of its 32 raw bytes, which every service needs to start.
    scope_token_key: str | None = None
    scope_token_public_key: str | None = None

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
    # A message whose handler failed this many deliveries is parked as a dead letter (listed
    # for admins, replayed by hand) instead of being offered again for ever.
    max_deliveries: int = 5
    # The wait before a failed message comes again, doubled each delivery (up to a minute).
    retry_delay_seconds: float = 2.0
    # The wait before an event of a newer schema version comes again (during a rolling
    # upgrade, until a replica of the new release takes it), doubled each delivery up to 5 min.
    newer_schema_delay_seconds: float = 30.0
    # The stream's size limit. A full stream refuses new events (discard: new), which wait in
    # the outboxes until space is freed, instead of JetStream deleting events a slow consumer
    # has not read yet (docs/architecture.md, "The stream's limits").
    stream_max_bytes: int = 1024**3
    # Names per release, so that two releases on one NATS cluster keep their events apart: the
    # stream name and the subject prefix must BOTH differ (JetStream refuses two streams with
    # overlapping subjects); durable consumers are named <durable_prefix><service>. The stream
    # name and prefix are read once, when firebreak.events is imported (see `bus_names`).
    stream_name: str = "FIREBREAK"
    subject_prefix: str = "firebreak.events.v1."
    durable_prefix: str = ""
    shutdown_grace_seconds: float = 5.0
    # Where this process serves Prometheus metrics (/metrics); 0: nowhere. Every process of a
    # host needs its own port (the chart gives each pod 9464; the launcher one per process).
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"
    # How often the outbox, the consumers and NATS are looked at for the metrics' gauges.
    metrics_sample_seconds: float = 5.0

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
    # Reports by email (issue 14 §5): intake's SMTP listener, beside its gRPC server, on this
    # port and host; 0: none. Mail is taken for <email integration key>@<inbound_mail_domain>
    # only (point the domain's MX, or a forwarding rule, here); a message over the size is
    # refused (552).
    inbound_smtp_port: int = 0
    inbound_smtp_host: str = "127.0.0.1"
    inbound_mail_domain: str = "localhost"
    inbound_mail_max_bytes: int = 10 * 1024 * 1024
    # Heartbeats: how often intake looks for heartbeats overdue, and the shortest interval an
    # integration may expect (tests use fractions of a second).
    heartbeat_tick_seconds: float = 1.0
    heartbeat_min_interval_seconds: float = 60.0
    # A P1 or P2 acknowledged but not contained or resolved within this many minutes starts
    # paging again; 0: an acknowledgement stops paging for good.
    ack_lapse_minutes: float = 30.0
    # How often notify looks for escalation steps and pages that fell due.
    paging_tick_seconds: float = 0.25
    # How long before a deadline falls due its reminders go out, in minutes (fractions
    # allowed), comma-separated; empty: none. See `deadline_reminder_leads`.
    deadline_reminder_minutes: str = "1440,240,60"

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
    # How long after a corrective action is done its effectiveness check falls due, in days
    # (fractions allowed: tests use seconds).
    effectiveness_check_days: float = 30.0
    # A firm's own message templates: each `*.j2` file there replaces notify's default of the
    # same name (services/notify/templates/). Unset: the defaults.
    template_dir: Path | None = None
    # The firm's name, as messages to clients sign it.
    firm_name: str = "Firebreak"
    # The expected interval between an incident's status updates per priority, in minutes
    # (fractions allowed); a priority not named expects none. See `update_cadence`.
    update_cadence_minutes: str = "P1=30,P2=120,P3=1440"
    # Closing an incident (issue 11, §4): the gates that must be met, besides being resolved
    # (comma-separated; see `closure_gate_names`), the priorities whose post-incident review
    # must be signed off first, and whether an incident's commander may close it (else only
    # managers and admins).
    closure_gates: str = "pir_signed_off,actions_finished,evidence_checked_in,deadlines_settled"
    closure_pir_priorities: str = "P1,P2"
    commander_may_close: bool = False

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
        for name in (
            "evidence_master_key",
            "evidence_signing_key",
            "scope_token_key",
            "scope_token_public_key",
        ):
            key = values.get(name)
            if isinstance(key, str):
                key_bytes(f"FIREBREAK_{name.upper()}", key)  # raises naming the variable
        reminder_minutes = values.get("deadline_reminder_minutes")
        if isinstance(reminder_minutes, str):
            reminder_leads(reminder_minutes)  # raises naming the variable
        for name in ("rate_limit_key", "rate_limit_client"):
            limit = values.get(name)
            if isinstance(limit, str):
                rate_limit(f"FIREBREAK_{name.upper()}", limit)  # raises naming the variable
        cadence = values.get("update_cadence_minutes")
        if isinstance(cadence, str):
            cadence_minutes(cadence)  # raises naming the variable
        gates = values.get("closure_gates")
        if isinstance(gates, str):
            closure_gate_names(gates)  # raises naming the variable
        pir_priorities = values.get("closure_pir_priorities")
        if isinstance(pir_priorities, str):
            priority_names(pir_priorities)  # raises naming the variable
        bus_names(environ)  # raises naming the variable
        _check_nats_login(values)
        _check_grpc_tls(values)
        durable_prefix = values.get("durable_prefix")
        if isinstance(durable_prefix, str) and not re.fullmatch(r"[A-Za-z0-9_-]*", durable_prefix):
            raise SettingsError(
                "FIREBREAK_DURABLE_PREFIX may hold only letters, digits, '-' and '_', "
                f"not {durable_prefix!r}"
            )
        public_url = values.get("public_url")
        if isinstance(public_url, str) and not re.fullmatch(
            r"https?://[^\s/?#]+(/[^\s?#]*)?", public_url
        ):
            raise SettingsError(
                f"FIREBREAK_PUBLIC_URL must be an http(s) URL without query, not {public_url!r}"
            )
        mail_domain = values.get("inbound_mail_domain")
        if isinstance(mail_domain, str) and not re.fullmatch(
            r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", mail_domain
        ):
            raise SettingsError(
                f"FIREBREAK_INBOUND_MAIL_DOMAIN must be a domain name, not {mail_domain!r}"
            )
        return cls(**values)  # type: ignore[arg-type]  # each value was parsed to its type

    @property
    def gateway_public_url(self) -> str:
        """Where people reach the gateway, without a trailing slash."""
        return (self.public_url or f"http://127.0.0.1:{self.gateway_port}").rstrip("/")

    @property
    def deadline_reminder_leads(self) -> tuple[float, ...]:
        """The deadline reminders' lead times in minutes, largest first."""
        return reminder_leads(self.deadline_reminder_minutes)

    @property
    def key_rate_limit(self) -> RateLimit | None:
        return rate_limit("FIREBREAK_RATE_LIMIT_KEY", self.rate_limit_key)

    @property
    def client_rate_limit(self) -> RateLimit | None:
        return rate_limit("FIREBREAK_RATE_LIMIT_CLIENT", self.rate_limit_client)

    @property
    def update_cadence(self) -> dict[str, float]:
        """Minutes expected between status updates, per priority that expects them."""
        return cadence_minutes(self.update_cadence_minutes)

    @property
    def closure_gate_set(self) -> frozenset[str]:
        """The closure gates the firm applies, besides being resolved."""
        return closure_gate_names(self.closure_gates)

    @property
    def closure_pir_priority_set(self) -> frozenset[str]:
        """The priorities whose post-incident review is signed off before closing."""
        return priority_names(self.closure_pir_priorities)

    @property
    def evidence_store(self) -> Path:
        """Where evidence keeps its blobs."""
        return self.evidence_dir or self.var_dir / "evidence"

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


def bus_names(environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """The stream name and subject prefix, from FIREBREAK_STREAM_NAME and
    FIREBREAK_SUBJECT_PREFIX (else the defaults); raises SettingsError naming the variable."""
    stream = environ.get("FIREBREAK_STREAM_NAME", Settings.stream_name)
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", stream):
        raise SettingsError(
            f"FIREBREAK_STREAM_NAME may hold only letters, digits, '-' and '_', not {stream!r}"
        )
    prefix = environ.get("FIREBREAK_SUBJECT_PREFIX", Settings.subject_prefix)
    # Tokens joined by dots and ending in one: no wildcards, no empty token.
    if not re.fullmatch(r"([A-Za-z0-9_-]+\.)+", prefix):
        raise SettingsError(
            "FIREBREAK_SUBJECT_PREFIX must be dot-separated tokens of letters, digits, '-' and "
            f"'_' ending in a dot, such as 'firebreak.events.v1.', not {prefix!r}"
        )
    return stream, prefix


def _check_nats_login(values: Mapping[str, object]) -> None:
    """User and password come together, and so do certificate and key; TLS files only with
    tls:// URLs, which alone make the connection encrypted."""
    for first, second in (("nats_user", "nats_password"), ("nats_tls_cert", "nats_tls_key")):
        if (values.get(first) is None) != (values.get(second) is None):
            raise SettingsError(
                f"FIREBREAK_{first.upper()} and FIREBREAK_{second.upper()} are set together"
            )
    url = values.get("nats_url")
    servers = [part.strip() for part in str(url or "").split(",") if part.strip()]
    tls = [server.startswith("tls://") for server in servers]
    if any(tls) and not all(tls):
        raise SettingsError("FIREBREAK_NATS_URL must be all tls:// servers or none")
    for name in ("nats_tls_ca", "nats_tls_cert", "nats_tls_key"):
        if values.get(name) is not None and not any(tls):
            raise SettingsError(f"FIREBREAK_{name.upper()} needs tls:// in FIREBREAK_NATS_URL")


def _check_grpc_tls(values: Mapping[str, object]) -> None:
    unset = [values.get(name) is None for name in ("grpc_tls_ca", "grpc_tls_cert", "grpc_tls_key")]
    if any(unset) and not all(unset):
        raise SettingsError(
            "FIREBREAK_GRPC_TLS_CA, FIREBREAK_GRPC_TLS_CERT and FIREBREAK_GRPC_TLS_KEY are set "
            "together"
        )


def key_bytes(variable: str, text: str) -> bytes:
    """The 32 bytes a key setting holds in base64; raises SettingsError naming the variable."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise SettingsError(
            f"{variable} must be base64 of 32 random bytes, e.g. from `openssl rand -base64 32`"
        )
    return key


def reminder_leads(text: str) -> tuple[float, ...]:
    """Minutes such as "1440,240,60", largest first, each once; raises SettingsError naming
    FIREBREAK_DEADLINE_REMINDER_MINUTES for anything but positive numbers."""
    leads: set[float] = set()
    for part in filter(None, (item.strip() for item in text.split(","))):
        try:
            lead = float(part)
        except ValueError:
            lead = float("nan")
        if not 0 < lead < float("inf"):
            raise SettingsError(
                "FIREBREAK_DEADLINE_REMINDER_MINUTES must be positive numbers of minutes "
                f"separated by commas, not {text!r}"
            )
        leads.add(lead)
    return tuple(sorted(leads, reverse=True))


@dataclass(frozen=True)
class RateLimit:
    """A token bucket's refill rate and size."""

    per_second: float
    burst: int


def rate_limit(variable: str, text: str) -> RateLimit | None:
    """The limit in "50,100" (50 a second, bursts of 100; fractions of a second allowed);
    None for "" or "0". Raises SettingsError naming the variable for anything else."""
    if text.strip() in ("", "0"):
        return None
    rate, _, burst = (part.strip() for part in text.partition(","))
    try:
        limit = RateLimit(float(rate), int(burst))
    except ValueError:
        limit = RateLimit(float("nan"), 0)
    if not 0 < limit.per_second < float("inf") or limit.burst < 1:
        raise SettingsError(
            f'{variable} must be "rate per second,burst" such as "50,100" (or empty: no '
            f"limit), not {text!r}"
        )
    return limit


def cadence_minutes(text: str) -> dict[str, float]:
    """{"P1": 30.0, …} from "P1=30,P2=120"; raises SettingsError naming
    FIREBREAK_UPDATE_CADENCE_MINUTES for anything but P1..P4 each given positive minutes once."""
    cadence: dict[str, float] = {}
    for part in filter(None, (item.strip() for item in text.split(","))):
        priority, _, minutes = (piece.strip() for piece in part.partition("="))
        try:
            interval = float(minutes)
        except ValueError:
            interval = float("nan")
        if priority not in ("P1", "P2", "P3", "P4") or priority in cadence:
            interval = float("nan")
        if not 0 < interval < float("inf"):
            raise SettingsError(
                "FIREBREAK_UPDATE_CADENCE_MINUTES must be priorities with positive minutes, "
                f'such as "P1=30,P2=120,P3=1440", not {text!r}'
            )
        cadence[priority] = interval
    return cadence


CLOSURE_GATES = ("pir_signed_off", "actions_finished", "evidence_checked_in", "deadlines_settled")


def closure_gate_names(text: str) -> frozenset[str]:
    """The gates in "pir_signed_off,actions_finished"; raises SettingsError naming
    FIREBREAK_CLOSURE_GATES for an unknown one. Empty: none but being resolved."""
    names = frozenset(filter(None, (item.strip() for item in text.split(","))))
    unknown = sorted(names - set(CLOSURE_GATES))
    if unknown:
        raise SettingsError(
            f"FIREBREAK_CLOSURE_GATES must name gates among {', '.join(CLOSURE_GATES)}, "
            f"not {', '.join(unknown)}"
        )
    return names


def priority_names(text: str) -> frozenset[str]:
    """{"P1", "P2"} from "P1,P2"; raises SettingsError naming
    FIREBREAK_CLOSURE_PIR_PRIORITIES for anything but P1..P4. Empty: none."""
    names = frozenset(filter(None, (item.strip() for item in text.split(","))))
    if not names <= {"P1", "P2", "P3", "P4"}:
        raise SettingsError(
            f'FIREBREAK_CLOSURE_PIR_PRIORITIES must be priorities such as "P1,P2", not {text!r}'
        )
    return names


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
        number = int(text) if kind in (int, int | None) else float(text)
    except ValueError:
        raise SettingsError(f"{variable} must be a number, not {text!r}") from None
    low, high = bounds or (None, None)
    if low is not None and number < low:
        raise SettingsError(f"{variable} must be at least {low}, not {text}")
    if high is not None and number > high:
        raise SettingsError(f"{variable} must be at most {high}, not {text}")
    return number
