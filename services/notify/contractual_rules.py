"""Each client's contractual deadline rules (issue 9, §5), e.g. "inform the client within 1 hour
of a P1 being declared": which priorities a rule applies to, how long after triage it is due,
and whether a client-audience status update meets it or someone records it met.

A client's rules are set whole (PUT at the edge) and kept as one row; deadlines already started
keep the rule as it was when they started.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.database import upsert_insert
from firebreak.errors import InvalidArgument
from services.notify.models import client_deadline_rules

MANUAL, CLIENT_UPDATE = "manual", "client_update"
MET_BY = (CLIENT_UPDATE, MANUAL)
PRIORITIES = ("P1", "P2", "P3", "P4")
MAX_RULES = 50
MAX_WITHIN_MINUTES = 366 * 24 * 60  # a year


@dataclass(frozen=True)
class Rules:
    client_id: str
    rules: list[dict[str, Any]]  # {name, description, priorities, within_minutes, met_by}
    updated_at: datetime | None  # None: never set


def checked(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rules as stored; an InvalidArgument naming the field (rules.0.name, …) otherwise."""
    if len(rules) > MAX_RULES:
        raise InvalidArgument("rules", f"at most {MAX_RULES} rules per client")
    names: set[str] = set()
    result = []
    for index, rule in enumerate(rules):
        field = f"rules.{index}"
        name = rule["name"].strip()
        if not 1 <= len(name) <= 100:
            raise InvalidArgument(f"{field}.name", "must be 1 to 100 characters")
        if name in names:
            raise InvalidArgument(f"{field}.name", f"{name!r} is used by another rule")
        names.add(name)
        description = rule["description"].strip()
        if len(description) > 1000:
            raise InvalidArgument(f"{field}.description", "must be at most 1000 characters")
        priorities = list(rule["priorities"])
        if not priorities or any(p not in PRIORITIES for p in priorities):
            raise InvalidArgument(f"{field}.priorities", f"must be some of {', '.join(PRIORITIES)}")
        if len(set(priorities)) != len(priorities):
            raise InvalidArgument(f"{field}.priorities", "lists a priority twice")
        within = float(rule["within_minutes"])
        if not (math.isfinite(within) and 0 < within <= MAX_WITHIN_MINUTES):
            raise InvalidArgument(
                f"{field}.within_minutes", f"must be more than 0 and at most {MAX_WITHIN_MINUTES}"
            )
        if rule["met_by"] not in MET_BY:
            raise InvalidArgument(f"{field}.met_by", f"must be one of {', '.join(MET_BY)}")
        result.append(
            {
                "name": name,
                "description": description,
                "priorities": priorities,
                "within_minutes": within,
                "met_by": rule["met_by"],
            }
        )
    return result


async def get_rules(connection: AsyncConnection, client_id: str) -> Rules:
    row = (
        await connection.execute(
            select(client_deadline_rules).where(client_deadline_rules.c.client_id == client_id)
        )
    ).first()
    if row is None:
        return Rules(client_id, [], None)
    return Rules(client_id, list(row.rules), row.updated_at)


async def rules_of(connection: AsyncConnection, client_id: str) -> list[dict[str, Any]]:
    return (await get_rules(connection, client_id)).rules


async def replace_rules(
    connection: AsyncConnection, *, client_id: str, rules: list[dict[str, Any]], now: datetime
) -> Rules:
    """Sets the client's rules whole (an empty list: none)."""
    stored = checked(rules)
    insert = upsert_insert(connection.dialect.name, client_deadline_rules).values(
        client_id=client_id, rules=stored, updated_at=now
    )
    await connection.execute(
        insert.on_conflict_do_update(
            index_elements=[client_deadline_rules.c.client_id],
            set_={"rules": stored, "updated_at": now},
        )
    )
    return Rules(client_id, stored, now)
