"""Integrations: a client's monitoring that sends alerts, each with a key of its own (issue 14).

Functions take the caller's connection and never commit. A key is in the answer to its creation
or rotation only; intake keeps its SHA-256 (firebreak/integration_keys.py).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.intake.v1.intake_pb2 import (
    CreateIntegrationRequest,
    Integration,
    IntegrationSettings,
    ListIntegrationsRequest,
    SeverityMapping,
)
from firebreak.errors import InvalidArgument, NotFound
from firebreak.events import to_timestamp
from firebreak.integration_keys import PREFIX_LENGTH, generate_key, hash_key
from firebreak.keyset_pages import read_page
from services.intake.models import integrations
from services.intake.service import IMPACTS, INCIDENT_TYPES, URGENCIES

KINDS = frozenset({"events_v2", "alertmanager", "email", "heartbeat"})
SEVERITIES = ("critical", "error", "warning", "info")
# What a severity means when the integration does not say: through the firm's priority matrix,
# critical is a P1, error a P2, warning a P3 and info a P4.
DEFAULT_MAPPING = {
    "critical": {"impact": "extensive", "urgency": "critical"},
    "error": {"impact": "significant", "urgency": "high"},
    "warning": {"impact": "moderate", "urgency": "medium"},
    "info": {"impact": "minor", "urgency": "low"},
}
DEFAULT_FLAPPING_WINDOW_SECONDS = 300
MAX_FLAPPING_WINDOW_SECONDS = 7 * 24 * 3600
DEFAULT_RATE_PER_SECOND = 50.0
DEFAULT_BURST = 500
MAX_RATE_PER_SECOND = 100_000.0
MAX_BURST = 1_000_000
MAX_ALLOWED_SENDERS = 100
# An address ("ops@example.com") or a whole domain ("@example.com"); compared lower-cased.
ALLOWED_SENDER = re.compile(r"([^@\s\x00-\x1f\x7f]{1,64})?@[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?")
MAX_HEARTBEAT_SECONDS = 30 * 24 * 3600.0
DEFAULT_GRACE_SECONDS = 300.0  # a cron job's start and run time vary


def _text(field: str, value: str, *, required: bool = True) -> str:
    text = value.strip()
    if (required and not text) or len(text) > 200 or "\x00" in text:
        span = "1 to 200" if required else "at most 200"
        raise InvalidArgument(field, f"must be {span} characters, without NUL")
    return text


def validated_settings(
    kind: str, settings: IntegrationSettings, *, min_interval_seconds: float
) -> dict[str, Any]:
    """The columns a request's settings make for an integration of `kind`; InvalidArgument
    naming the first field wrong. Unset numbers take their defaults."""
    mapping = {severity: dict(levels) for severity, levels in DEFAULT_MAPPING.items()}
    given: set[str] = set()
    for entry in settings.severity_mapping:
        if entry.severity not in SEVERITIES or entry.severity in given:
            raise InvalidArgument(
                "severity_mapping", f"names each of {', '.join(SEVERITIES)} at most once"
            )
        if entry.impact not in IMPACTS or entry.urgency not in URGENCIES:
            raise InvalidArgument(
                f"severity_mapping.{entry.severity}",
                f"impact must be one of {', '.join(sorted(IMPACTS))}; urgency one of "
                f"{', '.join(sorted(URGENCIES))}",
            )
        given.add(entry.severity)
        mapping[entry.severity] = {"impact": entry.impact, "urgency": entry.urgency}
    incident_type = settings.incident_type or "service_outage"
    if incident_type not in INCIDENT_TYPES:
        raise InvalidArgument(
            "incident_type", f"must be one of {', '.join(sorted(INCIDENT_TYPES))}"
        )
    window = settings.flapping_window_seconds
    if window > MAX_FLAPPING_WINDOW_SECONDS:
        raise InvalidArgument(
            "flapping_window_seconds", f"must be at most {MAX_FLAPPING_WINDOW_SECONDS}"
        )
    rate = settings.rate_per_second or DEFAULT_RATE_PER_SECOND
    if not 0 < rate <= MAX_RATE_PER_SECOND:
        raise InvalidArgument(
            "rate_per_second", f"must be above 0, at most {MAX_RATE_PER_SECOND:g}"
        )
    burst = settings.burst or DEFAULT_BURST
    if burst > MAX_BURST:
        raise InvalidArgument("burst", f"must be at most {MAX_BURST}")
    return {
        "name": _text("name", settings.name),
        "service": _text("service", settings.service, required=False),
        "incident_type": incident_type,
        "severity_mapping": mapping,
        "resolve_with_alerts": settings.resolve_with_alerts,
        "flapping_window_seconds": window,
        "rate_per_second": rate,
        "burst": burst,
        "allowed_senders": _allowed_senders(kind, settings),
        **_heartbeat_timing(kind, settings, min_interval_seconds),
    }


def _allowed_senders(kind: str, settings: IntegrationSettings) -> list[str]:
    """An email integration's senders, lower-cased, each once: one at least, or no one could
    report to it."""
    senders = list(dict.fromkeys(sender.strip().lower() for sender in settings.allowed_senders))
    if kind != "email":
        if senders:
            raise InvalidArgument("allowed_senders", "applies to email integrations only")
        return []
    if not 1 <= len(senders) <= MAX_ALLOWED_SENDERS:
        raise InvalidArgument(
            "allowed_senders", f"must name 1 to {MAX_ALLOWED_SENDERS} addresses or @domains"
        )
    for sender in senders:
        if not ALLOWED_SENDER.fullmatch(sender):
            raise InvalidArgument(
                "allowed_senders", f"{sender!r} is neither an address nor an @domain"
            )
    return senders


def _heartbeat_timing(
    kind: str, settings: IntegrationSettings, min_interval_seconds: float
) -> dict[str, float | None]:
    if kind != "heartbeat":
        if settings.interval_seconds or settings.HasField("grace_seconds"):
            raise InvalidArgument(
                "interval_seconds", "interval and grace apply to heartbeat integrations only"
            )
        return {"interval_seconds": None, "grace_seconds": None}
    interval = settings.interval_seconds
    if not min_interval_seconds <= interval <= MAX_HEARTBEAT_SECONDS:
        raise InvalidArgument(
            "interval_seconds",
            f"must be {min_interval_seconds:g} to {MAX_HEARTBEAT_SECONDS:g} seconds",
        )
    grace = settings.grace_seconds if settings.HasField("grace_seconds") else None
    if grace is None:
        grace = DEFAULT_GRACE_SECONDS
    if not 0 <= grace <= MAX_HEARTBEAT_SECONDS:
        raise InvalidArgument("grace_seconds", f"must be 0 to {MAX_HEARTBEAT_SECONDS:g} seconds")
    return {"interval_seconds": interval, "grace_seconds": grace}


async def create_integration(
    connection: AsyncConnection, request: CreateIntegrationRequest, *, min_interval_seconds: float
) -> tuple[Row[Any], str]:
    """The new integration and its key. A heartbeat's is waiting: nothing is missed before its
    first ping (a sender is set up after its integration)."""
    if not request.client_id:
        raise InvalidArgument("client_id", "is required")
    if request.kind not in KINDS:
        raise InvalidArgument("kind", f"must be one of {', '.join(sorted(KINDS))}")
    key = generate_key()
    settings = validated_settings(
        request.kind, request.settings, min_interval_seconds=min_interval_seconds
    )
    values = settings | {
        "id": str(uuid.uuid4()),
        "client_id": request.client_id,
        "kind": request.kind,
        "key_hash": hash_key(key),
        "key_prefix": key[:PREFIX_LENGTH],
        "created_by": request.actor.id[:64],
        "created_at": datetime.now(UTC),
    }
    row = (
        await connection.execute(integrations.insert().values(**values).returning(*integrations.c))
    ).one()
    return row, key


async def get_integration(connection: AsyncConnection, integration_id: str) -> Row[Any]:
    query = select(integrations).where(integrations.c.id == integration_id)
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound(f"integration {integration_id} not found")
    return row


async def list_integrations(
    connection: AsyncConnection, request: ListIntegrationsRequest, *, max_bytes: int
) -> tuple[list[Row[Any]], str]:
    """Newest first, one page: of `client_id`, of any of `client_ids`, or with `all_clients`
    of every client."""
    query = select(integrations)
    if request.client_ids and not request.all_clients:
        query = query.where(integrations.c.client_id.in_(list(request.client_ids)))
    elif not request.all_clients:
        if not request.client_id:
            raise InvalidArgument("client_id", "is required unless all_clients is set")
        query = query.where(integrations.c.client_id == request.client_id)
    return await read_page(
        connection,
        query,
        integrations,
        limit=request.page_size,
        cursor=request.page_token,
        max_bytes=max_bytes,
        size_of=lambda row: integration_message(row).ByteSize(),
    )


async def rotate_key(connection: AsyncConnection, integration_id: str) -> tuple[Row[Any], str]:
    """A new key for the integration; the old one is refused from now on."""
    key = generate_key()
    row = (
        await connection.execute(
            update(integrations)
            .where(integrations.c.id == integration_id)
            .values(
                key_hash=hash_key(key),
                key_prefix=key[:PREFIX_LENGTH],
                key_rotated_at=datetime.now(UTC),
            )
            .returning(*integrations.c)
        )
    ).first()
    if row is None:
        raise NotFound(f"integration {integration_id} not found")
    return row, key


async def disable(connection: AsyncConnection, integration_id: str) -> Row[Any]:
    """Its key is refused from now on; disabling it again changes nothing."""
    await connection.execute(
        update(integrations)
        .where(integrations.c.id == integration_id, integrations.c.disabled_at.is_(None))
        .values(disabled_at=datetime.now(UTC))
    )
    return await get_integration(connection, integration_id)


# On every alert request's path: the enabled integration of a kind by its key's hash (unique).
FIND_BY_KEY = select(integrations).where(
    integrations.c.key_hash == bindparam("key_hash"),
    integrations.c.kind == bindparam("kind"),
    integrations.c.disabled_at.is_(None),
)


def integration_message(row: Row[Any]) -> Integration:
    message = Integration(
        id=row.id,
        client_id=row.client_id,
        kind=row.kind,
        settings=IntegrationSettings(
            name=row.name,
            service=row.service,
            incident_type=row.incident_type,
            severity_mapping=[
                SeverityMapping(severity=severity, **row.severity_mapping[severity])
                for severity in SEVERITIES
            ],
            resolve_with_alerts=row.resolve_with_alerts,
            flapping_window_seconds=row.flapping_window_seconds,
            rate_per_second=row.rate_per_second,
            burst=row.burst,
            allowed_senders=row.allowed_senders,
            interval_seconds=row.interval_seconds or 0.0,
        ),
        key_prefix=row.key_prefix,
        created_by=row.created_by,
        created_at=to_timestamp(row.created_at),
    )
    if row.kind == "heartbeat":
        message.settings.grace_seconds = row.grace_seconds
        message.heartbeat_status = (
            "down" if row.down_since else "up" if row.last_ping_at else "waiting"
        )
    for field in ("disabled_at", "key_rotated_at", "last_ping_at", "overdue_at"):
        if (moment := getattr(row, field)) is not None:
            getattr(message, field).CopyFrom(to_timestamp(moment))
    return message


def email_address(key: str, domain: str) -> str:
    """An email integration's address: its key is the local part, so the address is as secret
    as the key, rotates with it and finds the integration by the key's hash."""
    return f"{key}@{domain}"
