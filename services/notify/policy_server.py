"""Notify's gRPC API for escalation policies: keeping them (issue 9, §2).

The shipped default policies are put in place lazily: the first request a process serves
inserts them when the firm has none (policies.ensure_default_policies), and so does
`policies.policy_for` when the escalation engine looks one up first. The schema is only there
once run_service has migrated it, which is after the composition root built this servicer, so
neither can happen at construction.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from firebreak.api.notify.v1 import notify_pb2, notify_pb2_grpc
from firebreak.database import reading
from firebreak.errors import InvalidArgument, NotFound
from firebreak.events import to_timestamp
from firebreak.grpc_scope import serving_scope
from services.notify import policies


class PolicyServicer(notify_pb2_grpc.EscalationPolicyServiceServicer):
    def __init__(self, engine: AsyncEngine, *, page_max_bytes: int) -> None:
        self._engine = engine
        self._page_max_bytes = page_max_bytes
        self._defaults_ensured = False
        self._ensuring = asyncio.Lock()

    async def _ensure_defaults(self) -> None:
        """Once per process: afterwards no write for it."""
        if self._defaults_ensured:
            return
        async with self._ensuring:
            if self._defaults_ensured:
                return
            async with self._engine.begin() as connection:
                await policies.ensure_default_policies(connection)
            self._defaults_ensured = True

    async def CreatePolicy(
        self, request: notify_pb2.PolicyInput, context: grpc.aio.ServicerContext
    ) -> notify_pb2.Policy:
        if request.id:
            raise InvalidArgument("id", "is chosen by the service; leave it empty to create")
        await self._ensure_defaults()
        async with self._engine.begin() as connection:
            row = await policies.create_policy(
                connection, fields_of(request), policy_id=str(uuid.uuid4())
            )
        return policy_message(row)

    async def GetPolicy(
        self, request: notify_pb2.PolicyRef, context: grpc.aio.ServicerContext
    ) -> notify_pb2.Policy:
        await self._ensure_defaults()
        async with reading(self._engine) as connection:
            row = await policies.get_policy(connection, request.id)
        return policy_message(row)

    async def ListPolicies(
        self, request: notify_pb2.ListPoliciesRequest, context: grpc.aio.ServicerContext
    ) -> notify_pb2.ListPoliciesResponse:
        await self._ensure_defaults()
        async with reading(self._engine) as connection:
            rows, token = await policies.list_policies(
                connection,
                client_id=request.client_id or None,
                client_ids=request.client_ids,
                page_size=request.page_size,
                page_token=request.page_token,
                max_bytes=self._page_max_bytes,
                size_of=lambda row: policy_message(row).ByteSize(),
            )
        return notify_pb2.ListPoliciesResponse(
            policies=[policy_message(row) for row in rows], next_page_token=token
        )

    async def ReplacePolicy(
        self, request: notify_pb2.PolicyInput, context: grpc.aio.ServicerContext
    ) -> notify_pb2.Policy:
        await self._ensure_defaults()
        async with self._engine.begin() as connection:
            await _within_scope(connection, request.id)
            row = await policies.replace_policy(
                connection,
                request.id,
                fields_of(request),
                expected_version=request.expected_version,
            )
        return policy_message(row)

    async def DeletePolicy(
        self, request: notify_pb2.PolicyRef, context: grpc.aio.ServicerContext
    ) -> notify_pb2.PolicyRef:
        await self._ensure_defaults()
        async with self._engine.begin() as connection:
            await _within_scope(connection, request.id)
            await policies.delete_policy(connection, request.id)
        return notify_pb2.PolicyRef(id=request.id)


async def _within_scope(connection: AsyncConnection, policy_id: str) -> None:
    """NotFound, as for no policy, for a client's policy beyond the call's scope token: a write
    names the policy by its id alone. (Reads are checked on their answer: grpc_scope.)"""
    current = await policies.get_policy(connection, policy_id)
    if current.client_id is not None and not serving_scope.get().covers(current.client_id):
        raise NotFound(f"escalation policy {policy_id} not found")


def fields_of(request: notify_pb2.PolicyInput) -> policies.PolicyFields:
    return policies.PolicyFields(
        name=request.name,
        steps=policies.step_dicts(request.steps),
        repeat=request.repeat,
        priorities=list(request.priorities),
        page=request.page,
        client_id=request.client_id or None,
    )


def policy_message(row: Row[Any]) -> notify_pb2.Policy:
    return notify_pb2.Policy(
        id=row.id,
        name=row.name,
        steps=[
            notify_pb2.EscalationStep(
                targets=[notify_pb2.EscalationTarget(**target) for target in step["targets"]],
                after_minutes=float(step["after_minutes"]),
            )
            for step in row.steps
        ],
        repeat=row.repeat,
        client_id=row.client_id or "",
        priorities=row.priorities,
        page=row.page,
        version=row.version,
        created_at=to_timestamp(row.created_at),
        updated_at=to_timestamp(row.updated_at),
    )
