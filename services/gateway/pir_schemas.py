"""Request and response bodies of the post-incident review, closure and the metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.gateway.review_schemas import ActionItem, Analysis
from services.gateway.schemas import (
    Actor,
    LongText,
    PersonSummary,
    RequiredText,
    Strict,
    TimelineEntry,
)

ClosureCode = Literal["resolved", "false_positive", "duplicate", "risk_accepted"]

# --- the post-incident review ----------------------------------------------------------------


class ReviewEdit(Strict):
    summary: LongText | None = None
    impact: LongText | None = None
    what_went_well: LongText | None = None
    what_went_wrong: LongText | None = Field(None, description="What did not go well.")
    lessons_learned: LongText | None = None


class ReviewIncident(BaseModel):
    reference: str
    title: str
    description: str
    type: str
    impact: str
    urgency: str
    priority: str
    highest_priority: str
    status: str
    affected_assets: list[str]
    closure_code: ClosureCode | None
    closure_summary: str | None


class Milestone(BaseModel):
    name: Literal[
        "detected", "reported", "triaged", "acknowledged", "contained", "resolved", "closed"
    ]
    at: datetime | None = Field(description="Null: not reached.")
    due: datetime | None = Field(description="The response target, for those that have one.")


class Duration(BaseModel):
    name: str = Field(description="e.g. `time_to_acknowledge` (from the report).")
    seconds: float
    from_milestone: str
    to_milestone: str


class RoleHolder(BaseModel):
    role: Literal["incident_commander", "communications_lead", "scribe", "responder"]
    person: PersonSummary


class EvidenceItem(BaseModel):
    evidence_id: str
    filename: str
    sha256: str
    size_bytes: int
    collected_by: str
    collected_at: datetime | None
    holder: PersonSummary
    checked_out: bool = Field(description="Released to someone who has not confirmed receipt.")
    pending_receiver: PersonSummary | None
    disposed: bool


class DeadlineOutcome(BaseModel):
    id: str
    kind: Literal["regulatory", "contractual"]
    rule: str
    flag: str | None
    source: str
    due_at: datetime
    status: Literal["pending", "met", "missed", "not_applicable", "cancelled"]
    settled_at: datetime | None = Field(description="When it was met or marked not applicable.")
    late: bool
    reference: str | None
    not_applicable_reason: str | None


class Signature(BaseModel):
    person: PersonSummary
    capacity: Literal["manager", "attendee"]
    signed_at: datetime


class PostIncidentReview(BaseModel):
    incident_id: str
    version: int = Field(description="+1 per change; the ETag. Signatures are of one version.")
    status: Literal["draft", "signed_off"] = Field(
        description="`signed_off`: a manager (or admin) signed this version."
    )
    incident: ReviewIncident
    summary: str
    impact: str
    what_went_well: str
    what_went_wrong: str
    lessons_learned: str
    milestones: list[Milestone]
    durations: list[Duration]
    roles: list[RoleHolder]
    key_events: list[TimelineEntry]
    analysis: Analysis
    actions: list[ActionItem]
    evidence: list[EvidenceItem]
    deadlines: list[DeadlineOutcome]
    notifications: list[TimelineEntry]
    signatures: list[Signature]
    drafted_by: Actor
    drafted_at: datetime = Field(description="When the facts were drafted: they are as of then.")
    updated_by: Actor
    updated_at: datetime


# --- closure ---------------------------------------------------------------------------------


class Closure(Strict):
    closure_code: ClosureCode
    summary: RequiredText


class UnmetGate(BaseModel):
    gate: str
    reason: str
    items: list[str] = Field(description="The ids of what holds it: actions, evidence, deadlines.")


class ClosureGates(BaseModel):
    gates: list[str] = Field(description="The gates the firm applies (FIREBREAK_CLOSURE_GATES).")
    unmet: list[UnmetGate] = Field(description="Empty: the incident may be closed now.")


# --- metrics ---------------------------------------------------------------------------------


class Count(BaseModel):
    key: str
    count: int


class DurationStats(BaseModel):
    count: int = Field(description="Incidents that reached the milestone.")
    mean_seconds: float | None
    p50_seconds: float | None = Field(description="Nearest rank.")
    p90_seconds: float | None = Field(description="Nearest rank.")


class TargetOutcome(BaseModel):
    priority: str
    target: Literal["acknowledge", "contain", "resolve"]
    met: int
    missed: int
    pending: int


class Metrics(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    start: datetime | None = Field(alias="from", description="Incidents reported at or after.")
    to: datetime | None = Field(description="Reported before.")
    client_id: str | None
    priority: str | None
    type: str | None
    incidents: int
    by_priority: list[Count]
    by_status: list[Count]
    by_type: list[Count]
    time_to_acknowledge: DurationStats
    time_to_contain: DurationStats
    time_to_resolve: DurationStats
    time_to_close: DurationStats
    targets: list[TargetOutcome] = Field(description="Response targets per priority.")
    overdue_actions: int
    deadline_outcomes: list[Count] = Field(
        description="met, met_late, missed, not_applicable, pending, cancelled."
    )
