"""Alerts from the monitoring clients already run (issue 14 §2-§4): PagerDuty's Events API v2
(`POST /v2/enqueue`, answered as PagerDuty answers) and Alertmanager's webhook (version 4),
each authenticated by an integration's key; and the alerts of an incident.

The gateway checks what a sender sent and hashes its key; intake finds the integration by the
hash, deduplicates and records, all in one transaction, before it answers: a 202 (or 200) means
every event of the request is committed, a 429 (Alertmanager: a 503) over the rate that none was
taken. Single Events v2 events of one key are sent to intake together
(services/gateway/alert_batches.py); an Alertmanager group larger than one intake call is sent
in parts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import grpc
from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from firebreak.api.intake.v1 import intake_pb2
from firebreak.events import from_timestamp, to_timestamp
from firebreak.integration_keys import KEY_LENGTH, hash_key
from firebreak.scope_token import current_scope
from services.gateway import alert_schemas
from services.gateway.alert_batches import ALERT_SENDER, SUBMIT_TIMEOUT_SECONDS, chunks
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import IncidentId, Services, require
from services.gateway.permissions import Action, Principal
from services.gateway.problems import Problem
from services.gateway.routers.incidents import read_incident

router = APIRouter(tags=["alerts"])
EventRefused = alert_schemas.EventRefused

SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")
MAX_DEDUP_KEY, MAX_SUMMARY = 255, 1024
INVALID = "Event object is invalid"


# --- PagerDuty Events API v2 -------------------------------------------------------------------

ENQUEUE_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["routing_key", "event_action"],
    "properties": {
        "routing_key": {"type": "string", "minLength": KEY_LENGTH, "maxLength": KEY_LENGTH},
        "event_action": {"type": "string", "enum": list(ACTIONS)},
        "dedup_key": {"type": "string", "maxLength": MAX_DEDUP_KEY},
        "payload": {
            "type": "object",
            "required": ["summary", "source", "severity"],
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": MAX_SUMMARY},
                "source": {"type": "string", "minLength": 1},
                "severity": {"type": "string", "enum": list(SEVERITIES)},
                "timestamp": {"type": "string", "format": "date-time"},
                "component": {"type": "string"},
                "group": {"type": "string"},
                "class": {"type": "string"},
                "custom_details": {},
            },
        },
        "links": {"type": "array", "items": {"type": "object"}},
        "images": {"type": "array", "items": {"type": "object"}},
        "client": {"type": "string"},
        "client_url": {"type": "string"},
    },
}


class InvalidEvent(Exception):
    def __init__(self, *errors: str) -> None:
        super().__init__("; ".join(errors))
        self.errors = list(errors)


def _invalid(errors: list[str]) -> JSONResponse:
    """PagerDuty's answer to an event it does not take."""
    return JSONResponse(
        {"status": "invalid event", "message": INVALID, "errors": errors}, status_code=400
    )


