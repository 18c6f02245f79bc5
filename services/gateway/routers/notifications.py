"""Every delivery of an incident's pages and other messages (issue 9, sections 3 and 4): to
whom, by which channel and where, what for, how it went. Internal: staff inside the wall; a
client key gets 404."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from firebreak.api.notify.v1 import notify_pb2
from firebreak.events import from_timestamp
from services.gateway import schemas
from services.gateway.backends import RPC_TIMEOUT_SECONDS
from services.gateway.dependencies import Caller, IncidentId, Services
from services.gateway.incident_access import incident_for, staff_only
from services.gateway.permissions import Action

router = APIRouter(
    prefix="/v1/incidents/{incident_id}/notifications",
    tags=["notifications"],
    dependencies=[Depends(staff_only)],
)


def delivery_body(delivery: notify_pb2.Delivery) -> schemas.Delivery:
    return schemas.Delivery(
        id=delivery.id,
        person=schemas.PersonSummary(id=delivery.person_id, name=delivery.person_name),
        channel=delivery.channel,  # type: ignore[arg-type]  # notify's own kinds
        target=delivery.target,
        status=delivery.status,  # type: ignore[arg-type]
        attempts=delivery.attempts,
        last_error=delivery.last_error or None,
        step=delivery.step,
        purpose=delivery.purpose,  # type: ignore[arg-type]  # notify's own purposes
        created_at=from_timestamp(delivery.created_at),
        delivered_at=from_timestamp(delivery.delivered_at)
        if delivery.HasField("delivered_at")
        else None,
    )


@router.get("", response_model=schemas.DeliveryList)
async def list_notifications(
    incident_id: IncidentId, caller: Caller, services: Services
) -> schemas.DeliveryList:
    """Every delivery of the incident's pages and other messages (status updates, reminders),
    oldest first: one per person, message and contact method tried. Slack and Teams URLs are
    secrets, so a URL shows as its host only."""
    incident = await incident_for(services, caller, incident_id, Action.INCIDENT_WORK_READ)
    listed = await services.notify.ListDeliveries(
        notify_pb2.ListNotificationsRequest(incident_id=incident_id, client_id=incident.client_id),
        timeout=RPC_TIMEOUT_SECONDS,
    )
    return schemas.DeliveryList(items=[delivery_body(item) for item in listed.deliveries])
