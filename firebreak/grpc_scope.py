"""Scope tokens on gRPC calls: the gateway's channels add one to every call; a service's server
refuses a call without a valid one (UNAUTHENTICATED), or whose request reaches beyond it
(PERMISSION_DENIED). Health checks need none: probes and the gateway's status page ask them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from firebreak.scope_token import (
    METADATA_KEY,
    SYSTEM_SCOPE,
    InvalidScopeToken,
    OutOfScope,
    Scope,
    ScopeTokens,
    bearer,
    check_request,
    current_scope,
    verify,
)

UNCHECKED_PREFIX = "/grpc.health.v1.Health/"

RequestCheck = Callable[[Any, grpc.aio.ServicerContext], Awaitable[None]]


class ScopeCheckInterceptor(grpc.aio.ServerInterceptor):
    """Verifies each call's scope token, then each request message against it."""

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(UNCHECKED_PREFIX):
            return handler
        try:
            metadata = handler_call_details.invocation_metadata  # type: ignore[attr-defined]
            scope = verify(self._key, bearer(metadata))
        except InvalidScopeToken as error:
            return _guarded(handler, _refusal(str(error)))
        return _guarded(handler, _scope_check(scope))


def _refusal(message: str) -> RequestCheck:
    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return refuse


def _scope_check(scope: Scope) -> RequestCheck:
    async def check(request: Any, context: grpc.aio.ServicerContext) -> None:
        try:
            check_request(scope, request)
        except OutOfScope as error:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))

    return check


def _guarded(handler: grpc.RpcMethodHandler, check: RequestCheck) -> grpc.RpcMethodHandler:
    """`handler` with `check` run on every request message before the servicer sees it."""
    serializers = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        unary_unary = handler.unary_unary

        async def checked_unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await check(request, context)
            return await unary_unary(request, context)

        return grpc.unary_unary_rpc_method_handler(checked_unary_unary, **serializers)
    if handler.unary_stream is not None:
        unary_stream = handler.unary_stream

        async def checked_unary_stream(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            await check(request, context)
            async for response in unary_stream(request, context):
                yield response

        return grpc.unary_stream_rpc_method_handler(checked_unary_stream, **serializers)
    if handler.stream_unary is not None:
        stream_unary = handler.stream_unary

        async def checked_stream_unary(
            requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
        ) -> Any:
            return await stream_unary(_checked(requests, context, check), context)

        return grpc.stream_unary_rpc_method_handler(checked_stream_unary, **serializers)
    stream_stream = handler.stream_stream

    async def checked_stream_stream(
        requests: AsyncIterator[Any], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        async for response in stream_stream(_checked(requests, context, check), context):
            yield response

    return grpc.stream_stream_rpc_method_handler(checked_stream_stream, **serializers)


async def _checked(
    requests: AsyncIterator[Any], context: grpc.aio.ServicerContext, check: RequestCheck
) -> AsyncIterator[Any]:
    async for request in requests:
        await check(request, context)
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
