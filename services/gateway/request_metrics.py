"""Counts and times the gateway's requests by route template (`/v1/incidents/{incident_id}`,
never the path itself: ids in labels would make a series per incident)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from firebreak.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS

UNMATCHED_ROUTE = "unmatched"  # no route took it (none has its path, or it was refused first)


class RequestMetrics:
    """Pure ASGI middleware, outermost but for error handling: a streamed response is timed
    until its last byte."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = self.route_of(scope)
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_REQUEST_SECONDS.labels(method, route).observe(time.perf_counter() - started)

    @staticmethod
    def route_of(scope: Scope) -> str:
        """The template of the route the router matched (kept in the scope it was given)."""
        return str(getattr(scope.get("route"), "path", UNMATCHED_ROUTE))
