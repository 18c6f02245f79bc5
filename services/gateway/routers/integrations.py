"""Integrations (issue 14 §1, §5): a client's monitoring that sends alerts with a key of its own,
as a PagerDuty Events v2 sender, an Alertmanager webhook, mail to an address or a heartbeat's
pings. Intake keeps them; managers and admins
create, list, rotate and disable those of the clients inside their wall (another client's is as
absent as one that does not exist), and each act is in the audit log. The key is in the answer
to its creation or rotation only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Depends, Query

from firebreak.api.events.v1.events_pb2 import Actor
from firebreak.api.intake.v1 import intake_pb2
from firebreak.database import reading
from firebreak.errors import NotFound
from firebreak.events import from_timestamp
from firebreak.keyset_pages import ID
from services.gateway import alert_schemas, audit
from services.gateway import clients as client_store
from services.gateway.backends import RPC_TIMEOUT_SECONDS, Backends
from services.gateway.dependencies import IdFilter, Services, require
from services.gateway.permissions import Action, Principal, authorize
from services.gateway.problems import Problem

router = APIRouter(tags=["integrations"])

PATH = "/v1/integrations"
Manager = Annotated[Principal, Depends(require(Action.INTEGRATION_MANAGE))]


async def integration_id_path(integration_id: str) -> str:
    if not ID.fullmatch(integration_id):
        raise Problem(404, "Not found.")
    return integration_id


IntegrationId = Annotated[str, Depends(integration_id_path)]


def integration_body(integration: intake_pb2.Integration) -> dict[str, Any]:
    settings = integration.settings
    return {
        "id": integration.id,
        "client_id": integration.client_id,
        "kind": integration.kind,
        "name": settings.name,
        "service": settings.service,
        "incident_type": settings.incident_type,
        "severity_mapping": {
            entry.severity: {"impact": entry.impact, "urgency": entry.urgency}
            for entry in settings.severity_mapping
        },
        "resolve_with_alerts": settings.resolve_with_alerts,
        "flapping_window_seconds": settings.flapping_window_seconds,
        "rate_per_second": settings.rate_per_second,
        "burst": settings.burst,
        "key_prefix": integration.key_prefix,
        "created_by": integration.created_by,
        "created_at": from_timestamp(integration.created_at),
        "key_rotated_at": _moment(integration, "key_rotated_at"),
        "disabled_at": _moment(integration, "disabled_at"),
        "allowed_senders": list(settings.allowed_senders),
        "interval_seconds": settings.interval_seconds or None,
        "grace_seconds": settings.grace_seconds if settings.HasField("grace_seconds") else None,
        "heartbeat_status": integration.heartbeat_status or None,
        "last_ping_at": _moment(integration, "last_ping_at"),
        "overdue_at": _moment(integration, "overdue_at"),
    }


def _moment(integration: intake_pb2.Integration, field: str) -> datetime | None:
    return from_timestamp(getattr(integration, field)) if integration.HasField(field) else None


def issued_body(issued: intake_pb2.IssuedIntegration) -> alert_schemas.IssuedIntegration:
    return alert_schemas.IssuedIntegration.model_validate(
        integration_body(issued.integration)
        | {"key": issued.key, "email_address": issued.email_address or None}
    )


async def _read(
    services: Backends, caller: Principal, integration_id: str
) -> intake_pb2.Integration:
    """The integration, if the caller may manage it; otherwise the 404 of a missing one."""
    missing = NotFound(f"integration {integration_id} not found")
    try:
        integration = await services.intake.GetIntegration(
            intake_pb2.IntegrationRef(id=integration_id), timeout=RPC_TIMEOUT_SECONDS
        )
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            raise missing from None
        raise
    if not caller.can_see_client(integration.client_id):
        raise missing
    authorize(caller, Action.INTEGRATION_MANAGE, client_id=integration.client_id)
    return integration


async def _audit(
    services: Backends, caller: Principal, action: str, integration: intake_pb2.Integration
) -> None:
    await audit.record_after(
        services.engine,
        actor=caller,
        action=action,
        target_kind="integration",
        target_id=integration.id,
        summary={
            "client_id": integration.client_id,
            "kind": integration.kind,
            "name": integration.settings.name,
            "key_prefix": integration.key_prefix,
        },
    )


@router.post(PATH, status_code=201, response_model=alert_schemas.IssuedIntegration)
async def create_integration(
    caller: Manager, body: alert_schemas.NewIntegration, services: Services
) -> alert_schemas.IssuedIntegration:
    """Adds an integration for a client: what its alerts open are that client's incidents. The
    answer holds the key, this once. A severity the mapping leaves out keeps its default
    (critical: extensive/critical, error: significant/high, warning: moderate/medium, info:
    minor/low; through the priority matrix a P1, P2, P3 and P4). An `email` integration's
    answer holds its address too, `<key>@<mail domain>`, as secret as the key; a `heartbeat`
    integration is pinged at `/v1/heartbeats/{key}`."""
    authorize(caller, Action.INTEGRATION_MANAGE, client_id=body.client_id)
    async with reading(services.engine) as connection:
        if not await client_store.client_exists(connection, body.client_id):
            raise Problem(404, f"client {body.client_id} not found")
    mapping = [
        intake_pb2.SeverityMapping(severity=severity, impact=levels.impact, urgency=levels.urgency)
        for severity, levels in body.severity_mapping
        if levels is not None
    ]
    settings = intake_pb2.IntegrationSettings(
        name=body.name,
        service=body.service,
        incident_type=body.incident_type,
        severity_mapping=mapping,
        resolve_with_alerts=body.resolve_with_alerts,
        flapping_window_seconds=body.flapping_window_seconds,
        rate_per_second=body.rate_per_second,
        burst=body.burst,
        allowed_senders=body.allowed_senders,
        interval_seconds=body.interval_seconds or 0.0,
    )
    if body.grace_seconds is not None:
        settings.grace_seconds = body.grace_seconds
    issued = await services.intake.CreateIntegration(
        intake_pb2.CreateIntegrationRequest(
            client_id=body.client_id,
            kind=body.kind,
            settings=settings,
            actor=Actor(id=caller.id, kind=caller.kind.value, name=caller.name),
        ),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    await _audit(services, caller, "integration.created", issued.integration)
    return issued_body(issued)


@router.get(PATH, response_model=alert_schemas.IntegrationPage)
async def list_integrations(
    caller: Manager,
    services: Services,
    client_id: IdFilter = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> alert_schemas.IntegrationPage:
    """Integrations newest first, disabled ones included (`client_id`: that client's only): of
    the clients inside the caller's wall."""
    request = intake_pb2.ListIntegrationsRequest(page_size=limit, page_token=cursor or "")
    visible = caller.visible_clients()
    if client_id is not None:
        if visible is not None and client_id not in visible:
            return alert_schemas.IntegrationPage(items=[], next_cursor=None)
        request.client_id = client_id
    elif visible is None:
        request.all_clients = True
    else:
        request.client_ids.extend(sorted(visible))
    page = await services.intake.ListIntegrations(request, timeout=RPC_TIMEOUT_SECONDS)
    return alert_schemas.IntegrationPage(
        items=[
            alert_schemas.Integration.model_validate(integration_body(item))
            for item in page.integrations
        ],
        next_cursor=page.next_page_token or None,
    )


@router.get(PATH + "/{integration_id}", response_model=alert_schemas.Integration)
async def get_integration(
    caller: Manager, integration_id: IntegrationId, services: Services
) -> alert_schemas.Integration:
    integration = await _read(services, caller, integration_id)
    return alert_schemas.Integration.model_validate(integration_body(integration))


@router.post(PATH + "/{integration_id}/rotate", response_model=alert_schemas.IssuedIntegration)
async def rotate_integration_key(
    caller: Manager, integration_id: IntegrationId, services: Services
) -> alert_schemas.IssuedIntegration:
    """A new key, shown this once; the old one is refused from now on (a sender still using it
    gets PagerDuty's answer to an invalid routing key, or a 401)."""
    await _read(services, caller, integration_id)
    issued = await services.intake.RotateIntegrationKey(
        intake_pb2.IntegrationRef(id=integration_id), timeout=RPC_TIMEOUT_SECONDS
    )
    await _audit(services, caller, "integration.key_rotated", issued.integration)
    return issued_body(issued)


@router.post(PATH + "/{integration_id}/disable", response_model=alert_schemas.Integration)
async def disable_integration(
    caller: Manager, integration_id: IntegrationId, services: Services
) -> alert_schemas.Integration:
    """Its key is refused from now on; its alerts and incidents stay. Disabling it again
    changes nothing."""
    await _read(services, caller, integration_id)
    integration = await services.intake.DisableIntegration(
        intake_pb2.IntegrationRef(id=integration_id), timeout=RPC_TIMEOUT_SECONDS
    )
    await _audit(services, caller, "integration.disabled", integration)
    return alert_schemas.Integration.model_validate(integration_body(integration))
