"""Notify's gRPC API for people's contact methods (issue 9, §3). The gateway has checked that
the person exists and that the caller may; notify validates the targets and keeps them."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.api.notify.v1 import notify_pb2, notify_pb2_grpc
from firebreak.database import reading
from firebreak.errors import InvalidArgument
from firebreak.events import to_timestamp
from services.notify import contact_methods
from services.notify.contact_methods import Method


def method_message(person_id: str, method: Method) -> notify_pb2.ContactMethod:
    message = notify_pb2.ContactMethod(
        id=method.id,
        person_id=person_id,
        kind=method.kind,
        address=method.address,
        has_secret=method.has_secret,
        implicit=method.implicit,
    )
    if method.created_at is not None:
        message.created_at.CopyFrom(to_timestamp(method.created_at))
    return message


def _person_id(value: str) -> str:
    if not value:
        raise InvalidArgument("person_id", "is required")
    return value


class ContactMethodServicer(notify_pb2_grpc.ContactMethodServiceServicer):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def AddContactMethod(
        self, request: notify_pb2.ContactMethodInput, context: grpc.aio.ServicerContext
    ) -> notify_pb2.ContactMethod:
        person_id = _person_id(request.person_id)
        async with self._engine.begin() as connection:
            method = await contact_methods.add_method(
                connection,
                person_id=person_id,
                kind=request.kind,
                address=request.address,
                secret=request.secret,
                now=datetime.now(UTC),
            )
        return method_message(person_id, method)

    async def ListContactMethods(
        self, request: notify_pb2.ContactMethodsRequest, context: grpc.aio.ServicerContext
    ) -> notify_pb2.ContactMethods:
        person_id = _person_id(request.person_id)
        async with reading(self._engine) as connection:
            methods = await contact_methods.list_methods(connection, person_id)
        return notify_pb2.ContactMethods(
            methods=[method_message(person_id, method) for method in methods]
        )

    async def DeleteContactMethod(
        self, request: notify_pb2.ContactMethodRef, context: grpc.aio.ServicerContext
    ) -> notify_pb2.ContactMethodRef:
        person_id = _person_id(request.person_id)
        async with self._engine.begin() as connection:
            await contact_methods.delete_method(
                connection, person_id=person_id, method_id=request.id
            )
        return notify_pb2.ContactMethodRef(person_id=person_id, id=request.id)
