"""Who may do what on the bus: one NATS user per process kind (each service, the gateway) and
an admin, the subjects each may publish and subscribe to, and the nats-server configuration
that enforces them.

A process publishes only its own event types; uses the JetStream API only for the stream (it
makes sure the stream exists, and may update it) and for its own durable consumer (create,
info, pull, ack); and receives only on its own inboxes, never on event subjects. Deleting or
purging the stream, deleting a consumer, or reading events directly takes the admin user.
"""

from __future__ import annotations

import json
import secrets
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firebreak import events
from firebreak.local_secrets import write_private
from firebreak.settings import SERVICES, Settings

ADMIN = "admin"
USERS = (*SERVICES, ADMIN)

# Who publishes each event type: the service named by the part before the dot, but for the two
# incident events that are not triage's. A new namespace must be given its publisher here.
_PUBLISHER_BY_NAMESPACE = {
    "person": "gateway",
    "api_key": "gateway",
    "incident": "triage",
    "task": "triage",
    "notification": "notify",
    "escalation": "notify",
    "page": "notify",
    "status_update": "notify",
    "deadline": "notify",
    "evidence": "evidence",
    "note": "review",
    "analysis": "review",
    "action": "review",
    "pir": "review",
    "alert": "intake",
    "attachment": "intake",
}
_PUBLISHER_EXCEPTIONS = {events.INCIDENT_REPORTED: "intake", events.INCIDENT_FLAGGED: "notify"}
PUBLISHER = {
    event_type: _PUBLISHER_EXCEPTIONS.get(event_type)
    or _PUBLISHER_BY_NAMESPACE[event_type.split(".")[0]]
    for event_type in events.PAYLOAD_FIELDS
}


def published_by(service: str) -> list[str]:
    """The event types `service` may publish, sorted."""
    return sorted(event_type for event_type, owner in PUBLISHER.items() if owner == service)


def inbox_prefix(user: str) -> str:
    """Where a user's replies and pulled messages arrive (nats-py's `inbox_prefix`): its own, so
    that it may subscribe to nothing else."""
    return f"_INBOX.{user}"


@dataclass(frozen=True)
class BusNames:
    """A release's names on the bus (FIREBREAK_STREAM_NAME, _SUBJECT_PREFIX, _DURABLE_PREFIX)."""

    stream: str
    subject_prefix: str
    durable_prefix: str

    @classmethod
    def of(cls, settings: Settings) -> BusNames:
        return cls(settings.stream_name, settings.subject_prefix, settings.durable_prefix)


def permissions(user: str, names: BusNames) -> dict[str, Any]:
    """The nats-server `permissions` of a service's user (anything not allowed is denied)."""
    api = "$JS.API"
    stream = names.stream
    publish = [names.subject_prefix + event_type for event_type in published_by(user)]
    publish += [f"{api}.STREAM.{verb}.{stream}" for verb in ("INFO", "CREATE", "UPDATE")]
    # Every process samples every consumer's counts for its metrics (metrics_sampler.py).
    publish.append(f"{api}.CONSUMER.LIST.{stream}")
    # Each consumes through its own durable consumer (the gateway: the attachments it moves
    # from intake to evidence).
    durable = names.durable_prefix + user
    publish += [
        # nats-py creates it by the legacy subject; newer clients use the other two.
        f"{api}.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
        f"{api}.CONSUMER.CREATE.{stream}.{durable}",
        f"{api}.CONSUMER.CREATE.{stream}.{durable}.>",
        f"{api}.CONSUMER.INFO.{stream}.{durable}",
        f"{api}.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",  # ack, nak, term
    ]
    if user == "gateway":
        # The console's live board (services/gateway/console/live.py): each replica follows the
        # stream with an ordered consumer of its own, ephemeral (no name: it can take no one
        # else's), pushing to the gateway's inbox, with flow control answered on $JS.FC.
        publish += [f"{api}.CONSUMER.CREATE.{stream}", f"$JS.FC.{stream}.>"]
    return {
        "publish": {"allow": publish},
        "subscribe": {"allow": [inbox_prefix(user) + ".>"]},
    }


def authorization(passwords: Mapping[str, str], names: BusNames) -> dict[str, Any]:
    """The nats-server `authorization` block: every user of USERS with its password; the
    admin without limits, the others with their `permissions`."""
    users: list[dict[str, Any]] = []
    for user in USERS:
        entry: dict[str, Any] = {"user": user, "password": passwords[user]}
        if user != ADMIN:
            entry["permissions"] = permissions(user, names)
        users.append(entry)
    return {"users": users}


def local_passwords(var_dir: Path) -> dict[str, str]:
    """Every user's password for a local nats-server, generated on first use and kept in the
    var dir (mode 600), so a restarted platform and its NATS store agree."""
    path = var_dir / "nats-passwords.json"
    saved: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    passwords = {user: saved.get(user) or secrets.token_urlsafe(24) for user in USERS}
    if passwords != saved:
        write_private(path, json.dumps(passwords, indent=2))
    return passwords


def with_login(url: str, user: str, password: str) -> str:
    """`url` (comma-separated servers, as FIREBREAK_NATS_URL) with the user and password in
    each server's URL, for clients that take only a URL."""
    logged_in = []
    for server in filter(None, (part.strip() for part in url.split(","))):
        scheme, _, rest = server.rpartition("://")
        logged_in.append(f"{scheme or 'nats'}://{user}:{password}@{rest.rpartition('@')[2]}")
    return ",".join(logged_in)


def uses_tls(url: str) -> bool:
    """Whether every server of `url` is a tls:// one."""
    return all(part.strip().startswith("tls://") for part in url.split(",") if part.strip())


@dataclass(frozen=True)
class BusLogin:
    """How a process identifies itself to NATS, and the TLS it requires."""

    user: str | None = None
    password: str | None = None
    tls: ssl.SSLContext | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> BusLogin:
        return cls(settings.nats_user, settings.nats_password, tls_context(settings))


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """For tls:// URLs: the server verified against FIREBREAK_NATS_TLS_CA (else the system's
    CAs), with FIREBREAK_NATS_TLS_CERT and _KEY as the client's certificate when set."""
    if not uses_tls(settings.bus_url):
        return None
    ca = str(settings.nats_tls_ca) if settings.nats_tls_ca is not None else None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    if settings.nats_tls_cert is not None and settings.nats_tls_key is not None:
        context.load_cert_chain(settings.nats_tls_cert, settings.nats_tls_key)
    return context
