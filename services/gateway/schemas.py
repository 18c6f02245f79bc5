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

from firebreak.keyset_pages import ID_PATTERN
from services.gateway.plain_text import MultiLine, SingleLine

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
# Text people read refuses every control and format character (plain_text).
NO_NUL = r"^[^\x00]*$"
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SingleLine
]
LongText = Annotated[str, StringConstraints(max_length=20_000), MultiLine]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$"
    ),
    SingleLine,
]
Label = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), SingleLine
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
Id = Annotated[str, StringConstraints(strip_whitespace=True, pattern=ID_PATTERN)]
RequiredText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000), MultiLine
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
    alert_count: int = Field(description="Alert events counted on it (0: no alert opened it).")
    dedup_key: str | None = Field(description="The alert dedup key it was opened for.")


class IncidentPage(BaseModel):
    items: list[Incident]
    next_cursor: str | None


class TimelineField(BaseModel):
    name: str = Field(description="What the value is, e.g. `title`, `reason`, `note`, `by`.")
    value: str = Field(description="As someone wrote it, or a person's name.")


class TimelineEntry(BaseModel):
    event_id: str = Field(description="Also the entry's id.")
    type: str
    occurred_at: datetime = Field(description="When it happened.")
    recorded_at: datetime = Field(
        description="When it was written down (a note can tell of something earlier)."
    )
    producer: str
    summary: str = Field(
        description="The platform's own words; what people wrote is in `fields`, never here "
        "(entries written before there were fields hold it here)."
    )
    fields: list[TimelineField] = Field(
        description="What people wrote (titles, reasons, notes, names), in order; a client "
        "reads only the values meant for it."
    )
    actor: Actor
    audience: Literal["internal", "client"]
    key_event: bool


class Timeline(BaseModel):
    incident_id: str
    entries: list[TimelineEntry]


class NewClient(Strict):
    name: ShortText


CREATED_BY = (
    "Who created it: a person's id, or the id of a key of no person (`bootstrap`: the "
    "bootstrap key); null when made by the gateway itself or before this was recorded."
)


class Client(BaseModel):
    id: str
    name: str
    created_at: datetime
    created_by: str | None = Field(description=CREATED_BY)


class ClientPage(BaseModel):
    items: list[Client]
    next_cursor: str | None


def _in_the_future(value: datetime) -> datetime:
    try:
        moment = value.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("is out of range") from error
    if moment <= datetime.now(UTC):
        raise ValueError("must be in the future")
    return moment


KeyExpiry = Annotated[
    AwareDatetime,
    AfterValidator(_in_the_future),
    Field(description="When the key stops working (ISO 8601 with an offset); absent: never."),
]


class NewApiKey(Strict):
    role: Role
    expires_at: KeyExpiry | None = None


class NewPersonalKey(Strict):
    expires_at: KeyExpiry | None = None


class NewPassword(Strict):
    password: str = Field(
        min_length=12, max_length=1024, description="For the console's sign-in (argon2id-hashed)."
    )


class SignInLink(BaseModel):
    """A one-time link for the person to set their console password: shown once, for the
    admin to hand on; it works once, until `expires_at`."""

    url: str
    expires_at: AwareDatetime


class ApiKey(BaseModel):
    """A key just issued: the only time the key itself is ever shown."""

    id: str
    person_id: str | None = Field(description="The person it acts as; null for a system's key.")
    client_id: str
    role: str
    prefix: str = Field(description="The key's first 12 characters, to recognise it by.")
    key: str = Field(description="Shown once; only its hash is stored.")
    created_at: datetime
    expires_at: datetime | None
    created_by: str | None = Field(description=CREATED_BY)


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
    expires_at: datetime | None = Field(description="Refused from then on; null: never.")
    created_by: str | None = Field(description=CREATED_BY)


class ApiKeyPage(BaseModel):
    items: list[ApiKeyInfo]
    next_cursor: str | None


# --- People -------------------------------------------------------------------------------------

PersonRole = Literal["responder", "manager", "admin", "client"]
ClientRef = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
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
    created_by: str | None = Field(description=CREATED_BY)


class PersonPage(BaseModel):
    items: list[Person]
    next_cursor: str | None


# --- on-call schedules --------------------------------------------------------------------------

# What proto's uint32 Layer.hours holds; the sensible range is the schedule check's (notify).
MAX_UINT32 = 2**32 - 1


