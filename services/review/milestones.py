"""An incident's milestones and the durations between them, as the PIR shows them and the
metrics count them. Every "time to" counts from the report, as the response targets do (triage
sets them from the report time); the steps between milestones show where the time went.

Pure: it takes the incident record's values (incident_records columns), nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from firebreak.keyset_pages import aware_or_none

# (name, the record's column, the response target's column if there is one)
MILESTONES = (
    ("detected", "detected_at", None),
    ("reported", "reported_at", None),
    ("triaged", "triaged_at", None),
    ("acknowledged", "acknowledged_at", "acknowledge_due"),
    ("contained", "contained_at", "contain_due"),
    ("resolved", "resolved_at", "resolve_due"),
    ("closed", "closed_at", None),
)
# (name, from milestone, to milestone)
DURATIONS = (
    ("time_to_acknowledge", "reported", "acknowledged"),
    ("time_to_contain", "reported", "contained"),
    ("time_to_resolve", "reported", "resolved"),
    ("time_to_close", "reported", "closed"),
    ("acknowledged_to_contained", "acknowledged", "contained"),
    ("contained_to_resolved", "contained", "resolved"),
)
# The response targets: (target, milestone, its due column).
TARGETS = (
    ("acknowledge", "acknowledged_at", "acknowledge_due"),
    ("contain", "contained_at", "contain_due"),
    ("resolve", "resolved_at", "resolve_due"),
)


@dataclass(frozen=True)
class Milestone:
    name: str
    at: datetime | None
    due: datetime | None


@dataclass(frozen=True)
class Duration:
    name: str
    from_milestone: str
    to_milestone: str
    seconds: float


def milestones(record: Mapping[Any, Any]) -> list[Milestone]:
    return [
        Milestone(name, aware_or_none(record[column]), aware_or_none(record[due]) if due else None)
        for name, column, due in MILESTONES
    ]


def durations(record: Mapping[Any, Any]) -> list[Duration]:
    """The durations whose two milestones the incident reached (a reopened incident's
    resolution and closure start afresh, as its record does)."""
    reached = {item.name: item.at for item in milestones(record) if item.at is not None}
    return [
        Duration(name, start, end, (reached[end] - reached[start]).total_seconds())
        for name, start, end in DURATIONS
        if start in reached and end in reached
    ]


def target_outcome(record: Mapping[Any, Any], target: str, *, now: datetime) -> str | None:
    """met, missed or pending for one response target; None when the incident has none (not
    triaged, or its priority sets none)."""
    _, column, due_column = next(item for item in TARGETS if item[0] == target)
    due = aware_or_none(record[due_column])
    if due is None:
        return None
    reached = aware_or_none(record[column])
    if reached is not None:
        return "met" if reached <= due else "missed"
    return "missed" if due < now else "pending"
