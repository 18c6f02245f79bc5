"""Who a step of an escalation pages: its people, and whoever is on call on its schedules, as
notify's copy of people knows them (active people with an email address)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notify import oncall
from services.notify.models import people, schedules
from services.notify.schedules import schedule_of


@dataclass(frozen=True)
class Reachable:
    id: str
    name: str
    email: str


@dataclass(frozen=True)
class StepPeople:
    reachable: list[Reachable]
    # Named by the step but not paged: deactivated, or unknown to notify's copy of people.
    # Said on the timeline, so that a page that never went out is not a silence.
    not_paged: list[tuple[str, str]]  # (id, name or "")


async def people_of(
    connection: AsyncConnection, targets: Iterable[Mapping[str, str]], *, at: datetime
) -> StepPeople:
    """The step's people: named ones, and each schedule's on-call person at `at`; each once."""
    ids: list[str] = []
    for target in targets:
        person_id = target.get("person_id") or await _on_call(
            connection, target["schedule_id"], at=at
        )
        if person_id and person_id not in ids:
            ids.append(person_id)
    reachable = await _reachable(connection, ids)
    paged = {person.id for person in reachable}
    missing = [person_id for person_id in ids if person_id not in paged]
    names: dict[str, str] = {}
    if missing:
        rows = await connection.execute(
            select(people.c.id, people.c.name).where(people.c.id.in_(missing))
        )
        names = {row.id: row.name for row in rows}
    return StepPeople(reachable, [(person_id, names.get(person_id, "")) for person_id in missing])


async def fallback_people(connection: AsyncConnection) -> list[Reachable]:
    """The firm's fallback when a policy has run out: its active managers."""
    query = select(people.c.id).where(
        people.c.role == "manager", people.c.active.is_(True), people.c.client_id == "operator"
    )
    return await _reachable(connection, list((await connection.execute(query)).scalars()))


async def _on_call(connection: AsyncConnection, schedule_id: str, *, at: datetime) -> str | None:
    row = (await connection.execute(select(schedules).where(schedules.c.id == schedule_id))).first()
    if row is None:  # deleted since the policy named it: nobody to page there
        return None
    return oncall.on_call(schedule_of(row), at)


async def _reachable(connection: AsyncConnection, ids: list[str]) -> list[Reachable]:
    if not ids:
        return []
    rows = await connection.execute(
        select(people.c.id, people.c.name, people.c.email).where(
            people.c.id.in_(ids), people.c.active.is_(True)
        )
    )
    found = {row.id: Reachable(row.id, row.name, row.email) for row in rows}
    return [found[person_id] for person_id in ids if person_id in found]
