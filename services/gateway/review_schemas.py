"""Request and response bodies of the routes review backs: notes and key events, time spent,
the analysis, and actions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, StringConstraints

from services.gateway.plain_text import MultiLine
from services.gateway.schemas import (
    CLOCK_SKEW,
    Actor,
    Id,
    LongText,
    PersonSummary,
    RequiredText,
    ShortText,
    Strict,
)

Audience = Literal["internal", "client"]
TimeRole = Literal["incident_commander", "communications_lead", "scribe", "responder"]
Category = Literal["people", "process", "technology", "third_party", "environment"]
ActionKind = Literal["remediation", "recovery", "corrective", "preventive"]
ActionStatus = Literal["open", "in_progress", "done", "verified", "wont_do_requested", "wont_do"]
CheckStatus = Literal["scheduled", "due", "effective", "not_effective"]
Item = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), MultiLine
]
MAX_MINUTES = 24 * 60


def _utc(value: datetime) -> datetime:
    try:
        moment = value.astimezone(UTC)
    except OverflowError as error:
        raise ValueError("is out of range") from error
    if moment.year < 1970:
        raise ValueError("must be after 1970")
    return moment


def _past(value: datetime) -> datetime:
    if value > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return value


# An aware date and time (ISO 8601 with an offset), in UTC; Past: not ahead of now.
Moment = Annotated[AwareDatetime, AfterValidator(_utc)]
Past = Annotated[AwareDatetime, AfterValidator(_utc), AfterValidator(_past)]


# --- notes and key events -------------------------------------------------------------------


class NewNote(Strict):
    body: RequiredText
    audience: Audience = Field(
        description="`client`: the client reads it in its timeline too; `internal`: staff only."
    )
    occurred_at: Past | None = Field(
        None, description="When what it tells happened; default now, never in the future."
    )


class KeyEventMark(Strict):
    key_event: bool


# --- time spent -----------------------------------------------------------------------------


class NewTimeEntry(Strict):
    minutes: int = Field(ge=1, le=MAX_MINUTES, strict=True, description="At most a day.")
    role: TimeRole = Field(description="The capacity the time was spent in.")
    activity: Item
    at: Past | None = Field(None, description="When the work was done; default now.")


class TimeEntry(BaseModel):
    id: str
    person: PersonSummary
    role: TimeRole
    activity: str
    minutes: int
    at: datetime
    recorded_at: datetime


class TimeEntryList(BaseModel):
    items: list[TimeEntry] = Field(description="By when the work was done, oldest first.")
    total_minutes: int


class TimeTotal(BaseModel):
    client_id: str
    client_name: str | None = Field(description="Null for a client the firm no longer has.")
    person: PersonSummary
    role: TimeRole
    entries: int
    minutes: int
    hours: float = Field(description="minutes / 60, to two places.")


class TimeReport(BaseModel):
    from_: datetime | None = Field(alias="from")
    to: datetime | None
    items: list[TimeTotal] = Field(description="By client, person and role.")
    total_minutes: int


# --- the analysis ---------------------------------------------------------------------------


class ContributingFactor(Strict):
    category: Category
    description: Item


class AnalysisIn(Strict):
    summary: LongText = ""
    root_cause: LongText = ""
    five_whys: list[Item] = Field(default_factory=list, max_length=10)
    contributing_factors: list[ContributingFactor] = Field(default_factory=list, max_length=50)


class Analysis(BaseModel):
    incident_id: str
    version: int = Field(description="0: none written yet; the ETag an If-Match names.")
    summary: str
    root_cause: str
    five_whys: list[str]
    contributing_factors: list[ContributingFactor]
    updated_by: Actor | None
    updated_at: datetime | None


class AnalysisHistory(BaseModel):
    items: list[Analysis] = Field(description="Every version, newest first.")


# --- actions --------------------------------------------------------------------------------


class NewAction(Strict):
    kind: ActionKind
    title: ShortText
    description: LongText = ""
    owner_id: Id = Field(description="Active staff inside the client's wall.")
    due_at: Moment = Field(description="In the future; past it, its owner is reminded.")
    verification_required: bool = False


class ActionChange(Strict):
    status: ActionStatus | None = None
    reason: LongText = Field(
        "", description="Required for wont_do_requested, wont_do, and back to open once done."
    )
    owner_id: Id | None = None
    due_at: Moment | None = None


class EffectivenessConfirmation(Strict):
    effective: bool = Field(
        description="true: the problem has not come back (once the check is due); false: it "
        "has, and the action reopens (at any time after it was done)."
    )
    note: RequiredText


class EffectivenessCheck(BaseModel):
    status: CheckStatus
    due_at: datetime
    checked_by: PersonSummary | None
    checked_at: datetime | None
    note: str


class ActionItem(BaseModel):
    id: str
    kind: ActionKind
    title: str
    description: str
    owner: PersonSummary
    due_at: datetime
    overdue: bool = Field(description="Not finished and past its due time.")
    verification_required: bool
    status: ActionStatus
    wont_do_reason: str | None
    approved_by: PersonSummary | None = Field(description="Who approved wont_do.")
    done_at: datetime | None
    verified_by: PersonSummary | None
    verified_at: datetime | None
    effectiveness: EffectivenessCheck | None = Field(
        description="A corrective action's check, once it is done."
    )
    created_by: PersonSummary
    created_at: datetime


class ActionList(BaseModel):
    items: list[ActionItem] = Field(description="Oldest first.")