def _instant(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("is out of range") from error


# An aware date and time (ISO 8601 with an offset), kept in UTC.
Instant = Annotated[AwareDatetime, AfterValidator(_instant)]


class HoursRotation(Strict):
    hours: int = Field(description="Every N hours of elapsed time after the first handoff.")


class ScheduleLayer(Strict):
    participants: Annotated[list[Id], Field(max_length=1000)] = Field(
        description="Active staff, in rotation order; someone may be listed more than once."
    )
    rotation: Literal["daily", "weekly"] | HoursRotation = Field(
        description='"daily" or "weekly" hand off at handoff_time on the schedule\'s clocks, '
        'through daylight-saving changes; {"hours": N} every N hours of elapsed time.'
    )
    handoff_time: Annotated[str, StringConstraints(max_length=20, pattern=NO_NUL)] = Field(
        description='"HH:MM" on the schedule\'s clocks.'
    )
    starts_at: Instant = Field(description="The layer starts at the first handoff from then.")

    @field_validator("rotation", mode="before")
    @classmethod
    def _one_rotation(cls, value: object) -> object:
        # Checked whole here so that a mistake is one error naming `rotation`.
        if value in ("daily", "weekly") or isinstance(value, HoursRotation):
            return value
        if isinstance(value, dict) and set(value) == {"hours"}:
            hours = value["hours"]
            if isinstance(hours, int) and not isinstance(hours, bool) and 0 < hours <= MAX_UINT32:
                return value
        raise ValueError('must be "daily", "weekly" or {"hours": N} with N a whole number')


class ScheduleOverride(Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    person_id: Id
    from_: Instant = Field(alias="from", description="Included.")
    to: Instant = Field(description="Excluded.")


Layers = Annotated[list[ScheduleLayer], Field(max_length=50)]
Overrides = Annotated[list[ScheduleOverride], Field(max_length=1000)]


class NewSchedule(Strict):
    name: ShortText
    timezone: TimeZone = Field(description="IANA, e.g. Europe/London; handoffs follow its clocks.")
    layers: Layers = Field(description="Bottom to top: the last layer with someone on call wins.")
    overrides: Overrides = Field([], description="Win over every layer while they last.")


class ScheduleChanges(Strict):
    """The fields present replace the schedule's; the others stay."""

    name: ShortText | None = None
    timezone: TimeZone | None = None
    layers: Layers | None = None
    overrides: Overrides | None = None

    @field_validator("name", "timezone", "layers", "overrides")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value


class Schedule(BaseModel):
    id: str
    name: str
    timezone: str
    layers: list[ScheduleLayer]
    overrides: list[ScheduleOverride]
    version: int = Field(description="Changes with every change; the ETag.")
    created_at: datetime
    updated_at: datetime


class SchedulePage(BaseModel):
    items: list[Schedule]
    next_cursor: str | None


class OnCallPerson(BaseModel):
    id: str
    name: str | None = Field(description="Null for a person the firm no longer knows.")


class OnCall(BaseModel):
    schedule_id: str
    at: datetime
    person: OnCallPerson | None = Field(description="Null: nobody is on call then.")
    source: str | None = Field(
        description='"override", or "layer N" (N: the layer\'s index in layers); null: nobody.'
    )
    until: datetime | None = Field(
        description="When who is on call changes next; null: no change ahead."
    )


# --- escalation policies ---

MAX_POLICY_STEPS = 20
MAX_STEP_TARGETS = 20
MAX_AFTER_MINUTES = 10_080  # a week
MAX_REPEAT = 10


class EscalationTargetIn(Strict):
    person_id: Id | None = Field(None, description="An active member of staff.")
    schedule_id: Id | None = Field(None, description="Whoever is on call on the schedule.")


def _exactly_one_target(target: EscalationTargetIn) -> EscalationTargetIn:
    if (target.person_id is None) == (target.schedule_id is None):
        raise ValueError("give exactly one of person_id and schedule_id")
    return target


EscalationTargetRef = Annotated[EscalationTargetIn, AfterValidator(_exactly_one_target)]
AfterMinutes = Annotated[float, Field(ge=0, le=MAX_AFTER_MINUTES, strict=True, allow_inf_nan=False)]


class EscalationStepIn(Strict):
    targets: Annotated[list[EscalationTargetRef], Field(min_length=1, max_length=MAX_STEP_TARGETS)]
    after_minutes: AfterMinutes = Field(
        description="How long this step's targets have to acknowledge before the next step's "
        "are notified as well (after the last step: before the steps repeat, or the firm's "
        "managers are paged). Fractions allowed."
    )


def _no_repeated_priority(priorities: list[str]) -> list[str]:
    for index, priority in enumerate(priorities):
        if priority in priorities[:index]:
            raise ValueError(f"{priority} is listed twice")
    return priorities


PolicySteps = Annotated[list[EscalationStepIn], Field(min_length=1, max_length=MAX_POLICY_STEPS)]
PolicyPriorities = Annotated[
    list[Priority], Field(min_length=1, max_length=4), AfterValidator(_no_repeated_priority)
]
Repeat = Annotated[int, Field(ge=0, le=MAX_REPEAT, strict=True)]
Paging = Annotated[bool, Field(strict=True)]


class NewEscalationPolicy(Strict):
    name: ShortText
    steps: PolicySteps
    repeat: Repeat = Field(0, description="How many more times the steps run after the last.")
    client_id: Id | None = Field(
        None, description="The client whose incidents it covers; absent: the firm's default."
    )
    priorities: PolicyPriorities
    page: Paging = Field(True, description="false: email only, no paging.")


class EscalationPolicyChanges(Strict):
    """Only the fields present change, each replaced whole; client_id null makes the policy a
    firm default."""

    name: ShortText | None = None
    steps: PolicySteps | None = None
    repeat: Repeat | None = None
    client_id: Id | None = None
    priorities: PolicyPriorities | None = None
    page: Paging | None = None

    @field_validator("name", "steps", "repeat", "priorities", "page")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Runs only for fields the body names: an explicit null here is a mistake.
        if value is None:
            raise ValueError("may not be null")
        return value


class EscalationTarget(BaseModel):
    person_id: str | None
    schedule_id: str | None


class EscalationStep(BaseModel):
    targets: list[EscalationTarget]
    after_minutes: float


class EscalationPolicy(BaseModel):
    id: str
    name: str
    client_id: str | None = Field(description="Null: the firm's default for its priorities.")
    priorities: list[Priority]
    page: bool
    steps: list[EscalationStep]
    repeat: int
    version: int = Field(description="Changes with every change; the ETag.")
    created_at: datetime
    updated_at: datetime


class EscalationPolicyPage(BaseModel):
    items: list[EscalationPolicy]
    next_cursor: str | None


# --- contact methods and deliveries -------------------------------------------------------------

ContactKind = Literal["email", "webhook", "slack", "teams"]
ContactAddress = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), SingleLine
]
SigningSecret = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NO_NUL)]


