"""On-call schedules: storing them, and answering who is on call (issue 9, section 1).

Functions take the open connection of the caller's unit of work and never commit themselves.

A schedule is stored as the API takes it: its layers and overrides in `definition`, times as ISO
8601 text, so that what `oncall.parse_schedule` checked is exactly what is read back. Checking
that the people in it are the firm's active staff is the gateway's: it owns people.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.database import upsert_insert
from firebreak.errors import Conflict, DomainError, InvalidArgument, NotFound, StaleVersion
from firebreak.keyset_pages import read_page
from services.notify import oncall
from services.notify.models import escalation_policies, schedules

# The firm's default schedule, which the shipped escalation policies page: created empty on
# first use, edited like any other, never deleted.
DEFAULT_ID = "default"
DEFAULT_NAME = "Default on-call"
DEFAULT_TIMEZONE = "UTC"


class StaleSchedule(StaleVersion):
    """An If-Match that names a version of the schedule that is no longer current."""

    def __init__(self, *, schedule_id: str, expected: int, current: int) -> None:
        DomainError.__init__(
            self, f"schedule {schedule_id} is at version {current}, not {expected}"
        )
        self.current = current


@dataclass(frozen=True)
class Answer:
    """Who is on call at `at`: a person's id or None, from where, and until when (None: for as
    long as the schedule says, no change ahead)."""

    schedule_id: str
    at: datetime
    person_id: str | None
    source: str | None  # "override", "layer N" (N: the layer's index in layers), None: nobody
    until: datetime | None


def checked(*, name: str, timezone: str, definition: Mapping[str, Any]) -> oncall.Schedule:
    """The schedule the body describes; InvalidArgument naming the field otherwise."""
    try:
        return oncall.parse_schedule({"name": name, "timezone": timezone, **definition})
    except oncall.ScheduleError as error:
        raise InvalidArgument(error.field, error.message) from error


async def ensure_default(connection: AsyncConnection) -> None:
    """Creates the firm's default schedule, empty, unless it exists (replicas may race: the
    insert does nothing when another got there first)."""
    now = datetime.now(UTC)
    statement = upsert_insert(connection.dialect.name, schedules).values(
        id=DEFAULT_ID,
        name=DEFAULT_NAME,
        timezone=DEFAULT_TIMEZONE,
        definition={"layers": [], "overrides": []},
        version=1,
        created_at=now,
        updated_at=now,
    )
    await connection.execute(statement.on_conflict_do_nothing(index_elements=["id"]))


async def create_schedule(
    connection: AsyncConnection, *, name: str, timezone: str, definition: Mapping[str, Any]
) -> Row[Any]:
    checked(name=name, timezone=timezone, definition=definition)
    now = datetime.now(UTC)
    row = (
        await connection.execute(
            schedules.insert()
            .values(
                id=str(uuid.uuid4()),
                name=name,
                timezone=timezone,
                definition=dict(definition),
                version=1,
                created_at=now,
                updated_at=now,
            )
            .returning(*schedules.c)
        )
    ).one()
    return row


async def get_schedule(
    connection: AsyncConnection, schedule_id: str, *, for_update: bool = False
) -> Row[Any]:
    query = select(schedules).where(schedules.c.id == schedule_id)
    if for_update:
        query = query.with_for_update()
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound(f"schedule {schedule_id} not found")
    return row


async def list_schedules(
    connection: AsyncConnection,
    *,
    page_size: int,
    page_token: str,
    max_bytes: int,
    size_of: Callable[[Row[Any]], int],
) -> tuple[list[Row[Any]], str]:
    """Newest first, one page at a time (capped at `max_bytes` as `size_of` measures a row);
    returns the rows and the next page's token ("" on the last page)."""
    return await read_page(
        connection,
        select(schedules),
        schedules,
        limit=page_size,
        cursor=page_token,
        max_bytes=max_bytes,
        size_of=size_of,
    )


