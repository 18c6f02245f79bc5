"""The time report: review's totals per client, person and role, named as the gateway (which
owns clients and people) names them now, as JSON or as CSV for a billing system."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.review.v1 import review_pb2
from firebreak.database import reading
from services.gateway.models import clients, people
from services.gateway.review_schemas import TimeReport, TimeTotal
from services.gateway.schemas import PersonSummary

CSV_COLUMNS = (
    "client_id",
    "client_name",
    "person_id",
    "person_name",
    "role",
    "entries",
    "minutes",
    "hours",
)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


async def _names(
    engine: AsyncEngine, client_ids: Iterable[str], person_ids: Iterable[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The clients' and people's names now, by id."""
    async with reading(engine) as connection:
        client_rows = await connection.execute(
            select(clients.c.id, clients.c.name).where(clients.c.id.in_(set(client_ids)))
        )
        client_names = {row.id: row.name for row in client_rows}
        person_rows = await connection.execute(
            select(people.c.id, people.c.name).where(people.c.id.in_(set(person_ids)))
        )
        person_names = {row.id: row.name for row in person_rows}
    return client_names, person_names


async def time_report(
    engine: AsyncEngine,
    totals: review_pb2.TimeReport,
    *,
    start: datetime | None,
    end: datetime | None,
) -> TimeReport:
    client_names, person_names = await _names(
        engine,
        (total.client_id for total in totals.totals),
        (total.person.id for total in totals.totals),
    )
    items = [
        TimeTotal(
            client_id=total.client_id,
            client_name=client_names.get(total.client_id),
            person=PersonSummary(
                id=total.person.id, name=person_names.get(total.person.id, total.person.name)
            ),
            role=total.role,  # type: ignore[arg-type]  # review's roles
            entries=total.entries,
            minutes=total.minutes,
            hours=round(total.minutes / 60, 2),
        )
        for total in totals.totals
    ]
    items.sort(
        key=lambda item: (item.client_name or "", item.client_id, item.person.name, item.role)
    )
    return TimeReport.model_validate(
        {
            "from": start,
            "to": end,
            "items": items,
            "total_minutes": sum(item.minutes for item in items),
        }
    )


def _cell(value: object) -> str:
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def as_csv(report: TimeReport) -> str:
    """One row per client, person and role, with a header row."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for item in report.items:
        writer.writerow(
            _cell(value)
            for value in (
                item.client_id,
                item.client_name or "",
                item.person.id,
                item.person.name,
                item.role,
                item.entries,
                item.minutes,
                f"{item.hours:.2f}",
            )
        )
    return out.getvalue()
