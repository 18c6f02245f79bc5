"""Liveness, readiness and status, for the orchestrator and operators; no key needed."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel

from services.gateway.dependencies import Services

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: Services, response: Response) -> dict[str, object]:
    """Ready when the gateway's own database answers: what it needs to answer requests. NATS
    is not part of it (reports wait in the outboxes while it is away), nor are the services
    (a call to one that is down is a 503 of its own); both are on /status."""
    checks = {"database": await services.database_answers()}
    if not all(checks.values()):
        response.status_code = 503
    return {"status": "ready" if all(checks.values()) else "not ready", "checks": checks}


class NatsStatus(BaseModel):
    connected: bool
    since: datetime  # when it last connected or disconnected (or the gateway started)


class PlatformStatus(BaseModel):
    """States only, no tenant data: it is served without a key, like /readyz."""

    database: bool
    nats: NatsStatus
    # Each service's grpc.health.v1 status: SERVING, NOT_SERVING, or UNREACHABLE.
    services: dict[str, str]


@router.get("/status")
async def status(services: Services) -> PlatformStatus:
    """What this gateway sees of the platform: its database, NATS, and each service."""
    link = services.nats_link
    return PlatformStatus(
        database=await services.database_answers(),
        nats=NatsStatus(connected=services.nats_connected(), since=link.since),
        services=await services.services_health(),
    )