class NewContactMethod(Strict):
    kind: ContactKind
    address: ContactAddress = Field(
        description="An email address, or the URL of the webhook, Slack or Teams receiver."
    )
    secret: SigningSecret | None = Field(
        None,
        description="Webhooks only, and required for them: the signing secret (`whsec_` and "
        "base64 of at least 24 random bytes, as Standard Webhooks says). Stored as given (the "
        "receiver holds the same key); never returned.",
    )


class ContactMethod(BaseModel):
    id: str = Field(description='"email" for the person\'s own email, always the first.')
    kind: ContactKind
    address: str = Field(description="Slack and Teams URLs are secrets: scheme and host only.")
    has_secret: bool
    implicit: bool = Field(description="The person's own email: follows it, cannot be deleted.")
    created_at: datetime | None


class ContactMethodList(BaseModel):
    items: list[ContactMethod] = Field(description="In the order a page tries them.")


DeliveryStatus = Literal["pending", "sending", "delivered", "failed"]
DeliveryPurpose = Literal[
    "page",
    "status_update",
    "update_reminder",
    "deadline_reminder",
    "deadline_missed",
    "action_overdue",
    "effectiveness_check_due",
]


class Delivery(BaseModel):
    id: str = Field(description="The email's Message-ID and the webhook's webhook-id.")
    person: PersonSummary
    channel: ContactKind
    target: str = Field(description="The email address, or only the host of a URL.")
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    step: int = Field(
        description="The policy step it paged for, from 0 (the fallback: the one after the last)."
    )
    purpose: DeliveryPurpose = Field(
        description="Only a page that finally fails moves its escalation to the next step."
    )
    created_at: datetime
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    items: list[Delivery] = Field(description="Oldest first.")


Audience = Literal["internal", "client"]
UpdateBody = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000), MultiLine
]


class NewStatusUpdate(Strict):
    audience: Audience = Field(
        description="`client`: emailed to the client's contacts and shown in its timeline; "
        "`internal`: to the incident's role holders and responders, never to the client."
    )
    body: UpdateBody


