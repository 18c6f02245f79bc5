"""Scope tokens on gRPC calls: the gateway's channels add one to every call; a service's server
refuses a call without a valid one (UNAUTHENTICATED), or whose request reaches beyond it
(PERMISSION_DENIED). Health checks need none: probes and the gateway's status page ask them.

A token that does not cover every client (a client's, a walled staff member's) is checked
further, since a request may name an incident by id alone, or beside a client of the token's
that is not the incident's:
- before the servicer runs (so a write changes nothing), each incident the request names must,
  if the service knows it, be of a client the token covers, and any client_id beside it must be
  its own;
- each answer must name only clients the token covers (a read by id of another client's item,
  a list with one);
- the services whose items are every client's at once (dead letters) refuse it outright
  (PERMISSION_DENIED).
Either of the first two failing is NOT_FOUND, as for an item that does not exist. A servicer
that finds an item by an id of its own (an escalation policy, a person's contact methods) checks
its client against `serving_scope`. A token of every client ("*") pays for none of this: once
verified (a cache hit after the first call), its call goes straight on.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncEngine

from firebreak.consumer import IncidentOwners, owners_read
from firebreak.database import reading
from firebreak.dead_letters.server import DEAD_LETTER_SERVICE
from firebreak.scope_token import (
    METADATA_KEY,
    SYSTEM_SCOPE,
    InvalidScopeToken,
    OutOfScope,
    Scope,
    ScopeTokens,
    VerifiedTokens,
    bearer,
    check_request,
    check_response,
    current_scope,
    holds_any,
)

UNCHECKED_PREFIX = "/grpc.health.v1.Health/"
# Services whose items are every client's at once: only a token of every client reaches them.
EVERY_CLIENT_PREFIXES = (f"/{DEAD_LETTER_SERVICE}/",)
INCIDENT_FIELDS = frozenset({"incident_id"})
NOT_FOUND = "not found"  # all an answer beyond the caller's scope tells them

# A call served without a checked token (a test's server without the scope key) reaches no
# client.
NO_CLIENT = Scope(subject="", role="", clients=frozenset())
# The scope of the call being served: for a servicer that checks the client of an item it
# found by an id of its own.
serving_scope: ContextVar[Scope] = ContextVar("serving_scope", default=NO_CLIENT)


class KnownIncidents:
    """Which client each incident a service knows belongs to, in its own database (the
    consumer's IncidentOwners, which keeps each one found: an incident's client never
    changes): a token's calls about an incident cost a query the first time only."""

    def __init__(self, engine: AsyncEngine, owners: IncidentOwners) -> None:
        self._engine = engine
        self._owners = owners

    async def beyond(self, scope: Scope, request: Message) -> str:
        """The first incident the request names that is known here to be of a client beyond
        `scope`, or named beside a client_id not its own; "" if none is."""
        named = list(_incidents_named(request))
        if not named:
            return ""
        await self._learn([incident_id for incident_id, _ in named])
        for incident_id, client_id in named:
            owner = self._owners.kept(incident_id)
            if owner is not None and (not scope.covers(owner) or client_id not in ("", owner)):
                return incident_id
        return ""

    async def _learn(self, incident_ids: list[str]) -> None:
        """Looks up the clients of those incidents not known yet (one not in the database yet
        stays unknown: asked again next time)."""
        missing = [
            incident_id for incident_id in incident_ids if self._owners.kept(incident_id) is None
        ]
        if not missing:
            return
        async with reading(self._engine) as connection:
            owners_read(connection)
            for incident_id in missing:
                await self._owners.owner(connection, incident_id)
            self._owners.keep(owners_read(connection))  # read outside any write: committed


def _incidents_named(message: Message) -> Iterator[tuple[str, str]]:
    """(incident_id, the client_id beside it or "") of `message` and each message inside it
    that names an incident."""
    incident_id = client_id = ""
    for field, value in message.ListFields():
        if field.name == "incident_id" and field.type == FieldDescriptor.TYPE_STRING:
            incident_id = value
        elif field.name == "client_id":
            client_id = value
        elif field.message_type is not None and holds_any(field.message_type, INCIDENT_FIELDS):
            for inner in value if field.is_repeated else [value]:
                yield from _incidents_named(inner)
    if incident_id:
        yield incident_id, client_id


