"""On-call schedules and who is on call (issue 9, section 1).

Notify keeps the schedules and answers who is on call; the gateway checks who may, and that
everyone a schedule names is the firm's active staff (people are the gateway's). A schedule's
ETag is its version; a PATCH with a stale If-Match is 412.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal, cast

import grpc
from fastapi import APIRouter, Header, Query, Response
from sqlalchemy import select

from firebreak.api.notify.v1 import notify_pb2
from firebreak.database import reading
from firebreak.errors import InvalidArgument
from firebreak.events import from_timestamp, to_timestamp
from firebreak.grpc_server import FIELD_METADATA_KEY, VERSION_METADATA_KEY
from services.gateway import audit, schemas
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import OnCallManager, OnCallReader, ScheduleId, Services
from services.gateway.incident_view import etag, parse_if_match
from services.gateway.models import people
from services.gateway.people import STAFF_ROLES
from services.gateway.permissions import Principal
from services.gateway.problems import Problem

router = APIRouter(prefix="/v1/schedules", tags=["schedules"])

HOURS = "hours"  # notify's Layer.rotation for {"hours": N}
# A PATCH without If-Match merges into the schedule as read; when someone else changes it in
# between, it reads and merges again, this many times in all, before giving up with 412.
MERGE_ATTEMPTS = 3

IfMatch = Annotated[
    str | None,
    Header(description="The ETag of the schedule as the caller last saw it; stale: 412."),
]


# --- between the API's bodies and notify's messages ---------------------------------------------


def _layer_message(layer: schemas.ScheduleLayer) -> notify_pb2.Layer:
    rotation = layer.rotation
    message = notify_pb2.Layer(
        participants=layer.participants,
        rotation=HOURS if isinstance(rotation, schemas.HoursRotation) else rotation,
        hours=rotation.hours if isinstance(rotation, schemas.HoursRotation) else 0,
        handoff_time=layer.handoff_time,
    )
    message.starts_at.CopyFrom(to_timestamp(layer.starts_at))
    return message


def _override_message(override: schemas.ScheduleOverride) -> notify_pb2.Override:
    message = notify_pb2.Override(person_id=override.person_id)
    message.starts_at.CopyFrom(to_timestamp(override.from_))
    message.ends_at.CopyFrom(to_timestamp(override.to))
    return message


def _rotation(layer: notify_pb2.Layer) -> Literal["daily", "weekly"] | schemas.HoursRotation:
    if layer.rotation == HOURS:
        return schemas.HoursRotation(hours=layer.hours)
    return cast(Literal["daily", "weekly"], layer.rotation)  # notify checked it


def schedule_body(schedule: notify_pb2.Schedule) -> schemas.Schedule:
    return schemas.Schedule(
        id=schedule.id,
        name=schedule.name,
        timezone=schedule.timezone,
        layers=[
            schemas.ScheduleLayer(
                participants=list(layer.participants),
                rotation=_rotation(layer),
                handoff_time=layer.handoff_time,
                starts_at=from_timestamp(layer.starts_at),
            )
            for layer in schedule.layers
        ],
        overrides=[
            schemas.ScheduleOverride.model_validate(
                {
                    "person_id": override.person_id,
                    "from": from_timestamp(override.starts_at),
                    "to": from_timestamp(override.ends_at),
                }
            )
            for override in schedule.overrides
        ],
        version=schedule.version,
        created_at=from_timestamp(schedule.created_at),
        updated_at=from_timestamp(schedule.updated_at),
    )


# --- the people a schedule names ----------------------------------------------------------------


async def check_people(
    services: Backends,
    layers: list[schemas.ScheduleLayer],
    overrides: list[schemas.ScheduleOverride],
) -> None:
    """Everyone on call must be the firm's active staff; InvalidArgument naming the first
    field that is not (`layers.N.participants.M`, `overrides.N.person_id`)."""
    named = [
        (f"layers.{index}.participants.{position}", person_id)
        for index, layer in enumerate(layers)
        for position, person_id in enumerate(layer.participants)
    ] + [(f"overrides.{index}.person_id", item.person_id) for index, item in enumerate(overrides)]
    if not named:
        return
    async with reading(services.engine) as connection:
        rows = await connection.execute(
            select(people.c.id, people.c.role, people.c.active).where(
                people.c.id.in_(sorted({person_id for _, person_id in named}))
            )
        )
        found = {row.id: row for row in rows}
    for field, person_id in named:
        person = found.get(person_id)
        if person is None:
            raise InvalidArgument(field, f"person {person_id} does not exist")
        if person.role not in STAFF_ROLES:
            raise InvalidArgument(
                field,
                f"person {person_id} is a client's contact: only the firm's staff (responders, "
                "managers, admins) go on call",
            )
        if not person.active:
            raise InvalidArgument(field, f"person {person_id} is deactivated")


async def _name_of(services: Backends, person_id: str) -> str | None:
    async with reading(services.engine) as connection:
        name: str | None = (
            await connection.execute(select(people.c.name).where(people.c.id == person_id))
        ).scalar()
    return name


@contextmanager
def fields_named() -> Iterator[None]:
    """Notify's refusal of a field as the gateway's own: a 422 whose detail names the field
    ("layers.0.handoff_time: must be ..."), as for a body that fails validation here."""
    try:
        yield
    except grpc.aio.AioRpcError as error:
        field = dict(error.trailing_metadata() or ()).get(FIELD_METADATA_KEY)
        if error.code() == grpc.StatusCode.INVALID_ARGUMENT and field:
            raise InvalidArgument(field, error.details() or "is invalid") from error
        raise


async def _audit(
    services: Backends, caller: Principal, action: str, schedule: notify_pb2.Schedule
) -> None:
    # Notify keeps the schedule: recorded once its call has succeeded (audit.record_after).
    await audit.record_after(
        services.engine,
        actor=caller,
        action=action,
        target_kind="schedule",
        target_id=schedule.id,
        summary={"name": schedule.name, "version": schedule.version},
    )


def _stale(error: grpc.aio.AioRpcError) -> Problem:
    current = dict(error.trailing_metadata() or ()).get(VERSION_METADATA_KEY)
    return Problem(
        412,
        f"If-Match is stale: {error.details()}. Read the schedule again and retry.",
        headers={"ETag": etag(int(current))} if current else None,
    )


# --- routes -------------------------------------------------------------------------------------


@router.post("", status_code=201, response_model=schemas.Schedule)
async def create_schedule(
    caller: OnCallManager, body: schemas.NewSchedule, services: Services, response: Response
) -> schemas.Schedule:
    """Creates a schedule. Layers stack bottom to top (the last with someone on call wins);
    overrides win over every layer."""
    await check_people(services, body.layers, body.overrides)
    with fields_named():
        created = await services.schedules.CreateSchedule(
            notify_pb2.ScheduleInput(
                name=body.name,
                timezone=body.timezone,
                layers=[_layer_message(layer) for layer in body.layers],
                overrides=[_override_message(override) for override in body.overrides],
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    await _audit(services, caller, "schedule.created", created)
    response.headers["ETag"] = etag(created.version)
    return schedule_body(created)


@router.get("", response_model=schemas.SchedulePage)
async def list_schedules(
    _: OnCallReader,
    services: Services,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.SchedulePage:
    """Schedules, newest first; pass next_cursor back for the next page."""
    with fields_named():
        page = await services.schedules.ListSchedules(
            notify_pb2.ListSchedulesRequest(page_size=limit, page_token=cursor or ""),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    return schemas.SchedulePage(
        items=[schedule_body(item) for item in page.schedules],
        next_cursor=page.next_page_token or None,
    )


@router.get("/{schedule_id}", response_model=schemas.Schedule)
async def get_schedule(
    _: OnCallReader, schedule_id: ScheduleId, services: Services, response: Response
) -> schemas.Schedule:
    """The schedule; its ETag is the version an If-Match names. `default` is the firm's
    default schedule, which the shipped escalation policies page."""
    schedule = await services.schedules.GetSchedule(
        notify_pb2.ScheduleRef(id=schedule_id), timeout=RPC_TIMEOUT_SECONDS
    )
    response.headers["ETag"] = etag(schedule.version)
    return schedule_body(schedule)


@router.patch("/{schedule_id}", response_model=schemas.Schedule)
async def update_schedule(
    caller: OnCallManager,
    schedule_id: ScheduleId,
    body: schemas.ScheduleChanges,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> schemas.Schedule:
    """The fields given replace the schedule's (layers and overrides whole)."""
    expected = parse_if_match(if_match)
    await check_people(services, body.layers or [], body.overrides or [])
    ref = notify_pb2.ScheduleRef(id=schedule_id)
    for attempt in range(1, MERGE_ATTEMPTS + 1):
        current = await services.schedules.GetSchedule(ref, timeout=RPC_TIMEOUT_SECONDS)
        if not body.model_fields_set:  # nothing to change: no new version
            if expected and expected != current.version:
                raise Problem(
                    412,
                    f"If-Match is stale: schedule {schedule_id} is at version "
                    f"{current.version}, not {expected}. Read the schedule again and retry.",
                    headers={"ETag": etag(current.version)},
                )
            response.headers["ETag"] = etag(current.version)
            return schedule_body(current)
        request = notify_pb2.ScheduleInput(
            id=schedule_id,
            name=current.name if body.name is None else body.name,
            timezone=current.timezone if body.timezone is None else body.timezone,
            layers=current.layers
            if body.layers is None
            else [_layer_message(layer) for layer in body.layers],
            overrides=current.overrides
            if body.overrides is None
            else [_override_message(override) for override in body.overrides],
            # Without If-Match: the version merged into, so a change in between is not lost.
            expected_version=expected or current.version,
        )
        try:
            with fields_named():
                changed = await services.schedules.ReplaceSchedule(
                    request, timeout=RPC_TIMEOUT_SECONDS
                )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.ABORTED:
                raise
            if expected or attempt == MERGE_ATTEMPTS:
                raise _stale(error) from error
            continue
        await _audit(services, caller, "schedule.changed", changed)
        response.headers["ETag"] = etag(changed.version)
        return schedule_body(changed)
    raise AssertionError("unreachable: the last attempt returns or raises")


