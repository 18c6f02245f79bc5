"""Heartbeats (issue 14 §5): a client's job pings `/v1/heartbeats/{key}` every interval, the
heartbeat integration's key in the path as PagerDuty's and healthchecks.io's pings have it, so a
cron line needs nothing but `curl`. No API key: the integration's key is the credential, and an
unknown, disabled or mistyped one is a 404. Intake records the ping (services/intake/
heartbeats.py); a ping that ends an outage resolves its alert.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from firebreak.api.intake.v1 import intake_pb2
from firebreak.events import from_timestamp
from firebreak.integration_keys import KEY_LENGTH, hash_key
from firebreak.scope_token import current_scope
from services.gateway import alert_schemas
from services.gateway.backends import RPC_TIMEOUT_SECONDS
from services.gateway.dependencies import Services
from services.gateway.problems import Problem
from services.gateway.routers.alerts import ALERT_SENDER

router = APIRouter(tags=["alerts"])

PATH = "/v1/heartbeats/{key}"
HEX = frozenset("0123456789abcdef")
UNKNOWN = "No heartbeat integration has this key (it may have been rotated or disabled)."


async def heartbeat_key(key: str) -> str:
    if len(key) != KEY_LENGTH or not set(key) <= HEX:
        raise Problem(404, UNKNOWN)
    return key


HeartbeatKey = Annotated[str, Depends(heartbeat_key)]
RESPONSES: dict[int | str, dict[str, object]] = {
    404: {"description": "No enabled heartbeat integration has the key"},
    429: {
        "description": "Over the integration's rate: not recorded; retry after Retry-After s",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}


async def ping(key: HeartbeatKey, services: Services) -> alert_schemas.HeartbeatRecorded:
    """Records a ping of the heartbeat integration whose key is in the path. Until the first,
    nothing is missed; after it, none within `interval_seconds` plus `grace_seconds` opens an
    incident, and the next ping resolves its alert. GET does the same, for tools that only
    fetch a URL; any body is ignored."""
    current_scope.set(ALERT_SENDER)
    answer: intake_pb2.HeartbeatResponse = await services.intake.RecordHeartbeat(
        intake_pb2.HeartbeatRequest(key_hash=hash_key(key)), timeout=RPC_TIMEOUT_SECONDS
    )
    if answer.refused == "unknown_key":
        raise Problem(404, UNKNOWN)
    if answer.refused == "rate_limited":
        wait = answer.retry_after_seconds
        raise Problem(
            429,
            f"Too many pings for this heartbeat: retry after {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    return alert_schemas.HeartbeatRecorded(
        status="success",
        message="Heartbeat recorded",
        overdue_at=from_timestamp(answer.overdue_at),
        resolved=answer.resolved,
    )


router.add_api_route(
    PATH,
    ping,
    methods=["POST"],
    response_model=alert_schemas.HeartbeatRecorded,
    responses=RESPONSES,
    summary="Ping a heartbeat",
)
router.add_api_route(
    PATH,
    ping,
    methods=["GET"],
    response_model=alert_schemas.HeartbeatRecorded,
    responses=RESPONSES,
    summary="Ping a heartbeat (GET)",
)