class ScopeCheckInterceptor(grpc.aio.ServerInterceptor):
    """Verifies each call's scope token (each token once, until it expires), then checks the
    call against it: its request messages, and for a token short of every client also the
    incidents they name (in `incidents`, the service's own record) and the answers."""

    def __init__(
        self,
        key: Ed25519PublicKey,
        *,
        incidents: KnownIncidents | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tokens = VerifiedTokens(key, clock=clock)
        self._incidents = incidents

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(UNCHECKED_PREFIX):
            return handler
        try:
            metadata = handler_call_details.invocation_metadata  # type: ignore[attr-defined]
            scope = self._tokens.scope(bearer(metadata))
        except InvalidScopeToken as error:
            return _guarded(
                handler, NO_CLIENT, _Refusal(grpc.StatusCode.UNAUTHENTICATED, str(error))
            )
        if scope.clients is None:
            return _guarded(handler, scope, None)  # every client: nothing to check
        if method.startswith(EVERY_CLIENT_PREFIXES):
            beyond = f"{method} serves every client's items: beyond the caller's scope"
            return _guarded(handler, scope, _Refusal(grpc.StatusCode.PERMISSION_DENIED, beyond))
        return _guarded(handler, scope, _ScopeCheck(scope, self._incidents))


class _Check:
    """What is checked of a call's messages; each method aborts the call when one fails."""

    async def request(self, request: Any, context: grpc.aio.ServicerContext) -> None:
        pass

    async def response(self, response: Any, context: grpc.aio.ServicerContext) -> None:
        pass


class _Refusal(_Check):
    """Refuses the call at its first request message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        self._code = code
        self._message = message

    async def request(self, request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(self._code, self._message)


class _ScopeCheck(_Check):
    """The checks of a token short of every client."""

    def __init__(self, scope: Scope, incidents: KnownIncidents | None) -> None:
        self._scope = scope
        self._incidents = incidents

    async def request(self, request: Any, context: grpc.aio.ServicerContext) -> None:
        try:
            check_request(self._scope, request)
        except OutOfScope as error:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))
        if self._incidents is not None and (
            incident_id := await self._incidents.beyond(self._scope, request)
        ):
            # Word for word what a missing incident gets.
            await context.abort(grpc.StatusCode.NOT_FOUND, f"incident {incident_id} not found")

    async def response(self, response: Any, context: grpc.aio.ServicerContext) -> None:
        try:
            check_response(self._scope, response)
        except OutOfScope:
            await context.abort(grpc.StatusCode.NOT_FOUND, NOT_FOUND)


def _guarded(
    handler: grpc.RpcMethodHandler, scope: Scope, check: _Check | None
) -> grpc.RpcMethodHandler:
    """`handler` serving in `scope` (serving_scope), with `check` run on every request message
    before the servicer sees it and on every answer before it is sent."""
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        unary_unary = handler.unary_unary

        async def checked_unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            serving_scope.set(scope)
            if check is None:
                return await unary_unary(request, context)
            await check.request(request, context)
            response = await unary_unary(request, context)
            await check.response(response, context)
            return response

        return grpc.unary_unary_rpc_method_handler(checked_unary_unary, **serializers)
    if handler.unary_stream is not None:
        unary_stream = handler.unary_stream

        async def checked_unary_stream(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            serving_scope.set(scope)
            if check is not None:
                await check.request(request, context)
            async for response in unary_stream(request, context):
                if check is not None:
                    await check.response(response, context)
                yield response

        return grpc.unary_stream_rpc_method_handler(checked_unary_stream, **serializers)
    if handler.stream_unary is not None:
        stream_unary = handler.stream_unary

        async def checked_stream_unary(
            requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
        ) -> Any:
            serving_scope.set(scope)
            if check is None:
                return await stream_unary(requests, context)
            response = await stream_unary(_checked(requests, context, check), context)
            await check.response(response, context)
            return response

        return grpc.stream_unary_rpc_method_handler(checked_stream_unary, **serializers)
    stream_stream = handler.stream_stream

    async def checked_stream_stream(
        requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        serving_scope.set(scope)
        if check is not None:
            requests = _checked(requests, context, check)
        async for response in stream_stream(requests, context):
            if check is not None:
                await check.response(response, context)
            yield response

    return grpc.stream_stream_rpc_method_handler(checked_stream_stream, **serializers)


async def _checked(
    requests: AsyncIterator[Any], context: grpc.aio.ServicerContext, check: _Check
) -> AsyncIterator[Any]:
    async for request in requests:
        await check.request(request, context)
        yield request


class _ScopeToken:
    """Adds the token of the request in progress (`current_scope`) to a call."""

    def __init__(self, tokens: ScopeTokens) -> None:
        self._tokens = tokens

    def _with_token(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        token = self._tokens.token(current_scope.get() or SYSTEM_SCOPE)
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add(METADATA_KEY, f"Bearer {token}")
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=details.timeout,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )


# One class per kind of call: a channel files each interceptor under the first kind it is.
class _UnaryUnaryScopeToken(_ScopeToken, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._with_token(client_call_details), request)


class _UnaryStreamScopeToken(_ScopeToken, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Any, client_call_details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._with_token(client_call_details), request)


class _StreamUnaryScopeToken(_ScopeToken, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(self._with_token(client_call_details), request_iterator)


class _StreamStreamScopeToken(_ScopeToken, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self,
        continuation: Any,
        client_call_details: grpc.aio.ClientCallDetails,
        request_iterator: Any,
    ) -> Any:
        return await continuation(self._with_token(client_call_details), request_iterator)


def scope_token_interceptors(tokens: ScopeTokens) -> list[grpc.aio.ClientInterceptor]:
    """A channel's interceptors that add the scope token to every kind of call."""
    kinds = (
        _UnaryUnaryScopeToken,
        _UnaryStreamScopeToken,
        _StreamUnaryScopeToken,
        _StreamStreamScopeToken,
    )
    return [kind(tokens) for kind in kinds]