class StatusUpdate(BaseModel):
    id: str
    audience: Audience
    body: str
    author: Actor = Field(description="For a client: the response team, not the person.")
    posted_at: datetime
    recipients: int = Field(description="Emails queued: client contacts, or the firm's people.")


class StatusUpdateList(BaseModel):
    items: list[StatusUpdate] = Field(description="Oldest first; a client sees its own only.")


# --- flags and deadlines (issue 9, §5) ----------------------------------------------------------

FLAGS = ("personal_data", "nis2", "dora", "sec")
MAX_RULE_MINUTES = 366 * 24 * 60  # a year


def _known_flags(flags: list[str]) -> list[str]:
    for flag in flags:
        if flag not in FLAGS:
            raise ValueError(f"unknown flag {flag!r}: one of {', '.join(FLAGS)}")
    return flags


def _aware_in_the_past(value: datetime | None) -> datetime | None:
    if value is not None and value > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return value


class NewFlags(Strict):
    flags: Annotated[
        list[Annotated[str, StringConstraints(max_length=40)]],
        Field(min_length=1, max_length=len(FLAGS)),
        AfterValidator(_known_flags),
    ] = Field(
        description="`personal_data` (GDPR Art. 33), `nis2`, `dora`, `sec` (Form 8-K Item "
        "1.05): each flag not set before starts its regulatory deadlines."
    )
    aware_at: Annotated[Instant | None, AfterValidator(_aware_in_the_past)] = Field(
        None,
        description="When the firm became aware (for `sec`: the materiality determination; for "
        "`dora`: the classification as major); default now, never in the future.",
    )


class Deadline(BaseModel):
    id: str
    kind: Literal["regulatory", "contractual"]
    rule: str = Field(description="The rule's name: the legal table's, or the client's.")
    flag: str | None = Field(description="The flag that started it; null for contractual ones.")
    source: str = Field(description="The legal source, or the contract's wording.")
    due_at: datetime
    status: Literal["pending", "met", "missed", "cancelled", "not_applicable"] = Field(
        description="`cancelled`: a contractual deadline of an incident declined or merged; "
        "`not_applicable`: set aside with a reason."
    )
    met_at: datetime | None
    reference: str | None = Field(
        description="What it was met with: e.g. the authority's case number, or the client "
        "update's id."
    )
    late: bool = Field(description="Recorded met after due_at.")
    met_by: Literal["manual", "client_update"]
    started_at: datetime
    cancelled_because: Literal["declined", "merged"] | None
    not_applicable_reason: str | None = Field(
        None, description="Why it does not apply, once marked not applicable."
    )


class DeadlineNotApplicable(Strict):
    reason: ShortText = Field(description="Why the deadline does not apply to the incident.")


class FlagsSet(BaseModel):
    flagged: list[str] = Field(description="The flags this request set.")
    already_set: list[str] = Field(description="Set before: nothing was started again.")
    deadlines: list[Deadline] = Field(description="The deadlines this request started.")


class DeadlineList(BaseModel):
    items: list[Deadline] = Field(description="By due time.")


class DeadlineMet(Strict):
    reference: ShortText = Field(description="e.g. the authority's case or submission number.")


class ContractualRule(Strict):
    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), SingleLine
    ]
    description: Annotated[str, StringConstraints(max_length=1000), MultiLine] = Field(
        "", description='The contract\'s wording, e.g. "inform the client within 1 hour of a P1".'
    )
    priorities: PolicyPriorities = Field(description="The incidents it applies to.")
    within_minutes: Annotated[
        float, Field(gt=0, le=MAX_RULE_MINUTES, strict=True, allow_inf_nan=False)
    ] = Field(
        description="Due this long after triage (or the reclassification into one of the "
        "priorities); fractions allowed."
    )
    met_by: Literal["client_update", "manual"] = Field(
        description="`client_update`: the first status update to the client meets it; "
        "`manual`: someone records it met."
    )


def _unique_rule_names(rules: list[ContractualRule]) -> list[ContractualRule]:
    for index, rule in enumerate(rules):
        if any(earlier.name == rule.name for earlier in rules[:index]):
            raise ValueError(f"two rules are named {rule.name!r}")
    return rules


class NewDeadlineRules(Strict):
    rules: Annotated[
        list[ContractualRule], Field(max_length=50), AfterValidator(_unique_rule_names)
    ] = Field(description="The client's rules, whole (an empty list: none).")


class DeadlineRules(BaseModel):
    client_id: str
    rules: list[ContractualRule]
    updated_at: datetime | None = Field(description="Null: never set.")