def _text(value: Any, field: str, *, limit: int, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidEvent(f"'{field}' is missing or blank")
    if len(value) > limit:
        raise InvalidEvent(f"Length of '{field}' is too long (at most {limit} characters)")
    if "\x00" in value:
        raise InvalidEvent(f"'{field}' must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # JSON may carry a lone surrogate ("\ud800"); no store can
        raise InvalidEvent(f"'{field}' is not valid Unicode text") from None
    return value


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidEvent("'payload.timestamp' is not an ISO 8601 timestamp")
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    try:
        in_utc = moment.astimezone(UTC)
    except OverflowError:  # the year 1 at +14:00 is before the year 1 in UTC
        raise InvalidEvent("'payload.timestamp' is out of range") from None
    # A sender's clock ahead of ours says nothing about when it detected the problem.
    return min(in_utc, datetime.now(UTC))


def enqueued_event(body: Any) -> tuple[str, intake_pb2.AlertEvent]:
    """The routing key and the event of a PagerDuty Events v2 body; InvalidEvent naming what is
    wrong, as PagerDuty's `errors` do."""
    if not isinstance(body, dict):
        raise InvalidEvent("Event object must be a JSON object")
    routing_key = body.get("routing_key")
    if not isinstance(routing_key, str) or len(routing_key) != KEY_LENGTH:
        raise InvalidEvent(
            f"Length of 'routing_key' is incorrect (should be {KEY_LENGTH} characters)"
        )
    action = body.get("event_action")
    if action not in ACTIONS:
        raise InvalidEvent("'event_action' is invalid (must be trigger, acknowledge or resolve)")
    dedup_key = _text(body.get("dedup_key"), "dedup_key", limit=MAX_DEDUP_KEY, required=False)
    if action != "trigger":
        if not dedup_key:
            raise InvalidEvent(f"'dedup_key' is required for event_action {action}")
        return routing_key, intake_pb2.AlertEvent(action=action, dedup_key=dedup_key)
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise InvalidEvent("'payload' is missing or not an object")
    severity = payload.get("severity")
    if severity not in SEVERITIES:
        raise InvalidEvent(
            "'payload.severity' is invalid (must be critical, error, warning or info)"
        )
    event = intake_pb2.AlertEvent(
        action="trigger",
        # None given: one is made and answered, as PagerDuty does.
        dedup_key=dedup_key or uuid.uuid4().hex,
        summary=_text(payload.get("summary"), "payload.summary", limit=MAX_SUMMARY, required=True),
        severity=severity,
        source=_text(payload.get("source"), "payload.source", limit=255, required=True),
        details_json=json.dumps(
            {key: value for key, value in body.items() if key != "routing_key"}, default=str
        ),
    )
    for field in ("component", "group", "class"):
        _text(payload.get(field), f"payload.{field}", limit=MAX_SUMMARY, required=False)
    detected_at = _timestamp(payload.get("timestamp"))
    if detected_at is not None:
        event.detected_at.CopyFrom(to_timestamp(detected_at))
    return routing_key, event


async def submit(
    services: Backends,
    *,
    key: str,
    kind: str,
    events: list[intake_pb2.AlertEvent],
    rate_tokens: int | None = None,
) -> intake_pb2.SubmitAlertsResponse:
    current_scope.set(ALERT_SENDER)
    request = intake_pb2.SubmitAlertsRequest(key_hash=hash_key(key), kind=kind, events=events)
    if rate_tokens is not None:
        request.rate_tokens = rate_tokens
    answer: intake_pb2.SubmitAlertsResponse = await services.intake.SubmitAlerts(
        request, timeout=SUBMIT_TIMEOUT_SECONDS
    )
    return answer


class PlainRoute(APIRoute):
    """A route documented as any other, whose endpoint takes the request and makes its response
    itself: FastAPI's resolving of parameters and dependencies, which such an endpoint has no use
    for, was a tenth of the gateway's CPU per event in a storm of single events."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


async def enqueue(request: Request) -> Response:
    """PagerDuty's Events API v2: point a sender's events URL at Firebreak and give it an
    `events_v2` integration's key as its routing key. A `202` means the event is committed: a
    trigger opened an incident or counted on its open one, an acknowledge or resolve reached its
    alert (one of no open alert is dropped, as PagerDuty drops it)."""
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):  # not JSON, or nested deeper than a parser goes
        body = None
    try:
        routing_key, event = enqueued_event(body)
    except InvalidEvent as invalid:
        return _invalid(invalid.errors)
    services: Backends = request.app.state.backends  # a PlainRoute has no dependencies
    try:
        answer = await services.alert_batches.submit(hash_key(routing_key), "events_v2", event)
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        return _invalid([error.details() or "the event is invalid"])
    if answer.refused == "unknown_key":
        return _invalid(["Invalid routing key"])
    if answer.refused == "rate_limited":
        wait = str(answer.retry_after_seconds)
        throttled = {
            "status": "throttle event",
            "message": f"Requests for this integration are arriving too quickly. Retry after "
            f"{wait} s.",
            "errors": [],
        }
        return JSONResponse(throttled, status_code=429, headers={"Retry-After": wait})
    return JSONResponse(
        {"status": "success", "message": "Event processed", "dedup_key": event.dedup_key},
        status_code=202,
    )


router.add_api_route(
    "/v2/enqueue",
    enqueue,
    methods=["POST"],
    route_class_override=PlainRoute,
    status_code=202,
    response_model=alert_schemas.EventAccepted,
    responses={
        400: {"description": "Not a valid event; nothing was taken", "model": EventRefused},
        429: {
            "description": "Over the integration's rate: nothing was taken; retry after "
            "Retry-After seconds",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            "model": EventRefused,
        },
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ENQUEUE_BODY}},
        }
    },
)


# --- Alertmanager ------------------------------------------------------------------------------

# Its body limit is its own (FIREBREAK_ALERTMANAGER_MAX_BODY_BYTES; app.py).
ALERTMANAGER_PATH = "/v1/alerts/alertmanager"


class AlertmanagerAlert(BaseModel):
    # Alertmanager may add fields in later versions: they are kept, not refused.
    model_config = ConfigDict(extra="allow")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: Annotated[
        str, Field(min_length=1, max_length=MAX_DEDUP_KEY, pattern=r"^[^\x00]*$")
    ]


class AlertmanagerWebhook(BaseModel):
    """Alertmanager's webhook_config payload, version 4."""

    model_config = ConfigDict(extra="allow")

    version: Literal["4"]
    groupKey: str = ""
    status: Literal["firing", "resolved"]
    receiver: str = ""
    # Any number: Alertmanager sends a group whole, and drops one it is refused (a 4xx) until
    # its next group_interval. What bounds it is the route's body limit (app.py).
    alerts: Annotated[list[AlertmanagerAlert], Field(min_length=1)]


class AlertmanagerOutcome(BaseModel):
    fingerprint: str
    result: str


class AlertmanagerAccepted(BaseModel):
    status: Literal["success"]
    outcomes: list[AlertmanagerOutcome]


# Alertmanager's conventional severity labels, as the four of PagerDuty; any other: error, as
# Alertmanager's own PagerDuty receiver defaults to.
AM_SEVERITIES = {
    "critical": "critical",
    "page": "critical",
    "error": "error",
    "warning": "warning",
    "warn": "warning",
    "info": "info",
    "none": "info",
}


# Intake keeps an alert's latest event up to 16 KiB and notes the size of a larger one
# (services/intake/alerts.py): the gateway sends that note itself, so that one large alert of a
# group of megabytes cannot make a call over gRPC's 4 MiB message limit.
MAX_KEPT_DETAILS = 16 * 1024


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _details(alert: AlertmanagerAlert) -> str:
    details = alert.model_dump_json()
    size = len(details.encode())
    if size > MAX_KEPT_DETAILS:
        return json.dumps({"omitted": "larger than 16 KiB", "bytes": size})
    return details


def alertmanager_event(alert: AlertmanagerAlert) -> intake_pb2.AlertEvent:
    """An Alertmanager alert as an alert event: its fingerprint is its dedup key."""
    name = alert.labels.get("alertname", "")
    said = alert.annotations.get("summary") or alert.annotations.get("description") or ""
    summary = f"{name}: {said}" if name and said else name or said
    summary = summary.replace("\x00", "")
    # Intake refuses a blank summary, and one refused part of a group would leave it half taken.
    if not summary.strip():
        summary = "Alertmanager alert"
    source = alert.labels.get("instance") or alert.labels.get("job") or ""
    event = intake_pb2.AlertEvent(
        action="trigger" if alert.status == "firing" else "resolve",
        dedup_key=alert.fingerprint,
        summary=_bounded(summary, MAX_SUMMARY),
        severity=AM_SEVERITIES.get(alert.labels.get("severity", "").lower(), "error"),
        source=_bounded(source.replace("\x00", ""), 255),
        details_json=_details(alert),
    )
    if alert.startsAt is not None and alert.startsAt.year >= 1970:
        started = alert.startsAt if alert.startsAt.tzinfo else alert.startsAt.replace(tzinfo=UTC)
        event.detected_at.CopyFrom(to_timestamp(min(started, datetime.now(UTC))))
    return event


@router.post(
    ALERTMANAGER_PATH,
    response_model=AlertmanagerAccepted,
    responses={
        503: {
            "description": "Over the integration's rate (nothing of the group was taken), or a "
            "service or database is unavailable: Alertmanager sends the group again (it "
            "retries 5xx, never 4xx); Retry-After says when",
        }
    },
)
async def alertmanager_webhook(
    payload: AlertmanagerWebhook,
    services: Services,
    authorization: Annotated[str | None, Header()] = None,
) -> AlertmanagerAccepted:
    """Alertmanager's webhook receiver (`webhook_configs` with `http_config.authorization`
    holding an `alertmanager` integration's key): each alert, firing or resolved, by its
    fingerprint, in order; a group of any number of alerts, up to the route's body limit
    (FIREBREAK_ALERTMANAGER_MAX_BODY_BYTES, 4 MiB). A `200` means all are committed; over the
    integration's rate, a `503` with Retry-After, and none was taken (Alertmanager drops a group
    answered 4xx, and retries a 5xx)."""
    scheme, _, key = (authorization or "").partition(" ")
    unauthorized = Problem(
        401,
        "An integration key is required: Authorization: Bearer <key> (Alertmanager's "
        "http_config.authorization.credentials).",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if scheme.lower() != "bearer" or len(key.strip()) != KEY_LENGTH:
        raise unauthorized
    try:
        events = [alertmanager_event(alert) for alert in payload.alerts]
    except ValueError as error:  # a lone surrogate ("\ud800") in a label: no store can take it
        raise Problem(
            422, "An alert holds text that is not valid Unicode; nothing was taken."
        ) from error
    # Intake takes at most 1,000 events (and gRPC 4 MiB) a call: a larger group goes in parts,
    # in order, each committed in its own transaction before the next is sent. The rate is
    # checked once, for the whole group, on the first part (rate_tokens): a group over it is
    # refused before anything is written. What can stop a group part-way is a service or the
    # database failing (a 5xx, which Alertmanager retries) or its key disabled meanwhile (a
    # 401, and nothing more is wanted of it). A retry sends the whole group again, which is
    # safe: its firing alerts count once more on the incidents they opened (as each repeated
    # notification counts), and a resolve of an alert already resolved is ignored.
    outcomes: list[AlertmanagerOutcome] = []
    for number, part in enumerate(chunks(events)):
        answer = await submit(
            services,
            key=key.strip(),
            kind="alertmanager",
            events=part,
            rate_tokens=len(events) if number == 0 else 0,
        )
        if answer.refused == "unknown_key":
            raise unauthorized
        if answer.refused == "rate_limited":
            wait = answer.retry_after_seconds
            # 503, not 429: Alertmanager retries only 5xx, and drops a group answered 4xx.
            raise Problem(
                503,
                f"Over this integration's rate (its rate_per_second and burst): none of the "
                f"group's alerts was taken; retry after {wait} s.",
                headers={"Retry-After": str(wait)},
            )
        outcomes += [
            AlertmanagerOutcome(fingerprint=outcome.dedup_key, result=outcome.result)
            for outcome in answer.outcomes
        ]
    return AlertmanagerAccepted(status="success", outcomes=outcomes)


# --- An incident's alerts ----------------------------------------------------------------------

Reader = Annotated[Principal, Depends(require(Action.INCIDENT_READ))]


def _moment(message: Any, field: str) -> datetime | None:
    return from_timestamp(getattr(message, field)) if message.HasField(field) else None


@router.get("/v1/incidents/{incident_id}/alerts", response_model=alert_schemas.AlertList)
async def list_alerts(
    caller: Reader, incident_id: IncidentId, services: Services
) -> alert_schemas.AlertList:
    """The alerts counted on the incident, oldest first (none for an incident no alert
    opened): whoever may read the incident reads them."""
    incident = await read_incident(services, caller, incident_id)
    answer = await services.intake.ListAlerts(
        intake_pb2.ListAlertsRequest(incident_id=incident_id, client_id=incident.client_id),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return alert_schemas.AlertList(
        items=[
            alert_schemas.Alert(
                id=alert.id,
                integration_id=alert.integration_id,
                integration_name=alert.integration_name,
                dedup_key=alert.dedup_key,
                status=alert.status,  # type: ignore[arg-type]  # intake's three
                count=alert.count,
                first_seen=from_timestamp(alert.first_seen),
                last_seen=from_timestamp(alert.last_seen),
                acknowledged_at=_moment(alert, "acknowledged_at"),
                resolved_at=_moment(alert, "resolved_at"),
                summary=alert.summary,
                severity=alert.severity,
                source=alert.source,
                details=alert.details_json,
            )
            for alert in answer.alerts
        ]
    )
