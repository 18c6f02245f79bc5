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

IntegrationKind = Literal["events_v2", "alertmanager"]
Severity = Literal["critical", "error", "warning", "info"]
OptionalText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), SingleLine]


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


class IssuedIntegration(Integration):
    key: str = Field(
        description="The integration key (a PagerDuty routing key, an Alertmanager bearer "
        "token): shown this once, never again."
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
