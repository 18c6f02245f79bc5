"""Notify's gRPC API for on-call schedules: keeping them, and who is on call when."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import grpc
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.notify.v1 import notify_pb2, notify_pb2_grpc
from firebreak.database import reading
from firebreak.errors import InvalidArgument
from firebreak.events import from_timestamp, to_timestamp
from services.notify import schedules

HOURS = "hours"  # Layer.rotation for {"hours": N} at the edge, N in Layer.hours


class ScheduleServicer(notify_pb2_grpc.ScheduleServiceServicer):
    def __init__(self, engine: AsyncEngine, *, page_max_bytes: int) -> None:
        self._engine = engine
        self._page_max_bytes = page_max_bytes
        self._default_exists = False

    async def _ensure_default(self) -> None:
        """The default schedule exists from the first call on (once per process: afterwards
        no write for it)."""
        if self._default_exists:
            return
        async with self._engine.begin() as connection:
            await schedules.ensure_default(connection)
        self._default_exists = True

    async def CreateSchedule(
        self, request: notify_pb2.ScheduleInput, context: grpc.aio.ServicerContext
    ) -> notify_pb2.Schedule:
        if request.id:
            raise InvalidArgument("id", "is chosen by the service; leave it empty to create")
        await self._ensure_default()
        async with self._engine.begin() as connection:
            row = await schedules.create_schedule(
                connection,
                name=request.name,
                timezone=request.timezone,
                definition=definition_of(request),
            )
        return schedule_message(row)

    async def GetSchedule(
        self, request: notify_pb2.ScheduleRef, context: grpc.aio.ServicerContext
    ) -> notify_pb2.Schedule:
        await self._ensure_default()
        async with reading(self._engine) as connection:
            row = await schedules.get_schedule(connection, request.id)
        return schedule_message(row)

    async def ListSchedules(
        self, request: notify_pb2.ListSchedulesRequest, context: grpc.aio.ServicerContext
    ) -> notify_pb2.ListSchedulesResponse:
        await self._ensure_default()
        async with reading(self._engine) as connection:
            rows, token = await schedules.list_schedules(
                connection,
                page_size=request.page_size,
                page_token=request.page_token,
                max_bytes=self._page_max_bytes,
                size_of=lambda row: schedule_message(row).ByteSize(),
            )
        return notify_pb2.ListSchedulesResponse(
            schedules=[schedule_message(row) for row in rows], next_page_token=token
        )

    async def ReplaceSchedule(
        self, request: notify_pb2.ScheduleInput, context: grpc.aio.ServicerContext
    ) -> notify_pb2.Schedule:
        await self._ensure_default()
        async with self._engine.begin() as connection:
            row = await schedules.replace_schedule(
                connection,
                schedule_id=request.id,
                name=request.name,
                timezone=request.timezone,
                definition=definition_of(request),
                expected_version=request.expected_version,
            )
        return schedule_message(row)

    async def DeleteSchedule(
        self, request: notify_pb2.ScheduleRef, context: grpc.aio.ServicerContext
    ) -> notify_pb2.ScheduleRef:
        await self._ensure_default()
        async with self._engine.begin() as connection:
            await schedules.delete_schedule(connection, request.id)
        return notify_pb2.ScheduleRef(id=request.id)

    async def WhoIsOnCall(
        self, request: notify_pb2.OnCallRequest, context: grpc.aio.ServicerContext
    ) -> notify_pb2.OnCall:
        await self._ensure_default()
        at = from_timestamp(request.at) if request.HasField("at") else None
        async with reading(self._engine) as connection:
            answer = await schedules.who_is_on_call(
                connection, schedule_id=request.schedule_id, at=at
            )
        reply = notify_pb2.OnCall(
            schedule_id=answer.schedule_id,
            at=to_timestamp(answer.at),
            person_id=answer.person_id or "",
            source=answer.source or "",
        )
        if answer.until is not None:
            reply.until.CopyFrom(to_timestamp(answer.until))
        return reply


def _iso(message: Any, field: str) -> str | None:
    """A Timestamp field as ISO 8601 in UTC, as the definition stores it; None when unset (the
    schedule's check then names the field as required)."""
    return from_timestamp(getattr(message, field)).isoformat() if message.HasField(field) else None


def definition_of(request: notify_pb2.ScheduleInput) -> dict[str, Any]:
    """The layers and overrides as the API takes them (what the schedules table stores)."""
    return {
        "layers": [
            {
                "participants": list(layer.participants),
                "rotation": {HOURS: layer.hours} if layer.rotation == HOURS else layer.rotation,
                "handoff_time": layer.handoff_time,
                "starts_at": _iso(layer, "starts_at"),
            }
            for layer in request.layers
        ],
        "overrides": [
            {
                "person_id": override.person_id,
                "from": _iso(override, "starts_at"),
                "to": _iso(override, "ends_at"),
            }
            for override in request.overrides
        ],
    }


def _timestamp(text: str) -> Any:
    return to_timestamp(datetime.fromisoformat(text))


def _layer_message(layer: Mapping[str, Any]) -> notify_pb2.Layer:
    rotation = layer["rotation"]
    message = notify_pb2.Layer(
        participants=layer["participants"],
        rotation=HOURS if isinstance(rotation, Mapping) else rotation,
        hours=rotation[HOURS] if isinstance(rotation, Mapping) else 0,
        handoff_time=layer["handoff_time"],
    )
    message.starts_at.CopyFrom(_timestamp(layer["starts_at"]))
    return message


def _override_message(override: Mapping[str, Any]) -> notify_pb2.Override:
    message = notify_pb2.Override(person_id=override["person_id"])
    message.starts_at.CopyFrom(_timestamp(override["from"]))
    message.ends_at.CopyFrom(_timestamp(override["to"]))
    return message


def schedule_message(row: Row[Any]) -> notify_pb2.Schedule:
    return notify_pb2.Schedule(
        id=row.id,
        name=row.name,
        timezone=row.timezone,
        layers=[_layer_message(layer) for layer in schedules.layers_of(row.definition)],
        overrides=[
            _override_message(override) for override in schedules.overrides_of(row.definition)
        ],
        version=row.version,
        created_at=to_timestamp(row.created_at),
        updated_at=to_timestamp(row.updated_at),
    )
