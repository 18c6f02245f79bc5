"""gRPC server bootstrap: tracing, domain-error mapping, and the standard health service."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from sqlalchemy.exc import DBAPIError

from firebreak.database import DatabaseUnavailable, is_unavailable
from firebreak.errors import (
    CommandRefused,
    Conflict,
    DomainError,
    Forbidden,
    InvalidArgument,
    NotFound,
    StaleVersion,
)
from firebreak.grpc_channels import SERVER_KEEPALIVE_OPTIONS
from firebreak.grpc_metrics import MetricsInterceptor
from firebreak.grpc_scope import KnownIncidents, ScopeCheckInterceptor
from firebreak.telemetry import record_error

log = logging.getLogger(__name__)

FIELD_METADATA_KEY = "firebreak-field"
# A refused command's current state and the commands allowed in it, for the gateway to show.
STATUS_METADATA_KEY = "firebreak-status"
ALLOWED_METADATA_KEY = "firebreak-allowed"
VERSION_METADATA_KEY = "firebreak-version"
LIVENESS_SERVICE = "liveness"  # the health entry the chart's liveness probe asks about
# Errors with a status of their own: domain errors, and the database being unreachable.
MAPPED_ERRORS = (DomainError, DatabaseUnavailable, DBAPIError)


class DomainErrorInterceptor(grpc.aio.ServerInterceptor):
    """The one place where domain errors become gRPC status codes."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is not None and handler.stream_unary is not None:
            return _mapped_stream_unary(handler)
        if handler is not None and handler.unary_stream is not None:
            return _mapped_unary_stream(handler)
        if handler is None or handler.unary_unary is None:
            return handler
        behaviour = handler.unary_unary

        async def mapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await behaviour(request, context)
            except MAPPED_ERRORS as error:
                await _abort(context, error)

        return grpc.unary_unary_rpc_method_handler(
            mapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _mapped_stream_unary(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A client-streaming call (evidence's upload), mapped as unary calls are."""
    behaviour = handler.stream_unary

    async def mapped(requests: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behaviour(requests, context)
        except MAPPED_ERRORS as error:
            await _abort(context, error)

    return grpc.stream_unary_rpc_method_handler(
        mapped,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _mapped_unary_stream(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A server-streaming call (evidence's download): an error before or between messages."""
    behaviour = handler.unary_stream

    async def mapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            async for response in behaviour(request, context):
                yield response
        except MAPPED_ERRORS as error:
            await _abort(context, error)

    return grpc.unary_stream_rpc_method_handler(
        mapped,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


async def _abort(context: grpc.aio.ServicerContext, error: Exception) -> None:
    if isinstance(error, DomainError):
        await _abort_refused(context, error)
    elif is_unavailable(error):
        # The gateway answers 503 with Retry-After: the same call may succeed shortly.
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the database is unavailable")
    else:
        # Any other database error is a bug. Raised on, its text (which may quote the values
        # refused) would go on the call's span and into the caller's status details.
        log.error("a call failed on a database error", exc_info=error)
        record_error(trace.get_current_span(), error)
        await context.abort(grpc.StatusCode.INTERNAL, "an internal error occurred")


async def _abort_refused(context: grpc.aio.ServicerContext, error: DomainError) -> None:
    if isinstance(error, InvalidArgument):
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            error.message,
            trailing_metadata=((FIELD_METADATA_KEY, error.field),),
        )
    if isinstance(error, CommandRefused):
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            str(error),
            trailing_metadata=(
                (STATUS_METADATA_KEY, error.status),
                (ALLOWED_METADATA_KEY, ",".join(error.allowed)),
            ),
        )
    if isinstance(error, StaleVersion):
        await context.abort(
            grpc.StatusCode.ABORTED,
            str(error),
            trailing_metadata=((VERSION_METADATA_KEY, str(error.current)),),
        )
    code = {
        NotFound: grpc.StatusCode.NOT_FOUND,
        Conflict: grpc.StatusCode.ALREADY_EXISTS,
        Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    }.get(type(error), grpc.StatusCode.FAILED_PRECONDITION)
    await context.abort(code, str(error))


def create_server(
    maximum_concurrent_rpcs: int | None = None,
    *,
    scope_key: Ed25519PublicKey | None = None,
    incidents: KnownIncidents | None = None,
) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A server with metrics, tracing and domain-error mapping that serves grpc.health.v1, and
    lets the gateway's channels send their keepalive pings. Calls beyond
    `maximum_concurrent_rpcs` are refused with RESOURCE_EXHAUSTED rather than queued. With
    `scope_key` (every service's), calls need a scope token it verifies (firebreak/grpc_scope),
    and the incidents a call names are checked against it in `incidents`, the service's own
    record of their clients; without, the server stands in for a service in a test of the
    gateway's channels."""
    interceptors: list[grpc.aio.ServerInterceptor] = [
        MetricsInterceptor(),
        aio_server_interceptor(),
        DomainErrorInterceptor(),
    ]
    if scope_key is not None:
        # Inside the error mapping: the scope check reads the database.
        interceptors.append(ScopeCheckInterceptor(scope_key, incidents=incidents))
    server = grpc.aio.server(
        interceptors=interceptors,
        options=SERVER_KEEPALIVE_OPTIONS,
        maximum_concurrent_rpcs=maximum_concurrent_rpcs,
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    return server, health_servicer


async def mark_serving(
    health_servicer: health.aio.HealthServicer, service_names: list[str]
) -> None:
    await set_health(health_servicer, service_names, health_pb2.HealthCheckResponse.SERVING)
    # Liveness asks only whether the process answers: a database outage turns the others
    # NOT_SERVING, and restarting every pod for it would not bring the database back.
    await health_servicer.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)


async def set_health(
    health_servicer: health.aio.HealthServicer,
    service_names: list[str],
    status: health_pb2.HealthCheckResponse.ServingStatus.ValueType,
) -> None:
    """Sets the process's overall status and each of its services'."""
    for name in ["", *service_names]:
        await health_servicer.set(name, status)
