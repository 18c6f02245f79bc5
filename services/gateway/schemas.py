"""The HTTP API's request and response bodies (they make the OpenAPI document at /docs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

IncidentType = Literal[
    "security_breach",
    "data_loss",
    "service_outage",
    "service_degradation",
    "accident",
    "near_miss",
    "unsafe_condition",
    "compliance",
    "other",
]
Impact = Literal["extensive", "significant", "moderate", "minor"]
Urgency = Literal["critical", "high", "medium", "low"]
Status = Literal["reported", "triaged"]
Priority = Literal["P1", "P2", "P3", "P4"]
Role = Literal["client", "admin"]

# No text may hold NUL: PostgreSQL refuses it, so SQLite must not quietly accept it either.
NO_NUL = r"^[^\x00]*$"
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NO_NUL)
]
LongText = Annotated[str, StringConstraints(max_length=20_000, pattern=NO_NUL)]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$"
    ),
]
Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=NO_NUL)
]
# Clocks disagree a little; a detection time further ahead than this is a mistake.
CLOCK_SKEW = timedelta(minutes=5)


class Strict(BaseModel):
    # A misspelt field is an error, not silently dropped data.
    model_config = ConfigDict(extra="forbid")


class Reporter(Strict):
    name: ShortText
    email: Email


class IncidentReport(Strict):
    title: ShortText
    description: LongText
    type: IncidentType
    impact: Impact
    urgency: Urgency
    reporter: Reporter
    affected_assets: Annotated[list[ShortText], Field(max_length=100)] = []
    detected_at: AwareDatetime | None = None
    labels: Annotated[list[Label], Field(max_length=50)] = []

    @field_validator("detected_at")
    @classmethod
    def _detected_in_the_past(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        try:
            moment = value.astimezone(UTC)
        except OverflowError as error:
            raise ValueError("is out of range") from error
        if moment.year < 1970:
            raise ValueError("must be after 1970")
        if moment > datetime.now(UTC) + CLOCK_SKEW:
            raise ValueError("must not be in the future")
        return moment


class Incident(BaseModel):
    id: str
    reference: str
    client_id: str
    status: str
    priority: Priority | None
    title: str
    description: str
    type: str
    impact: str
    urgency: str
    reporter: Reporter
    affected_assets: list[str]
    labels: list[str]
    detected_at: datetime | None
    created_at: datetime
    triaged_at: datetime | None
    notified_at: datetime | None
    trace_id: str


class IncidentPage(BaseModel):
    items: list[Incident]
    next_cursor: str | None


class TimelineEntry(BaseModel):
    event_id: str
    type: str
    occurred_at: datetime
    producer: str
    summary: str


class Timeline(BaseModel):
    incident_id: str
    entries: list[TimelineEntry]


class NewClient(Strict):
    name: ShortText


class Client(BaseModel):
    id: str
    name: str


class NewApiKey(Strict):
    role: Role


class ApiKey(BaseModel):
    id: str
    client_id: str
    role: Role
    key: str = Field(description="Shown once; only its hash is stored.")
