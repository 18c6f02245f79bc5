"""Liveness and readiness, for the orchestrator; no key needed."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.gateway.dependencies import Services

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: Services, response: Response) -> dict[str, object]:
    """Ready only when NATS and intake answer."""
    checks = {"nats": services.nats_connected(), "intake": await services.intake_serving()}
    if not all(checks.values()):
        response.status_code = 503
    return {"status": "ready" if all(checks.values()) else "not ready", "checks": checks}
