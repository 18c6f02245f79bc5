"""A client's trace headers do not become an incident's trace.

Each request starts a trace of its own, so a client cannot join (or read the timing of) the
firm's traces, nor plant baggage that would travel to the services and onto the bus. The
client's `traceparent` is kept as a link on the request's server span, for correlation.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.datastructures import URL
from starlette.types import ASGIApp, Receive, Scope, Send

CLIENT_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})
# Where the client's context waits for the server span's hook (request_span_hook).
CLIENT_CONTEXT_KEY = "firebreak.client_trace_context"


class DropClientTraceContext:
    """ASGI middleware, outside the tracing one: takes the trace headers off each request,
    keeping the client's span context in the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        kept = [(name, value) for name, value in headers if name not in CLIENT_TRACE_HEADERS]
        if len(kept) == len(headers):
            await self._app(scope, receive, send)
            return
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in headers
            if name in CLIENT_TRACE_HEADERS
        }
        client = trace.get_current_span(TraceContextTextMapPropagator().extract(carrier))
        await self._app(
            {**scope, "headers": kept, CLIENT_CONTEXT_KEY: client.get_span_context()},
            receive,
            send,
        )


def request_span_hook(span: Span, scope: dict[str, Any]) -> None:
    """The tracing middleware's server-request hook: links the request's span to the client's
    trace, when the client sent a valid one, and keeps the query string out of the span's URL:
    it carries what clients submit (evidence's filename and description)."""
    client: SpanContext | None = scope.get(CLIENT_CONTEXT_KEY)
    if not span.is_recording():
        return
    if client is not None and client.is_valid:
        span.add_link(client)
    if scope.get("query_string"):
        span.set_attribute("http.url", str(URL(scope=scope).replace(query="")))
