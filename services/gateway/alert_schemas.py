"""The bodies of integrations and alerts (issue 14), as the HTTP API takes and shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from services.gateway.plain_text import SingleLine
from services.gateway.schemas import (
    Id,
    Impact,
    IncidentType,
    ShortText,
    Strict,
    Urgency,
)

IntegrationKind = Literal["events_v2", "alertmanager", "email", "heartbeat"]
Severity = Literal["critical", "error", "warning", "info"]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), SingleLine]
AllowedSender = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        max_length=320,
        pattern=r"^([^@\s\x00-\x1f\x7f]{1,64})?@[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$",
    ),
]
HeartbeatSeconds = Annotated[float, Field(gt=0, le=30 * 24 * 3600)]


class Levels(Strict):
    impact: Impact
    urgency: Urgency


class SeverityMapping(Strict):
    """Impact and urgency per alert severity; a severity left out keeps its default."""

    critical: Levels | None = None
    error: Levels | None = None
    warning: Levels | None = None
    info: Levels | None = None


class NewIntegration(Strict):
    client_id: Id
    kind: IntegrationKind
    name: ShortText
    service: OptionalText = Field(
        "", description="The client's service it watches: the incidents' affected asset."
    )
    incident_type: IncidentType = "service_outage"
    severity_mapping: SeverityMapping = SeverityMapping()
    resolve_with_alerts: bool = Field(
        False,
        description="Whether an incident resolves with its last alert (as far as its lifecycle "
        "allows), or waits for a person.",
    )
    flapping_window_seconds: Annotated[int, Field(ge=0, le=7 * 24 * 3600)] = Field(
        300, description="A trigger this soon after its incident was resolved reopens it."
    )
    rate_per_second: Annotated[float, Field(gt=0, le=100_000)] = 50.0
    burst: Annotated[int, Field(ge=1, le=1_000_000)] = 500
    allowed_senders: Annotated[list[AllowedSender], Field(max_length=100)] = Field(
        [],
        description="An email integration's (required, one at least): the addresses "
        '("ops@example.com") and whole domains ("@example.com") whose mail it takes, by the '
        "message's From: header.",
    )
    interval_seconds: HeartbeatSeconds | None = Field(
        None,
        description="A heartbeat integration's (required): a ping is expected this often "
        "(at least FIREBREAK_HEARTBEAT_MIN_INTERVAL_SECONDS, 60 by default).",
    )
    grace_seconds: Annotated[float, Field(ge=0, le=30 * 24 * 3600)] | None = Field(
        None,
        description="A heartbeat integration's: how late a ping may be before it counts as "
        "missed (default 300).",
    )


class MappedLevels(BaseModel):
    impact: str
    urgency: str


class Integration(BaseModel):
    id: str
    client_id: str
    kind: str
    name: str
    service: str
    incident_type: str
    severity_mapping: dict[str, MappedLevels]
    resolve_with_alerts: bool
    flapping_window_seconds: int
    rate_per_second: float
    burst: int
    key_prefix: str = Field(description="The key's first characters; never the key.")
    created_by: str
    created_at: datetime
    key_rotated_at: datetime | None
    disabled_at: datetime | None
    allowed_senders: list[str] = Field(description="An email integration's; else empty.")
    interval_seconds: float | None
    grace_seconds: float | None
    heartbeat_status: Literal["waiting", "up", "down"] | None = Field(
        description="A heartbeat integration's: waiting (no ping yet: nothing is missed "
        "before the first), up, or down (missed; its incident was opened)."
    )
    last_ping_at: datetime | None
    overdue_at: datetime | None = Field(
        description="A heartbeat integration that is up: when it is missed without a ping."
    )


class IssuedIntegration(Integration):
    key: str = Field(
        description="The integration key (a PagerDuty routing key, an Alertmanager bearer "
        "token, the path of a heartbeat's pings): shown this once, never again."
    )
    email_address: str | None = Field(
        description="An email integration's address, <key>@<FIREBREAK_INBOUND_MAIL_DOMAIN>: as "
        "secret as its key, shown this once."
    )


class IntegrationPage(BaseModel):
    items: list[Integration]
    next_cursor: str | None


class Alert(BaseModel):
    id: str
    integration_id: str
    integration_name: str
    dedup_key: str
    status: Literal["triggered", "acknowledged", "resolved"]
    count: int = Field(description="Trigger events counted on it.")
    first_seen: datetime
    last_seen: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    summary: str
    severity: str
    source: str
    details: str = Field(description="The latest event as sent (JSON), at most 16 KiB.")


class AlertList(BaseModel):
    items: list[Alert]


# --- PagerDuty Events API v2, in PagerDuty's own shapes ----------------------------------------


class EventAccepted(BaseModel):
    status: Literal["success"]
    message: str
    dedup_key: str


class EventRefused(BaseModel):
    status: str
    message: str
    errors: list[str] = []


class HeartbeatRecorded(BaseModel):
    status: Literal["success"]
    message: str
    overdue_at: datetime = Field(description="When the next ping is missed.")
    resolved: bool = Field(description="Whether this ping ended an outage, resolving its alert.")


class ReportAttachment(BaseModel):
    id: str
    filename: str
    content_type: str = Field(
        description="As the sender declared it; the content is served as "
        "application/octet-stream whatever it says."
    )
    size_bytes: int
    sha256: str
    sender: str
    message_id: str
    received_at: datetime
    evidence_id: str | None = Field(
        description="The evidence item collected from it (GET /v1/evidence/{id}); null until "
        "then, moments after the mail."
    )


class ReportAttachmentList(BaseModel):
    items: list[ReportAttachment]
