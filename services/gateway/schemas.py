"""The HTTP API's request and response bodies (they make the OpenAPI document at /docs)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
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
Status = Literal[
    "reported", "triaged", "acknowledged", "contained", "resolved", "closed", "declined", "merged"
]
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


IncidentRole = Literal["incident_commander", "communications_lead", "scribe"]
Phase = Literal["containment", "investigation", "recovery"]
OwnerRole = Literal["incident_commander", "communications_lead", "scribe", "responder"]
TaskStatus = Literal["open", "in_progress", "done", "skipped"]
# Ids are UUIDs (or "operator", "bootstrap"); anything else cannot exist, and must not reach a
# database (PostgreSQL refuses a NUL outright).
ID_PATTERN = r"^[A-Za-z0-9-]{1,64}$"
Id = Annotated[str, StringConstraints(strip_whitespace=True, pattern=ID_PATTERN)]
RequiredText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000, pattern=NO_NUL)
]


class Actor(BaseModel):
    id: str
    kind: str
    name: str


class PersonSummary(BaseModel):
    id: str
    name: str


class Roles(BaseModel):
    incident_commander: PersonSummary | None
    communications_lead: PersonSummary | None
    scribe: PersonSummary | None


class Milestones(BaseModel):
    detected_at: datetime | None
    reported_at: datetime
    triaged_at: datetime | None
    acknowledged_at: datetime | None
    contained_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None


class Targets(BaseModel):
    """When the firm's response targets for the incident's priority fall due."""

    acknowledge_by: datetime | None
    contain_by: datetime | None
    resolve_by: datetime | None


class Summary(Strict):
    summary: RequiredText


class Reason(Strict):
    reason: RequiredText


class MergeInto(Strict):
    into: Id


class Reclassification(Strict):
    type: IncidentType | None = None
    impact: Impact | None = None
    urgency: Urgency | None = None
    reason: RequiredText


class RoleAssignment(Strict):
    person_id: Id
    briefing: LongText = ""


class PersonRef(Strict):
    person_id: Id


class RefusedCommand(BaseModel):
    command: str
    reason: str


class Transitions(BaseModel):
    incident_id: str
    status: str
    version: int
    allowed: list[str]
    refused: list[RefusedCommand]


class Task(BaseModel):
    id: str
    title: str
    description: str
    required: bool
    phase: Phase
    owner_role: OwnerRole
    status: TaskStatus
    assignee: PersonSummary | None
    note: str
    source: str


class TaskList(BaseModel):
    items: list[Task]


class NewTask(Strict):
    title: ShortText
    description: LongText = ""
    required: bool = False
    phase: Phase = "containment"
    owner_role: OwnerRole = "responder"


class TaskChange(Strict):
    status: TaskStatus | None = None
    assignee_id: Id | None = None
    note: LongText | None = None
    reason: LongText | None = None


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
    highest_priority: Priority | None = Field(
        description="The highest priority the incident has had; reports count by it."
    )
    version: int = Field(description="Changes with every command; the ETag.")
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
    milestones: Milestones
    targets: Targets | None = Field(description="When the firm's response targets fall due.")
    merged_into: str | None
    roles: Roles | None = Field(description="Staff only; null for a client's key.")
    responders: list[PersonSummary] | None = Field(description="Staff only.")
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
    actor: Actor
    audience: Literal["internal", "client"]


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
    """A key just issued: the only time the key itself is ever shown."""

    id: str
    person_id: str | None = Field(description="The person it acts as; null for a system's key.")
    client_id: str
    role: str
    prefix: str = Field(description="The key's first 12 characters, to recognise it by.")
    key: str = Field(description="Shown once; only its hash is stored.")
    created_at: datetime


class KeyOwner(BaseModel):
    kind: Literal["person", "client_system", "operator"]
    id: str = Field(description="The person's id, or the key's own id for a key of no person.")
    name: str


class ApiKeyInfo(BaseModel):
    """A key as listed: never the key or its hash."""

    id: str
    owner: KeyOwner
    client_id: str
    role: str
    prefix: str | None = Field(description="Null for keys issued before prefixes were kept.")
    created_at: datetime
    last_used_at: datetime | None = Field(description="Recorded at most once a minute.")
    revoked_at: datetime | None


class ApiKeyPage(BaseModel):
    items: list[ApiKeyInfo]
    next_cursor: str | None


# --- People -------------------------------------------------------------------------------------

PersonRole = Literal["responder", "manager", "admin", "client"]
ClientRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,64}$")]
# Separators people type between digit groups; E.164 itself is "+" and up to 15 digits.
PHONE_SEPARATORS = re.compile(r"[\s().-]")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def _e164(value: str) -> str:
    number = PHONE_SEPARATORS.sub("", value)
    if not E164.fullmatch(number):
        raise ValueError(
            "must be an international number: + and country code, e.g. +44 20 7946 0000"
        )
    return number


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _iana(value: str) -> str:
    if value not in _time_zones():
        raise ValueError("must be an IANA time zone name, e.g. Europe/London")
    return value


Phone = Annotated[str, StringConstraints(max_length=40), AfterValidator(_e164)]
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_iana)]
Wall = Annotated[list[ClientRef], Field(max_length=1000)]


class NewPerson(Strict):
    name: ShortText
    email: Email
    role: PersonRole
    client_id: ClientRef | None = Field(None, description="Required for role client; staff: none.")
    phone: Phone | None = None
    timezone: TimeZone | None = None
    clients: Wall | None = Field(
        None, description="Staff only: the clients they may work on; null or absent: all."
    )


class PersonChanges(Strict):
    """Only the fields present change; null clears phone, timezone, and the wall (all clients)."""

    name: ShortText | None = None
    email: Email | None = None
    role: PersonRole | None = None
    phone: Phone | None = None
    timezone: TimeZone | None = None
    clients: Wall | None = None
    active: bool | None = None

    @field_validator("name", "email", "role", "active")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only for fields the body names: an explicit null here is a mistake.
        if value is None:
            raise ValueError("may not be null")
        return value


class Person(BaseModel):
    id: str
    name: str
    email: str
    role: PersonRole
    client_id: str
    phone: str | None
    timezone: str | None
    clients: list[str] | None = Field(description="Staff's wall; null: every client.")
    active: bool
    created_at: datetime
    updated_at: datetime


class PersonPage(BaseModel):
    items: list[Person]
    next_cursor: str | None
