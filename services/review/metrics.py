"""Response metrics over the incidents reported in a period: counts, time to acknowledge,
contain, resolve and close (mean, p50, p90), response targets met or missed per priority,
overdue actions and deadline outcomes.

Each "time to" counts from the report to the milestone, over the incidents that reached it (a
reopened incident's resolution and closure count once it is resolved or closed again).
Percentiles are nearest-rank: p90 of n values is the ⌈0.9·n⌉-th smallest, always a value that
occurred. A response target is met when its milestone came at or before its due time, missed
when it came later or has not come and the due time has passed, and pending otherwise; an
incident counts under its current priority.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.review.v1 import review_pb2
from firebreak.keyset_pages import aware
from services.review import milestones
from services.review.action_states import PENDING
from services.review.models import action_items, deadline_records, incident_records

TIMES = ("time_to_acknowledge", "time_to_contain", "time_to_resolve", "time_to_close")
PRIORITIES = ("P1", "P2", "P3", "P4")
DEADLINE_OUTCOMES = ("met", "met_late", "missed", "not_applicable", "pending", "cancelled")


@dataclass(frozen=True)
class Filter:
    client_ids: Sequence[str] | None  # None: every client
    start: datetime | None
    end: datetime | None
    priority: str = ""
    type: str = ""


def nearest_rank(ordered: Sequence[float], percentile: float) -> float:
    """The nearest-rank percentile of values sorted ascending (at least one)."""
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


def duration_stats(values: Iterable[float]) -> review_pb2.DurationStats:
    ordered = sorted(values)
    if not ordered:
        return review_pb2.DurationStats(count=0)
    return review_pb2.DurationStats(
        count=len(ordered),
        mean_seconds=sum(ordered) / len(ordered),
        p50_seconds=nearest_rank(ordered, 50),
        p90_seconds=nearest_rank(ordered, 90),
    )


def _counts(values: Iterable[str], order: Sequence[str] = ()) -> list[review_pb2.Count]:
    counted = Counter(values)
    keys = [key for key in order if key in counted] + sorted(set(counted) - set(order))
    return [review_pb2.Count(key=key, count=counted[key]) for key in keys]


def _deadline_outcome(deadline: Mapping[Any, Any]) -> str:
    if deadline["status"] == "met" and deadline["late"]:
        return "met_late"
    return str(deadline["status"])


def compute(
    incidents: Sequence[Mapping[Any, Any]],
    *,
    actions: Iterable[Mapping[Any, Any]],
    deadlines: Iterable[Mapping[Any, Any]],
    now: datetime,
) -> review_pb2.Metrics:
    """The metrics of `incidents` (incident_records rows), their actions and deadlines. Pure."""
    spans: dict[str, list[float]] = {name: [] for name in TIMES}
    targets: dict[tuple[str, str], Counter[str]] = {}
    for record in incidents:
        for duration in milestones.durations(record):
            if duration.name in spans:
                spans[duration.name].append(duration.seconds)
        for target, _, _ in milestones.TARGETS:
            outcome = milestones.target_outcome(record, target, now=now)
            if outcome is not None:
                targets.setdefault((record["priority"], target), Counter())[outcome] += 1
    target_order = [target for target, _, _ in milestones.TARGETS]
    return review_pb2.Metrics(
        incidents=len(incidents),
        by_priority=_counts((record["priority"] for record in incidents), PRIORITIES),
        by_status=_counts(record["status"] for record in incidents),
        by_type=_counts(record["type"] for record in incidents),
        time_to_acknowledge=duration_stats(spans["time_to_acknowledge"]),
        time_to_contain=duration_stats(spans["time_to_contain"]),
        time_to_resolve=duration_stats(spans["time_to_resolve"]),
        time_to_close=duration_stats(spans["time_to_close"]),
        targets=[
            review_pb2.TargetOutcome(
                priority=priority,
                target=target,
                met=counted["met"],
                missed=counted["missed"],
                pending=counted["pending"],
            )
            for (priority, target), counted in sorted(
                targets.items(),
                key=lambda item: (item[0][0], target_order.index(item[0][1])),
            )
        ],
        overdue_actions=sum(
            1
            for action in actions
            if action["status"] in PENDING and aware(action["due_at"]) <= now
        ),
        deadline_outcomes=_counts(
            (_deadline_outcome(deadline) for deadline in deadlines), DEADLINE_OUTCOMES
        ),
    )


def _incidents_query(selection: Filter) -> Any:
    query = select(incident_records).where(incident_records.c.reported_at.is_not(None))
    if selection.client_ids is not None:
        query = query.where(incident_records.c.client_id.in_(list(selection.client_ids)))
    if selection.start is not None:
        query = query.where(incident_records.c.reported_at >= selection.start)
    if selection.end is not None:
        query = query.where(incident_records.c.reported_at < selection.end)
    if selection.priority:
        query = query.where(incident_records.c.priority == selection.priority)
    if selection.type:
        query = query.where(incident_records.c.type == selection.type)
    return query.order_by(incident_records.c.reported_at, incident_records.c.incident_id)


async def incidents_in(connection: AsyncConnection, selection: Filter) -> list[Mapping[Any, Any]]:
    rows = (await connection.execute(_incidents_query(selection))).all()
    return [row._mapping for row in rows]


async def metrics(
    connection: AsyncConnection, *, selection: Filter, now: datetime
) -> review_pb2.Metrics:
    incidents = await incidents_in(connection, selection)
    chosen = (
        _incidents_query(selection).with_only_columns(incident_records.c.incident_id).order_by(None)
    )
    action_rows = await connection.execute(
        select(action_items.c.status, action_items.c.due_at).where(
            action_items.c.incident_id.in_(chosen)
        )
    )
    deadline_rows = await connection.execute(
        select(deadline_records.c.status, deadline_records.c.late).where(
            deadline_records.c.incident_id.in_(chosen)
        )
    )
    return compute(
        incidents,
        actions=[row._mapping for row in action_rows],
        deadlines=[row._mapping for row in deadline_rows],
        now=now,
    )
