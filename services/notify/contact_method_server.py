"""Notify's gRPC API for people's contact methods (issue 9, §3). The gateway has checked that
the person exists and that the caller may; notify validates the targets and keeps them, and
answers only for a person of a client the call's scope token covers (as far as its copy of
people knows them: a person it has not heard of yet has nothing here to protect)."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.api.notify.v1 import notify_pb2, notify_pb2_grpc
from firebreak.database import reading
from firebreak.errors import InvalidArgument, NotFound
from firebreak.events import to_timestamp
from firebreak.grpc_scope import serving_scope
from services.notify import contact_methods
from services.notify.contact_methods import Method
from services.notify.models import people


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


async def _within_scope(connection: AsyncConnection, person_id: str) -> None:
    """NotFound for a person of a client beyond the call's scope token, as for no person."""
    query = select(people.c.client_id).where(people.c.id == person_id)
    client_id = (await connection.execute(query)).scalar()
    if client_id is not None and not serving_scope.get().covers(client_id):
        raise NotFound(f"person {person_id} not found")


class ContactMethodServicer(notify_pb2_grpc.ContactMethodServiceServicer):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def AddContactMethod(
        self, request: notify_pb2.ContactMethodInput, context: grpc.aio.ServicerContext
    ) -> notify_pb2.ContactMethod:
        person_id = _person_id(request.person_id)
        async with self._engine.begin() as connection:
            await _within_scope(connection, person_id)
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
            await _within_scope(connection, person_id)
            methods = await contact_methods.list_methods(connection, person_id)
        return notify_pb2.ContactMethods(
            methods=[method_message(person_id, method) for method in methods]
        )

    async def DeleteContactMethod(
        self, request: notify_pb2.ContactMethodRef, context: grpc.aio.ServicerContext
    ) -> notify_pb2.ContactMethodRef:
        person_id = _person_id(request.person_id)
        async with self._engine.begin() as connection:
            await _within_scope(connection, person_id)
            await contact_methods.delete_method(
                connection, person_id=person_id, method_id=request.id
            )
        return notify_pb2.ContactMethodRef(person_id=person_id, id=request.id)
