"""Escalation policies: who is paged for which incidents, and how it escalates (issue 9, §2).

Functions take the open connection of the caller's unit of work and never commit themselves.

A policy lists `priorities` (P1..P4) and either a `client_id` (it applies to that client's
incidents of those priorities) or none (the firm's default for them). The most specific wins:
`policy_for` answers the client's own policy first, then the firm's default. Two policies of the
same scope (the same client, or both the firm's default) sharing a priority would make that
choice ambiguous, so writing one is refused (Conflict) naming the priority and the other policy.

A policy's `steps` are stored as the API takes them:
`[{"targets": [{"person_id": …} | {"schedule_id": …}], "after_minutes": n}, …]`.
The escalation engine (services/notify/escalation.py) runs them like this: step 1's targets are
notified as soon as the policy starts; a step's `after_minutes` is how long its targets have to
acknowledge before the next step's targets are notified as well (fractions allowed); after the
last step's wait the steps run again `repeat` more times, and then the firm's fallback (its
managers) is paged. `page: false` (email only) notifies step 1's targets once and stops there.

Checks split by ownership: the gateway owns clients and people, so it checks that `client_id` is
a client and that each `person_id` is an active member of staff; notify owns schedules, so it
checks here that each `schedule_id` exists. The firm's default schedule (`DEFAULT_SCHEDULE_ID`,
created by services/notify/schedules.py on first use and never deleted) is always accepted.

The shipped defaults (`SHIPPED_DEFAULTS`, inserted by `ensure_default_policies` whenever the firm
has no default policy at all) are:

- `default-p1-p2`, P1 and P2, paging: the on-call responder of the default schedule is paged at
  once (step 1, which waits 5 minutes), paged again 5 minutes later (step 2, which waits 10
  more), and again 15 minutes after the start (step 3, which waits 15 more); "escalate after 5
  and 15 minutes" means exactly those second and third pages, at +5 and +15 minutes. Nobody
  having acknowledged 30 minutes after the start, the engine pages the firm's managers.
- `default-p3-p4`, P3 and P4, not paging: one email to the default schedule's on-call
  responder, at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.database import upsert_insert
from firebreak.errors import Conflict, DomainError, InvalidArgument, NotFound, StaleVersion
from firebreak.keyset_pages import ID, read_page
from services.notify.models import escalation_policies, schedules

PRIORITIES = ("P1", "P2", "P3", "P4")
DEFAULT_SCHEDULE_ID = "default"  # the firm's default schedule (services/notify/schedules.py)
MAX_NAME = 200
MAX_STEPS = 20
MAX_TARGETS = 20
MAX_AFTER_MINUTES = 10_080.0  # a week
MAX_REPEAT = 10
# Held (PostgreSQL) by every transaction that writes policies, so that two writers cannot both
# find a priority free and both take it; SQLite's one writer (BEGIN IMMEDIATE) does the same.
WRITE_LOCK_KEY = 7_040_917

Steps = list[dict[str, Any]]


@dataclass(frozen=True)
class PolicyFields:
    """A policy as written: everything but its id, version and times."""

    name: str
    steps: Steps
    repeat: int
    priorities: list[str]
    page: bool
    client_id: str | None = None  # None: the firm's default for its priorities


@dataclass(frozen=True)
class ShippedPolicy:
    id: str
    fields: PolicyFields = field(repr=False)


def _schedule_step(after_minutes: float) -> dict[str, Any]:
    return {"targets": [{"schedule_id": DEFAULT_SCHEDULE_ID}], "after_minutes": after_minutes}


SHIPPED_DEFAULTS = (
    ShippedPolicy(
        "default-p1-p2",
        PolicyFields(
            name="Default: P1 and P2 page the on-call responder",
            # Pages at +0, +5 and +15 minutes (each step's wait is until the next one), then the
            # firm's managers at +30; see the module's docstring.
            steps=[_schedule_step(5), _schedule_step(10), _schedule_step(15)],
            repeat=0,
            priorities=["P1", "P2"],
            page=True,
        ),
    ),
    ShippedPolicy(
        "default-p3-p4",
        PolicyFields(
            name="Default: P3 and P4 email the on-call responder",
            steps=[_schedule_step(0)],
            repeat=0,
            priorities=["P3", "P4"],
            page=False,
        ),
    ),
)


class AmbiguousPolicy(Conflict):
    """Another policy of the same scope already covers one of the priorities."""

    def __init__(self, *, priority: str, other: Row[Any]) -> None:
        scope = f"client {other.client_id}" if other.client_id else "the firm's default"
        super().__init__(
            f"priority {priority} of {scope} is already covered by escalation policy "
            f"{other.id} ({other.name!r}): two policies of the same client (or two firm "
            "defaults) cannot share a priority; change or delete that one first"
        )
        self.priority = priority
        self.other_id = other.id


class StalePolicy(StaleVersion):
    """An If-Match naming a version of the policy that is no longer current."""

    def __init__(self, *, policy_id: str, expected: int, current: int) -> None:
        DomainError.__init__(
            self, f"escalation policy {policy_id} is at version {current}, not {expected}"
        )
        self.current = current


# --- Checking ---------------------------------------------------------------------------------


def checked(fields: PolicyFields) -> PolicyFields:
    """The policy with its steps in their stored shape; InvalidArgument naming the first field
    that is wrong. The gateway checks the same rules first; these keep the store sound whoever
    calls."""
    name = fields.name.strip()
    if not 1 <= len(name) <= MAX_NAME or "\x00" in name:
        raise InvalidArgument("name", f"must be 1 to {MAX_NAME} characters")
    if not 1 <= len(fields.steps) <= MAX_STEPS:
        raise InvalidArgument("steps", f"must hold 1 to {MAX_STEPS} steps")
    steps = [_checked_step(index, step) for index, step in enumerate(fields.steps)]
    if not 0 <= fields.repeat <= MAX_REPEAT:
        raise InvalidArgument("repeat", f"must be from 0 to {MAX_REPEAT}")
    if not fields.priorities:
        raise InvalidArgument("priorities", "must name at least one priority")
    for index, priority in enumerate(fields.priorities):
        if priority not in PRIORITIES:
            raise InvalidArgument(f"priorities.{index}", f"must be one of {', '.join(PRIORITIES)}")
        if priority in fields.priorities[:index]:
            raise InvalidArgument(f"priorities.{index}", f"{priority} is listed twice")
    if fields.client_id is not None and not ID.fullmatch(fields.client_id):
        raise InvalidArgument("client_id", "is not a client id")
    return PolicyFields(
        name=name,
        steps=steps,
        repeat=fields.repeat,
        priorities=sorted(fields.priorities, key=PRIORITIES.index),
        page=fields.page,
        client_id=fields.client_id,
    )


def _checked_step(index: int, step: Mapping[str, Any]) -> dict[str, Any]:
    where = f"steps.{index}"
    targets = step.get("targets") or []
    if not 1 <= len(targets) <= MAX_TARGETS:
        raise InvalidArgument(f"{where}.targets", f"must hold 1 to {MAX_TARGETS} targets")
    stored = []
    for number, target in enumerate(targets):
        person_id, schedule_id = target.get("person_id"), target.get("schedule_id")
        if bool(person_id) == bool(schedule_id):
            raise InvalidArgument(
                f"{where}.targets.{number}", "give exactly one of person_id and schedule_id"
            )
        key = "person_id" if person_id else "schedule_id"
        if not ID.fullmatch(target[key]):
            raise InvalidArgument(f"{where}.targets.{number}.{key}", "is not an id")
        stored.append({key: target[key]})
    after = step.get("after_minutes")
    if (
        isinstance(after, bool)
        or not isinstance(after, int | float)
        or not math.isfinite(after)
        or not 0 <= after <= MAX_AFTER_MINUTES
    ):
        raise InvalidArgument(
            f"{where}.after_minutes", f"must be a number from 0 to {MAX_AFTER_MINUTES:g}"
        )
    return {"targets": stored, "after_minutes": after}


async def _check_schedules(connection: AsyncConnection, steps: Steps) -> None:
    """Every schedule a step names exists (the firm's default one always does)."""
    wanted = {
        target["schedule_id"]
        for step in steps
        for target in step["targets"]
        if target.get("schedule_id", DEFAULT_SCHEDULE_ID) != DEFAULT_SCHEDULE_ID
    }
    if not wanted:
        return
    query = select(schedules.c.id).where(schedules.c.id.in_(sorted(wanted)))
    known = set((await connection.execute(query)).scalars())
    for index, step in enumerate(steps):
        for number, target in enumerate(step["targets"]):
            schedule_id = target.get("schedule_id")
            if schedule_id and schedule_id != DEFAULT_SCHEDULE_ID and schedule_id not in known:
                raise InvalidArgument(
                    f"steps.{index}.targets.{number}.schedule_id",
                    f"schedule {schedule_id} does not exist",
                )


async def _lock_for_writing(connection: AsyncConnection) -> None:
    if connection.dialect.name == "postgresql":
        await connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")


def _same_scope(client_id: str | None) -> Any:
    column = escalation_policies.c.client_id
    return column.is_(None) if client_id is None else column == client_id


async def _check_unambiguous(
    connection: AsyncConnection, fields: PolicyFields, *, except_id: str | None = None
) -> None:
    query = select(escalation_policies).where(_same_scope(fields.client_id))
    if except_id is not None:
        query = query.where(escalation_policies.c.id != except_id)
    others = (await connection.execute(query.order_by(escalation_policies.c.id))).all()
    for priority in fields.priorities:
        for other in others:
            if priority in other.priorities:
                raise AmbiguousPolicy(priority=priority, other=other)


# --- Storing ----------------------------------------------------------------------------------


async def create_policy(
    connection: AsyncConnection, fields: PolicyFields, *, policy_id: str
) -> Row[Any]:
    """Stores a new policy at version 1 (the caller names its id: a UUID for the API's)."""
    fields = checked(fields)
    await _lock_for_writing(connection)
    await _check_schedules(connection, fields.steps)
    await _check_unambiguous(connection, fields)
    now = datetime.now(UTC)
    return (
        await connection.execute(
            escalation_policies.insert()
            .values(id=policy_id, **_columns(fields), version=1, created_at=now, updated_at=now)
            .returning(*escalation_policies.c)
        )
    ).one()


def _columns(fields: PolicyFields) -> dict[str, Any]:
    return {
        "name": fields.name,
        "client_id": fields.client_id,
        "priorities": list(fields.priorities),
        "page": fields.page,
        "steps": fields.steps,
        "repeat": fields.repeat,
    }


async def get_policy(
    connection: AsyncConnection, policy_id: str, *, for_update: bool = False
) -> Row[Any]:
    query = select(escalation_policies).where(escalation_policies.c.id == policy_id)
    if for_update:
        query = query.with_for_update()
    row = (await connection.execute(query)).first()
    if row is None:
        raise NotFound(f"escalation policy {policy_id} not found")
    return row


async def list_policies(
    connection: AsyncConnection,
    *,
    client_id: str | None,
    client_ids: Sequence[str] = (),
    page_size: int,
    page_token: str,
    max_bytes: int,
    size_of: Callable[[Row[Any]], int],
) -> tuple[list[Row[Any]], str]:
    """Newest first (client_id: that client's only; else client_ids: those clients' and the
    firm's defaults), a page at a time (capped at `max_bytes` as `size_of` measures a row);
    returns the rows and the next page's token ("" on the last page)."""
    query = select(escalation_policies)
    column = escalation_policies.c.client_id
    if client_id:
        query = query.where(column == client_id)
    elif client_ids:
        query = query.where(or_(column.is_(None), column.in_(sorted(set(client_ids)))))
    return await read_page(
        connection,
        query,
        escalation_policies,
        limit=page_size,
        cursor=page_token,
        max_bytes=max_bytes,
        size_of=size_of,
    )


async def replace_policy(
    connection: AsyncConnection,
    policy_id: str,
    fields: PolicyFields,
    *,
    expected_version: int = 0,
) -> Row[Any]:
    """Replaces the policy's fields and bumps its version; StalePolicy when `expected_version`
    (0: any) is no longer current. Schedules are checked only when the steps change, so that
    renaming a policy does not fail over a schedule deleted since."""
    fields = checked(fields)
    await _lock_for_writing(connection)
    current = await get_policy(connection, policy_id, for_update=True)
    if expected_version and expected_version != current.version:
        raise StalePolicy(policy_id=policy_id, expected=expected_version, current=current.version)
    if fields.steps != current.steps:
        await _check_schedules(connection, fields.steps)
    await _check_unambiguous(connection, fields, except_id=policy_id)
    return (
        await connection.execute(
            update(escalation_policies)
            .where(escalation_policies.c.id == policy_id)
            .values(**_columns(fields), version=current.version + 1, updated_at=datetime.now(UTC))
            .returning(*escalation_policies.c)
        )
    ).one()


async def delete_policy(connection: AsyncConnection, policy_id: str) -> None:
    """Deletes the policy. Escalations already running keep the snapshot they started with."""
    await _lock_for_writing(connection)
    deleted = await connection.execute(
        delete(escalation_policies).where(escalation_policies.c.id == policy_id)
    )
    if not deleted.rowcount:
        raise NotFound(f"escalation policy {policy_id} not found")


# --- The shipped defaults, and choosing a policy ------------------------------------------------


async def _firm_default_exists(connection: AsyncConnection) -> bool:
    query = select(escalation_policies.c.id).where(_same_scope(None)).limit(1)
    return (await connection.execute(query)).first() is not None


async def ensure_default_policies(connection: AsyncConnection) -> None:
    """Inserts the shipped defaults when the firm has no default policy at all; otherwise does
    nothing (a firm that changed or replaced them keeps its own). Safe to run from every
    replica at once: the ids are fixed and the insert does nothing where one exists."""
    await _lock_for_writing(connection)
    if await _firm_default_exists(connection):
        return
    now = datetime.now(UTC)
    for shipped in SHIPPED_DEFAULTS:
        statement = upsert_insert(connection.dialect.name, escalation_policies).values(
            id=shipped.id,
            **_columns(checked(shipped.fields)),
            version=1,
            created_at=now,
            updated_at=now,
        )
        await connection.execute(statement.on_conflict_do_nothing(index_elements=["id"]))


async def policy_for(
    connection: AsyncConnection, *, client_id: str, priority: str
) -> Row[Any] | None:
    """The policy for an incident of `client_id` at `priority`: the client's own, else the
    firm's default; None when neither covers the priority. A firm with no default policy at all
    gets the shipped ones first (so this writes, in the caller's transaction, on a notify that
    has not yet served a policy request since its database was made)."""
    table = escalation_policies
    query = select(table).where(or_(table.c.client_id == client_id, table.c.client_id.is_(None)))
    rows = (await connection.execute(query)).all()
    covering = [row for row in rows if priority in row.priorities]
    for row in covering:
        if row.client_id == client_id:
            return row
    if covering:
        return covering[0]
    if any(row.client_id is None for row in rows) or priority not in PRIORITIES:
        return None
    await ensure_default_policies(connection)
    return next(
        (
            row
            for row in (await connection.execute(select(table).where(_same_scope(None)))).all()
            if priority in row.priorities
        ),
        None,
    )


def step_dicts(steps: Sequence[Any]) -> Steps:
    """Steps from their protobuf messages (EscalationStep), in the shape `checked` takes."""
    return [
        {
            "targets": [
                {"person_id": target.person_id, "schedule_id": target.schedule_id}
                for target in step.targets
            ],
            "after_minutes": step.after_minutes,
        }
        for step in steps
    ]
