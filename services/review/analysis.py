"""An incident's analysis: a summary, the root cause, the five whys and the contributing
factors. Every change is a new version, kept whole with who made it and when; the newest is
the analysis. A writer names the version they edited (If-Match), so no change is lost."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.errors import InvalidArgument, StaleVersion
from firebreak.events import ANALYSIS_UPDATED, new_event
from firebreak.outbox import Outbox
from services.review.models import analysis_versions
from services.review.notes import checked_text
from services.review.service import emit

CATEGORIES = ("people", "process", "technology", "third_party", "environment")
MAX_TEXT = 20_000
MAX_WHYS = 10
MAX_FACTORS = 50
MAX_ITEM = 2000


class StaleAnalysis(StaleVersion):
    """The If-Match names a version of the analysis that is no longer the newest."""

    def __init__(self, *, expected: int, current: int) -> None:
        super().__init__(expected=expected, current=current)
        self.args = (f"the analysis is at version {current}, not {expected}",)


def _factors(factors: list[events_pb2.ContributingFactor]) -> list[dict[str, str]]:
    if len(factors) > MAX_FACTORS:
        raise InvalidArgument("contributing_factors", f"must be at most {MAX_FACTORS}")
    checked = []
    for index, factor in enumerate(factors):
        field = f"contributing_factors.{index}"
        if factor.category not in CATEGORIES:
            raise InvalidArgument(f"{field}.category", f"must be one of {', '.join(CATEGORIES)}")
        description = checked_text(f"{field}.description", factor.description, limit=MAX_ITEM)
        checked.append({"category": factor.category, "description": description})
    return checked


def _whys(whys: list[str]) -> list[str]:
    if len(whys) > MAX_WHYS:
        raise InvalidArgument("five_whys", f"must be at most {MAX_WHYS}")
    return [
        checked_text(f"five_whys.{index}", why, limit=MAX_ITEM) for index, why in enumerate(whys)
    ]


async def current_version(connection: AsyncConnection, *, incident_id: str) -> int:
    query = select(func.max(analysis_versions.c.version)).where(
        analysis_versions.c.incident_id == incident_id
    )
    return int((await connection.execute(query)).scalar() or 0)


async def put_analysis(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    incident_id: str,
    client_id: str,
    actor: events_pb2.Actor,
    expected_version: int | None,
    summary: str,
    root_cause: str,
    five_whys: list[str],
    contributing_factors: list[events_pb2.ContributingFactor],
    now: datetime,
) -> Row[Any]:
    """Saves a new version. Two writers of the same version at once: one wins, the other's
    insert fails on the (incident, version) key, and the caller turns that into a conflict."""
    values = {
        "incident_id": incident_id,
        "client_id": client_id,
        "summary": checked_text("summary", summary, limit=MAX_TEXT, required=False),
        "root_cause": checked_text("root_cause", root_cause, limit=MAX_TEXT, required=False),
        "five_whys": _whys(five_whys),
        "contributing_factors": _factors(contributing_factors),
        "author_id": actor.id,
        "author_kind": actor.kind,
        "author_name": actor.name,
        "created_at": now,
    }
    current = await current_version(connection, incident_id=incident_id)
    if expected_version is not None and expected_version != current:
        raise StaleAnalysis(expected=expected_version, current=current)
    values["version"] = current + 1
    row = (
        await connection.execute(
            analysis_versions.insert().values(values).returning(*analysis_versions.c)
        )
    ).one()
    await emit(
        connection,
        outbox=outbox,
        event=new_event(
            ANALYSIS_UPDATED,
            incident_id=incident_id,
            client_id=client_id,
            producer="review",
            payload=events_pb2.AnalysisUpdated(
                version=row.version,
                summary=row.summary,
                root_cause=row.root_cause,
                five_whys=row.five_whys,
                contributing_factors=[
                    events_pb2.ContributingFactor(**factor) for factor in row.contributing_factors
                ],
            ),
            occurred_at=now,
            actor=actor,
        ),
    )
    return row


async def analysis_history(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str
) -> list[Row[Any]]:
    """Every version, newest first; none before the first is written."""
    query = (
        select(analysis_versions)
        .where(analysis_versions.c.incident_id == incident_id)
        .order_by(analysis_versions.c.version.desc())
    )
    if client_id is not None:
        query = query.where(analysis_versions.c.client_id == client_id)
    return list((await connection.execute(query)).all())


async def latest_analysis(
    connection: AsyncConnection, *, client_id: str | None, incident_id: str
) -> Row[Any] | None:
    query = (
        select(analysis_versions)
        .where(analysis_versions.c.incident_id == incident_id)
        .order_by(analysis_versions.c.version.desc())
        .limit(1)
    )
    if client_id is not None:
        query = query.where(analysis_versions.c.client_id == client_id)
    return (await connection.execute(query)).first()
