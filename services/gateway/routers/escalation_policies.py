"""Escalation policies: who is paged for which incidents, and how it escalates. Notify owns
them; staff read them, managers and admins change them.

What only the gateway knows is checked here before notify is called: that `client_id` is a
client, and that each `person_id` a step names is an active member of staff (inside the
client's wall, for a client's policy). Notify checks the rest: schedules exist, and no two
policies of the same client (or two firm defaults) share a priority.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Annotated, Any, TypeVar

import grpc
from fastapi import APIRouter, Header, Query, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.notify.v1 import notify_pb2
from firebreak.database import reading
from firebreak.errors import InvalidArgument, NotFound
from firebreak.events import from_timestamp
from firebreak.grpc_server import FIELD_METADATA_KEY, VERSION_METADATA_KEY
from services.gateway import audit, schemas
from services.gateway import clients as client_store
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import (
    IdFilter,
    OnCallManager,
    OnCallReader,
    PolicyId,
    Services,
)
from services.gateway.incident_view import etag, parse_if_match
from services.gateway.models import people
from services.gateway.people import STAFF_ROLES
from services.gateway.permissions import Principal
from services.gateway.problems import Problem

router = APIRouter(tags=["escalation policies"])

PATH = "/v1/escalation-policies"
# A PATCH without If-Match merges into the policy as read; when someone else changed it in
# between, it reads and merges again, this many times at most.
MERGE_ATTEMPTS = 3


T = TypeVar("T")


async def _notify(call: Awaitable[T]) -> T:
    """Notify's answer; a field it refused becomes the same 422 as one refused here ("field:
    message" as the detail)."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        field = dict(error.trailing_metadata() or ()).get(FIELD_METADATA_KEY)
        if error.code() == grpc.StatusCode.INVALID_ARGUMENT and field:
            raise InvalidArgument(field, error.details() or "is invalid") from error
        raise


IfMatch = Annotated[
    str | None,
    Header(description="The ETag of the policy as the caller last saw it; stale: 412."),
]


@router.post(PATH, status_code=201, response_model=schemas.EscalationPolicy)
async def create_policy(
    caller: OnCallManager,
    body: schemas.NewEscalationPolicy,
    services: Services,
    response: Response,
) -> schemas.EscalationPolicy:
    """Adds a policy for a client's incidents of the priorities it lists (`client_id`), or the
    firm's default for them (no `client_id`). A priority another policy of the same client (or
    another firm default) lists already is a 409 naming it and that policy."""
    steps = [step.model_dump() for step in body.steps]
    async with reading(services.engine) as connection:
        if body.client_id is not None:
            await _check_client(connection, body.client_id, caller)
        await _check_people(connection, steps, client_id=body.client_id)
    created = await _notify(
        services.policies.CreatePolicy(
            _policy_input(body.model_dump() | {"steps": steps}), timeout=RPC_TIMEOUT_SECONDS
        )
    )
    await _audit(services, caller, "escalation_policy.created", created)
    response.headers["ETag"] = etag(created.version)
    return policy_body(created)


