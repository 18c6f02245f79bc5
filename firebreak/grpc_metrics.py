"""Counts and times every gRPC call a server handles, by service, method and status code."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from firebreak.metrics import GRPC_HANDLED, GRPC_HANDLING_SECONDS


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Outermost, so that it sees the status the domain-error mapping chose."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler  # an unknown method: gRPC answers UNIMPLEMENTED itself
        service, _, method = handler_call_details.method.lstrip("/").rpartition("/")
        call = _Call(service, method)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                call.unary(handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                call.unary(handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                call.streaming(handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # no Firebreak service streams both ways


class _Call:
    def __init__(self, service: str, method: str) -> None:
        self._service = service
        self._method = method

    def unary(
        self, behaviour: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
    ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        """A call with one response (the request may be a stream)."""

        async def measured(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            error: BaseException | None = None
            try:
                return await behaviour(request, context)
            except BaseException as raised:
                error = raised
                raise
            finally:
                self._record(context, error, started)

        return measured

    def streaming(
        self, behaviour: Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]
    ) -> Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]:
        """A call that streams its responses: timed until the last one."""

        async def measured(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = time.perf_counter()
            error: BaseException | None = None
            try:
                async for response in behaviour(request, context):
                    yield response
            except BaseException as raised:
                error = raised
                raise
            finally:
                self._record(context, error, started)

        return measured

    def _record(
        self, context: grpc.aio.ServicerContext, error: BaseException | None, started: float
    ) -> None:
        code = _status_code(context, error)
        GRPC_HANDLED.labels(self._service, self._method, code).inc()
        GRPC_HANDLING_SECONDS.labels(self._service, self._method).observe(
            time.perf_counter() - started
        )


def _status_code(context: grpc.aio.ServicerContext, error: BaseException | None) -> str:
    """The code the call ends with: what the handler set or aborted with, else by outcome."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if error is None:
        return grpc.StatusCode.OK.name
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED.name
    return grpc.StatusCode.UNKNOWN.name  # what gRPC answers for an exception it was not given