async def replace_schedule(
    connection: AsyncConnection,
    *,
    schedule_id: str,
    name: str,
    timezone: str,
    definition: Mapping[str, Any],
    expected_version: int,
) -> Row[Any]:
    """Replaces the schedule whole (the gateway merges a PATCH into it). `expected_version` 0
    takes any version; another is StaleSchedule unless it is the current one."""
    checked(name=name, timezone=timezone, definition=definition)
    condition = schedules.c.id == schedule_id
    if expected_version:
        condition = and_(condition, schedules.c.version == expected_version)
    row = (
        await connection.execute(
            update(schedules)
            .where(condition)
            .values(
                name=name,
                timezone=timezone,
                definition=dict(definition),
                version=schedules.c.version + 1,
                updated_at=datetime.now(UTC),
            )
            .returning(*schedules.c)
        )
    ).first()
    if row is None:
        current = await get_schedule(connection, schedule_id)  # NotFound when there is none
        raise StaleSchedule(
            schedule_id=schedule_id, expected=expected_version, current=current.version
        )
    return row


async def policies_targeting(
    connection: AsyncConnection, schedule_id: str
) -> list[tuple[str, str]]:
    """(id, name) of the escalation policies with a step that pages the schedule. Steps are
    JSON, read here rather than queried in SQL: the two databases query JSON differently, and
    a firm has tens of policies, not millions."""
    rows = await connection.execute(
        select(
            escalation_policies.c.id, escalation_policies.c.name, escalation_policies.c.steps
        ).order_by(escalation_policies.c.name, escalation_policies.c.id)
    )
    return [
        (row.id, row.name)
        for row in rows
        if any(
            isinstance(target, Mapping) and target.get("schedule_id") == schedule_id
            for step in row.steps or ()
            if isinstance(step, Mapping)
            for target in step.get("targets") or ()
        )
    ]


async def delete_schedule(connection: AsyncConnection, schedule_id: str) -> None:
    """Deletes the schedule; Conflict for the default one and while a policy pages it."""
    if schedule_id == DEFAULT_ID:
        raise Conflict(
            "the default schedule cannot be deleted: the firm's escalation policies page it; "
            "change its layers instead"
        )
    await get_schedule(connection, schedule_id, for_update=True)
    targeting = await policies_targeting(connection, schedule_id)
    if targeting:
        named = ", ".join(f"{name} ({policy_id})" for policy_id, name in targeting)
        raise Conflict(
            f"schedule {schedule_id} is paged by escalation policies {named}; take it out of "
            "them first"
        )
    await connection.execute(delete(schedules).where(schedules.c.id == schedule_id))


def schedule_of(row: Row[Any]) -> oncall.Schedule:
    """The stored schedule, for computing who is on call. An empty schedule (the default one
    before anyone set it up) has no layers: nobody is on call."""
    return checked(name=row.name, timezone=row.timezone, definition=row.definition)


async def who_is_on_call(
    connection: AsyncConnection, *, schedule_id: str, at: datetime | None
) -> Answer:
    row = await get_schedule(connection, schedule_id)
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    if not oncall.EARLIEST_YEAR <= moment.year <= oncall.LATEST_YEAR:
        raise InvalidArgument(
            "at", f"must be between the years {oncall.EARLIEST_YEAR} and {oncall.LATEST_YEAR}"
        )
    schedule = schedule_of(row)
    person_id = oncall.on_call(schedule, moment)
    changes = oncall.next_handoffs(schedule, moment, 1)
    until = changes[0][0] if changes else None
    return Answer(
        schedule_id=schedule_id,
        at=moment,
        person_id=person_id,
        source=_source(schedule, moment) if person_id is not None else None,
        until=until,
    )


def _source(schedule: oncall.Schedule, at: datetime) -> str:
    """Where the person on call at `at` comes from: an override (they win), else the topmost
    layer with someone on call (oncall's rule)."""
    only_overrides = oncall.Schedule(
        timezone=schedule.timezone, layers=(), overrides=schedule.overrides
    )
    if oncall.on_call(only_overrides, at) is not None:
        return "override"
    for index in reversed(range(len(schedule.layers))):
        if oncall.shift_at(schedule.layers[index], schedule.timezone, at) is not None:
            return f"layer {index}"
    raise AssertionError("someone is on call, from neither an override nor a layer")


def layers_of(definition: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    layers: Sequence[Mapping[str, Any]] = definition.get("layers") or ()
    return layers


def overrides_of(definition: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    overrides: Sequence[Mapping[str, Any]] = definition.get("overrides") or ()
    return overrides
