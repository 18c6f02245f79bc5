"""RFC 7807 problem+json: the one place where errors become HTTP responses."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import grpc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry import trace
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from firebreak.database import DatabaseUnavailable, is_unavailable
from firebreak.errors import DomainError, Forbidden, InvalidArgument, NotFound
from firebreak.grpc_server import (
    ALLOWED_METADATA_KEY,
    FIELD_METADATA_KEY,
    STATUS_METADATA_KEY,
    VERSION_METADATA_KEY,
)
from firebreak.telemetry import record_error

PROBLEM_JSON = "application/problem+json"
# A database restart or failover takes seconds, not one.
DATABASE_RETRY_AFTER_SECONDS = 5

log = logging.getLogger(__name__)


class Problem(Exception):
    """An error the gateway answers with directly."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers
        self.extensions = extensions


# Paths that carry a credential: an acknowledge link's token, a heartbeat's key, a console
# sign-in link's token.
SECRET_PATH = re.compile(r"^(/v1/(?:ack|heartbeats)/|/console/welcome/)[^/]+")


def loggable(request: Request) -> str:
    """The request's path as a log may show it: without a credential it carries."""
    return SECRET_PATH.sub(r"\1…", request.url.path)


def problem_body(
    status: int,
    detail: str,
    *,
    instance: str = "",
    errors: Sequence[dict[str, str]] = (),
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"https://firebreak.dev/problems/{phrase.lower().replace(' ', '-')}",
        "title": phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = list(errors)
    return body | dict(extensions or {})


def problem_response(
    status: int,
    detail: str,
    *,
    request: Request | None = None,
    field: str | None = None,
    errors: Sequence[dict[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    if field and not errors:
        errors = [{"field": field, "message": detail}]
    instance = request.url.path if request is not None else ""
    return JSONResponse(
        problem_body(status, detail, instance=instance, errors=errors, extensions=extensions),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _field_name(location: Sequence[str | int]) -> str:
    # ("body", "reporter", "email") -> "reporter.email"; ("query", "limit") -> "limit"
    parts = [str(part) for part in location[1:]] or [str(location[0])]
    return ".".join(parts)


async def _on_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details = error.errors()
    if any(item["type"] == "json_invalid" for item in details):
        return problem_response(
            400, "The request body is not valid JSON.", request=request, field="body"
        )
    errors = [{"field": _field_name(item["loc"]), "message": item["msg"]} for item in details]
    summary = "; ".join(f"{item['field']}: {item['message']}" for item in errors)
    return problem_response(422, f"Invalid request: {summary}", request=request, errors=errors)


async def _on_problem(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, Problem)
    return problem_response(
        error.status,
        error.detail,
        request=request,
        headers=error.headers,
        extensions=error.extensions,
    )


async def _on_http_exception(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    return problem_response(
        error.status_code, str(error.detail), request=request, headers=error.headers
    )


async def _on_domain_error(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, InvalidArgument):
        # "field: message" as the detail, as for a body that fails validation.
        return problem_response(
            422,
            str(error),
            request=request,
            errors=[{"field": error.field, "message": error.message}],
        )
    status = 404 if isinstance(error, NotFound) else 403 if isinstance(error, Forbidden) else 409
    return problem_response(status, str(error), request=request)


_GRPC_TO_HTTP = {
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 412,  # a stale If-Match
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAVAILABLE: 503,
    # The service runs as many calls as it may at once (FIREBREAK_GRPC_MAX_CONCURRENT_RPCS).
    grpc.StatusCode.RESOURCE_EXHAUSTED: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    # Stored data cannot be read (evidence's master key does not match): the detail says so.
    grpc.StatusCode.DATA_LOSS: 500,
}


async def _on_rpc_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, grpc.aio.AioRpcError)
    status = _GRPC_TO_HTTP.get(error.code(), 502)
    if status == 503:
        overloaded = error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        state = "overloaded" if overloaded else "unavailable"
        return problem_response(
            503,
            f"A backing service is {state}; retry shortly.",
            request=request,
            headers={"Retry-After": "1"},
        )
    if status == 504:
        # The write may still commit: a report is safe to retry with its Idempotency-Key, a
        # command with If-Match.
        return problem_response(
            504,
            "A backing service did not answer in time; the request may or may not have taken "
            "effect. Retry a report with the same Idempotency-Key, a command with If-Match.",
            request=request,
        )
    if status == 502:
        return problem_response(502, "A backing service failed.", request=request)
    metadata = dict(error.trailing_metadata() or ())
    if STATUS_METADATA_KEY in metadata:
        # A refused command: say the state it met and what that state allows.
        allowed = [name for name in metadata.get(ALLOWED_METADATA_KEY, "").split(",") if name]
        return problem_response(
            status,
            f"{error.details()}. The incident is {metadata[STATUS_METADATA_KEY]}; allowed now: "
            f"{', '.join(allowed) or 'nothing'}.",
            request=request,
            extensions={"incident_status": metadata[STATUS_METADATA_KEY], "allowed": allowed},
        )
    if VERSION_METADATA_KEY in metadata:
        return problem_response(
            status,
            f"If-Match is stale: {error.details()}. Read the incident again and retry.",
            request=request,
            headers={"ETag": f'"{metadata[VERSION_METADATA_KEY]}"'},
        )
    field = metadata.get(FIELD_METADATA_KEY)
    return problem_response(
        status, error.details() or HTTPStatus(status).phrase, request=request, field=field
    )


async def _on_database_error(request: Request, error: Exception) -> JSONResponse:
    record_error(trace.get_current_span(), error)
    if not is_unavailable(error):
        return await _on_unexpected(request, error)
    log.warning("database unavailable on %s %s: %s", request.method, loggable(request), error)
    return problem_response(
        503,
        "The database is unavailable; retry shortly.",
        request=request,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


async def _on_unexpected(request: Request, error: Exception) -> JSONResponse:
    # A bug, not the caller's fault; the traceback goes to the log, not to the client.
    log.exception("unhandled error on %s %s", request.method, loggable(request), exc_info=error)
    return problem_response(500, "An internal error occurred.", request=request)


# What every 4xx the gateway sends holds (the acknowledge links' HTML pages document their own).
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
CLIENT_ERROR_RESPONSE = {
    "description": "RFC 7807 problem details naming the offending field or unmet condition",
    "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
}
UNAVAILABLE_RESPONSE = {
    "description": "Overloaded, or a database or service this request needs is unreachable: "
    "try again after Retry-After seconds",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
}


def _document_problems(app: FastAPI) -> None:
    """The OpenAPI document says what is sent: problem+json for every 4xx, not FastAPI's own
    422 body (HTTPValidationError), which _on_validation_error replaces, and for the 503 of
    an overload or an outage."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()  # kept as app.openapi_schema: changed here once
        for item in document["paths"].values():
            for operation in item.values():
                responses = operation["responses"]
                responses.pop("422", None)
                responses["4XX"] = CLIENT_ERROR_RESPONSE
                # A route may say what its own 503 means (the Alertmanager webhook: its rate).
                own = responses.get("503", {}).get("description")
                responses["503"] = UNAVAILABLE_RESPONSE | ({"description": own} if own else {})
        for name in ("HTTPValidationError", "ValidationError"):
            document.get("components", {}).get("schemas", {}).pop(name, None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's way to extend the document


def install_problem_handlers(app: FastAPI) -> None:
    _document_problems(app)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(grpc.aio.AioRpcError, _on_rpc_error)
    app.add_exception_handler(DatabaseUnavailable, _on_database_error)
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)


class BodySizeLimit:
    """Answers 413 to bodies over the limit, declared or streamed, before the app reads them.
    POSTs to `streamed` paths pass untouched: their route streams the body and limits it. A path
    of `own_limits` has its own limit instead."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        streamed: re.Pattern[str] | None = None,
        own_limits: Mapping[str, int] | None = None,
    ) -> None:
        self._app = app
        self._max_bytes = max_bytes
        self._streamed = streamed
        self._own_limits = dict(own_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (
            self._streamed is not None
            and scope["method"] == "POST"
            and self._streamed.fullmatch(scope["path"])
        ):
            await self._app(scope, receive, send)
            return
        limit = self._own_limits.get(scope["path"], self._max_bytes)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _send_problem(send, 400, "Content-Length is not a number.")
                return
            if int(declared) > limit:
                await _too_large(send, limit)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away mid-body: there is nothing to answer
            size += len(message.get("body", b""))
            if size > limit:
                await _too_large(send, limit)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await self._app(scope, _replay(b"".join(chunks), receive), send)


async def _too_large(send: Send, limit: int) -> None:
    await _send_problem(send, 413, f"The request body exceeds {limit} bytes.")


def _replay(body: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


async def _send_problem(send: Send, status: int, detail: str) -> None:
    payload = json.dumps(problem_body(status, detail)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