@router.delete("/{schedule_id}", status_code=204, response_class=Response)
async def delete_schedule(
    caller: OnCallManager, schedule_id: ScheduleId, services: Services
) -> Response:
    """Deletes a schedule: refused (409) for the default one, and while an escalation policy
    pages it (the answer names them)."""
    await services.schedules.DeleteSchedule(
        notify_pb2.ScheduleRef(id=schedule_id), timeout=RPC_TIMEOUT_SECONDS
    )
    await audit.record_after(
        services.engine,
        actor=caller,
        action="schedule.deleted",
        target_kind="schedule",
        target_id=schedule_id,
        summary={},
    )
    return Response(status_code=204)


@router.get("/{schedule_id}/on-call", response_model=schemas.OnCall)
async def who_is_on_call(
    _: OnCallReader,
    schedule_id: ScheduleId,
    services: Services,
    at: Annotated[
        schemas.Instant | None,
        Query(description="ISO 8601 with an offset (Z, +01:00); absent: now."),
    ] = None,
) -> schemas.OnCall:
    """Who is on call at `at`: from an override or a layer, and until when."""
    request = notify_pb2.OnCallRequest(schedule_id=schedule_id)
    if at is not None:
        request.at.CopyFrom(to_timestamp(at))
    with fields_named():
        answer = await services.schedules.WhoIsOnCall(request, timeout=RPC_TIMEOUT_SECONDS)
    person = None
    if answer.person_id:
        name = await _name_of(services, answer.person_id)
        person = schemas.OnCallPerson(id=answer.person_id, name=name)
    return schemas.OnCall(
        schedule_id=answer.schedule_id,
        at=from_timestamp(answer.at),
        person=person,
        source=answer.source or None,
        until=from_timestamp(answer.until) if answer.HasField("until") else None,
    )
