"""A person's contact methods: how pages reach them, tried in order (issue 9, section 3).

Notify keeps them and validates each target; the gateway, which owns people, checks that the
person exists and who may: the person themselves, and an admin, change them; the person,
managers and admins (inside their wall) read them. The person's email is always the first
method, implicitly; no secret is ever returned, and Slack and Teams URLs (secrets themselves)
are shown as their scheme and host only.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import grpc
from fastapi import APIRouter, Response

from firebreak.api.notify.v1 import notify_pb2
from firebreak.database import reading
from firebreak.errors import InvalidArgument
from firebreak.events import from_timestamp
from firebreak.grpc_server import FIELD_METADATA_KEY
from services.gateway import audit, people, schemas
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import (
    Caller,
    MethodId,
    PersonId,
    Services,
    act_across_walls,
)
from services.gateway.permissions import Action, Grant, Principal, authorize, scope

router = APIRouter(prefix="/v1/people/{person_id}/contact-methods", tags=["people"])

IMPLICIT_ID = "email"  # notify's id for the person's own email

T = TypeVar("T")


async def _notify(call: Awaitable[T]) -> T:
    """Notify's answer; a field it refused is a 422 naming it ("field: message")."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        field = dict(error.trailing_metadata() or ()).get(FIELD_METADATA_KEY)
        if error.code() == grpc.StatusCode.INVALID_ARGUMENT and field:
            raise InvalidArgument(field, error.details() or "is invalid") from error
        raise


async def _person_for(
    services: Backends, caller: Principal, person_id: str, action: Action
) -> dict[str, Any]:
    """The person whose methods `caller` may read or change; a Problem otherwise. Someone who
    may act only on their own is refused before anyone is looked up, so ids cannot be probed."""
    if scope(caller, action) is Grant.SELF:
        authorize(caller, action, owner_id=person_id)
    async with reading(services.engine) as connection:
        person = await people.get_person(connection, person_id)
    authorize(caller, action, client_id=person["client_id"], owner_id=person_id)
    act_across_walls(caller, action)  # an admin changes anyone's, inside their wall or not
    return person


def method_body(method: notify_pb2.ContactMethod) -> schemas.ContactMethod:
    return schemas.ContactMethod(
        id=method.id,
        kind=method.kind,  # type: ignore[arg-type]  # notify validated it
        address=method.address,
        has_secret=method.has_secret,
        implicit=method.implicit,
        created_at=from_timestamp(method.created_at) if method.HasField("created_at") else None,
    )


@router.post("", status_code=201, response_model=schemas.ContactMethod)
async def add_contact_method(
    body: schemas.NewContactMethod, person_id: PersonId, caller: Caller, services: Services
) -> schemas.ContactMethod:
    """Adds a method after the person's others: it is tried when those before it (their email
    first) have failed. A webhook needs its signing secret; the same method twice is a 409."""
    await _person_for(services, caller, person_id, Action.CONTACT_MANAGE)
    added = await _notify(
        services.contact_methods.AddContactMethod(
            notify_pb2.ContactMethodInput(
                person_id=person_id, kind=body.kind, address=body.address, secret=body.secret or ""
            ),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    )
    # Notify keeps the methods: recorded once its call has succeeded (audit.record_after).
    # Never the address: a Slack or Teams URL is a secret itself.
    await audit.record_after(
        services.engine,
        actor=caller,
        action="contact_method.added",
        target_kind="contact_method",
        target_id=added.id,
        summary={"person_id": person_id, "kind": added.kind},
    )
    return method_body(added)


@router.get("", response_model=schemas.ContactMethodList)
async def list_contact_methods(
    person_id: PersonId, caller: Caller, services: Services
) -> schemas.ContactMethodList:
    """The person's methods in the order a page tries them, their email first."""
    person = await _person_for(services, caller, person_id, Action.CONTACT_READ)
    listed = await _notify(
        services.contact_methods.ListContactMethods(
            notify_pb2.ContactMethodsRequest(person_id=person_id), timeout=RPC_TIMEOUT_SECONDS
        )
    )
    items = [method_body(method) for method in listed.methods]
    if not items or not items[0].implicit:
        # Notify has not heard of the person yet (person.registered is on its way): their
        # email is theirs all the same.
        items.insert(
            0,
            schemas.ContactMethod(
                id=IMPLICIT_ID,
                kind="email",
                address=person["email"],
                has_secret=False,
                implicit=True,
                created_at=None,
            ),
        )
    return schemas.ContactMethodList(items=items)


@router.delete("/{method_id}", status_code=204, response_class=Response)
async def delete_contact_method(
    method_id: MethodId, person_id: PersonId, caller: Caller, services: Services
) -> Response:
    """Deletes an added method (pages already on their way to it still go). The person's email
    cannot be deleted: 409."""
    await _person_for(services, caller, person_id, Action.CONTACT_MANAGE)
    await _notify(
        services.contact_methods.DeleteContactMethod(
            notify_pb2.ContactMethodRef(person_id=person_id, id=method_id),
            timeout=RPC_TIMEOUT_SECONDS,
        )
    )
    await audit.record_after(
        services.engine,
        actor=caller,
        action="contact_method.deleted",
        target_kind="contact_method",
        target_id=method_id,
        summary={"person_id": person_id},
    )
    return Response(status_code=204)