@router.get(PATH, response_model=schemas.EscalationPolicyPage)
async def list_policies(
    caller: OnCallReader,
    services: Services,
    client_id: IdFilter = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> schemas.EscalationPolicyPage:
    """Policies, newest first (`client_id`: that client's own only); pass next_cursor back for
    the next page. Walled staff see the firm's defaults and the policies of the clients inside
    their wall."""
    request = notify_pb2.ListPoliciesRequest(
        client_id=client_id or "", page_size=limit, page_token=cursor or ""
    )
    visible = caller.visible_clients()
    if visible is not None:
        # Only what the caller's scope token covers: their wall's clients and the defaults.
        if client_id is not None and client_id not in visible:
            return schemas.EscalationPolicyPage(items=[], next_cursor=None)
        request.client_ids.extend(sorted(visible))
    page = await _notify(services.policies.ListPolicies(request, timeout=RPC_TIMEOUT_SECONDS))
    return schemas.EscalationPolicyPage(
        items=[
            policy_body(policy)
            for policy in page.policies
            if not policy.client_id or caller.can_see_client(policy.client_id)
        ],
        next_cursor=page.next_page_token or None,
    )


@router.get(PATH + "/{policy_id}", response_model=schemas.EscalationPolicy)
async def get_policy(
    caller: OnCallReader, policy_id: PolicyId, services: Services, response: Response
) -> schemas.EscalationPolicy:
    """The policy; its ETag is the version a change's If-Match names."""
    policy = await _read(services, policy_id, caller)
    response.headers["ETag"] = etag(policy.version)
    return policy_body(policy)


@router.patch(PATH + "/{policy_id}", response_model=schemas.EscalationPolicy)
async def update_policy(
    caller: OnCallManager,
    policy_id: PolicyId,
    body: schemas.EscalationPolicyChanges,
    services: Services,
    response: Response,
    if_match: IfMatch = None,
) -> schemas.EscalationPolicy:
    """Replaces the fields given, each whole, and increments the version. With If-Match, a
    policy changed since is a 412 and stays as it is."""
    expected = parse_if_match(if_match)
    changes = body.model_dump(include=body.model_fields_set)
    for attempt in range(1, MERGE_ATTEMPTS + 1):
        current = await _read(services, policy_id, caller)
        if expected and expected != current.version:
            raise _stale(policy_id, current.version)
        if not changes:  # nothing to change: no new version
            response.headers["ETag"] = etag(current.version)
            return policy_body(current)
        merged = _fields(current) | changes | {"id": policy_id}
        if "steps" in changes or "client_id" in changes:
            async with reading(services.engine) as connection:
                if changes.get("client_id") is not None:
                    await _check_client(connection, changes["client_id"], caller)
                await _check_people(connection, merged["steps"], client_id=merged["client_id"])
        request = _policy_input(merged, expected_version=expected or current.version)
        try:
            changed = await _notify(
                services.policies.ReplacePolicy(request, timeout=RPC_TIMEOUT_SECONDS)
            )
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.ABORTED:
                raise
            version = dict(error.trailing_metadata() or ()).get(VERSION_METADATA_KEY, "")
            if expected or attempt == MERGE_ATTEMPTS:
                raise _stale(policy_id, int(version) if version.isdigit() else None) from error
            continue  # changed by someone else since it was read: merge into that version
        await _audit(services, caller, "escalation_policy.changed", changed)
        response.headers["ETag"] = etag(changed.version)
        return policy_body(changed)
    raise AssertionError("unreachable")  # the loop returns or raises


@router.delete(PATH + "/{policy_id}", status_code=204, response_class=Response)
async def delete_policy(caller: OnCallManager, policy_id: PolicyId, services: Services) -> Response:
    """Deletes the policy. Escalations already running keep the version they started with."""
    await _read(services, policy_id, caller)
    await services.policies.DeletePolicy(
        notify_pb2.PolicyRef(id=policy_id), timeout=RPC_TIMEOUT_SECONDS
    )
    await audit.record_after(
        services.engine,
        actor=caller,
        action="escalation_policy.deleted",
        target_kind="escalation_policy",
        target_id=policy_id,
        summary={},
    )
    return Response(status_code=204)


# --- Helpers --------------------------------------------------------------------------------


async def _audit(
    services: Backends, caller: Principal, action: str, policy: notify_pb2.Policy
) -> None:
    # Notify keeps the policy: recorded once its call has succeeded (audit.record_after).
    await audit.record_after(
        services.engine,
        actor=caller,
        action=action,
        target_kind="escalation_policy",
        target_id=policy.id,
        summary={
            "name": policy.name,
            "client_id": policy.client_id or None,
            "priorities": list(policy.priorities),
            "version": policy.version,
        },
    )


async def _read(services: Backends, policy_id: str, caller: Principal) -> notify_pb2.Policy:
    # A client's policy is as absent to staff walled off from it as its incidents are: notify
    # does not answer it to their scope token, and this says so as for a missing one.
    missing = NotFound(f"escalation policy {policy_id} not found")
    try:
        policy: notify_pb2.Policy = await services.policies.GetPolicy(
            notify_pb2.PolicyRef(id=policy_id), timeout=RPC_TIMEOUT_SECONDS
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            raise missing from None
        raise
    if policy.client_id and not caller.can_see_client(policy.client_id):
        raise missing
    return policy


def _stale(policy_id: str, current: int | None) -> Problem:
    now = f" is at version {current}" if current is not None else " has changed"
    return Problem(
        412,
        f"If-Match is stale: escalation policy {policy_id}{now}. Read it again and retry.",
        headers={"ETag": etag(current)} if current is not None else None,
    )


async def _check_client(connection: AsyncConnection, client_id: str, caller: Principal) -> None:
    """The client exists, and is inside the caller's wall (outside it, it does not exist)."""
    if not caller.can_see_client(client_id) or not await client_store.client_exists(
        connection, client_id
    ):
        raise InvalidArgument("client_id", f"client {client_id} does not exist")


async def _check_people(
    connection: AsyncConnection, steps: Sequence[dict[str, Any]], *, client_id: str | None
) -> None:
    """Each person a step names is active staff; for a client's policy, one whose wall lets
    them work on that client (paging them about it would otherwise breach the wall)."""
    wanted = {
        target["person_id"]
        for step in steps
        for target in step["targets"]
        if target.get("person_id")
    }
    if not wanted:
        return
    query = select(people.c.id, people.c.role, people.c.active, people.c.clients).where(
        people.c.id.in_(sorted(wanted))
    )
    found = {row.id: row for row in await connection.execute(query)}
    for index, step in enumerate(steps):
        for number, target in enumerate(step["targets"]):
            person_id = target.get("person_id")
            if not person_id:
                continue
            field = f"steps.{index}.targets.{number}.person_id"
            person = found.get(person_id)
            if person is None:
                raise InvalidArgument(field, f"person {person_id} does not exist")
            if person.role not in STAFF_ROLES:
                raise InvalidArgument(field, f"person {person_id} is a client's contact, not staff")
            if not person.active:
                raise InvalidArgument(field, f"person {person_id} is deactivated")
            if client_id is not None and person.clients is not None:
                if client_id not in person.clients:
                    raise InvalidArgument(
                        field, f"person {person_id} is walled off from client {client_id}"
                    )


def _fields(policy: notify_pb2.Policy) -> dict[str, Any]:
    """A policy's writable fields, as the API spells them."""
    body = policy_body(policy)
    return {
        "name": body.name,
        "steps": [step.model_dump() for step in body.steps],
        "repeat": body.repeat,
        "client_id": body.client_id,
        "priorities": list(body.priorities),
        "page": body.page,
    }


def _policy_input(fields: dict[str, Any], *, expected_version: int = 0) -> notify_pb2.PolicyInput:
    return notify_pb2.PolicyInput(
        id=fields.get("id", ""),
        name=fields["name"],
        steps=[
            notify_pb2.EscalationStep(
                targets=[
                    notify_pb2.EscalationTarget(
                        person_id=target.get("person_id") or "",
                        schedule_id=target.get("schedule_id") or "",
                    )
                    for target in step["targets"]
                ],
                after_minutes=step["after_minutes"],
            )
            for step in fields["steps"]
        ],
        repeat=fields["repeat"],
        client_id=fields["client_id"] or "",
        priorities=fields["priorities"],
        page=fields["page"],
        expected_version=expected_version,
    )


def policy_body(policy: notify_pb2.Policy) -> schemas.EscalationPolicy:
    return schemas.EscalationPolicy(
        id=policy.id,
        name=policy.name,
        client_id=policy.client_id or None,
        priorities=list(policy.priorities),  # type: ignore[arg-type]  # notify's P1..P4
        page=policy.page,
        steps=[
            schemas.EscalationStep(
                targets=[
                    schemas.EscalationTarget(
                        person_id=target.person_id or None, schedule_id=target.schedule_id or None
                    )
                    for target in step.targets
                ],
                after_minutes=step.after_minutes,
            )
            for step in policy.steps
        ],
        repeat=policy.repeat,
        version=policy.version,
        created_at=from_timestamp(policy.created_at),
        updated_at=from_timestamp(policy.updated_at),
    )
