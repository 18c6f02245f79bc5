"""Triage's domain logic: the impact-by-urgency priority matrix and recording decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.errors import NotFound
from firebreak.events import INCIDENT_TRIAGED, new_event
from firebreak.outbox import Outbox
from services.triage.models import decisions

URGENCIES = ("critical", "high", "medium", "low")
# Rows are impact, columns urgency in the order above (the SOP's default matrix).
PRIORITY_MATRIX = {
    "extensive": ("P1", "P1", "P2", "P3"),
    "significant": ("P1", "P2", "P3", "P3"),
    "moderate": ("P2", "P3", "P3", "P4"),
    "minor": ("P3", "P4", "P4", "P4"),
}


INSERT_DECISION = decisions.insert()


def prioritise(impact: str, urgency: str) -> str:
    return PRIORITY_MATRIX[impact][URGENCIES.index(urgency)]


async def triage_incident(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    reported: events_pb2.EventEnvelope,
    decided_by: str,
) -> None:
    """Decides the priority of a reported incident and records it with incident.triaged."""
    report = reported.incident_reported
    priority = prioritise(report.impact, report.urgency)
    rationale = (
        f"impact {report.impact}, urgency {report.urgency}: {priority} by the default matrix"
    )
    now = datetime.now(UTC)
    await connection.execute(
        INSERT_DECISION,
        {
            "incident_id": reported.incident_id,
            "client_id": reported.client_id,
            "priority": priority,
            "impact": report.impact,
            "urgency": report.urgency,
            "rationale": rationale,
            "decided_by": decided_by,
            "decided_at": now,
        },
    )
    await outbox.add(
        connection,
        new_event(
            INCIDENT_TRIAGED,
            incident_id=reported.incident_id,
            client_id=reported.client_id,
            producer="triage",
            occurred_at=now,
            payload=events_pb2.IncidentTriaged(
                priority=priority, impact=report.impact, urgency=report.urgency, rationale=rationale
            ),
        ),
    )


async def get_decision(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str
) -> Row[Any]:
    query = select(decisions).where(decisions.c.incident_id == incident_id)
    if client_id is not None:
        query = query.where(decisions.c.client_id == client_id)
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound(f"no triage decision for incident {incident_id}")
    return row
