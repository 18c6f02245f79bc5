"""Evidence that failed verification (issue 10) pages the incident's commander and the firm's
managers who may see its client: an email each (queue_message, through their contact methods),
rendered from the `integrity_failed` templates. The evidence may be what a court relies on, so
the people answerable for it hear at once, whoever ran the check (or the schedule)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import EventEnvelope
from firebreak.consumer import Handler
from firebreak.events import EVIDENCE_INTEGRITY_FAILED, from_timestamp
from firebreak.telemetry import current_trace_context
from services.notify.models import people, update_cadences
from services.notify.outgoing import queue_message
from services.notify.templating import Templates

PURPOSE = "integrity_failed"  # also the templates' name
FIRM = "operator"


async def _recipients(
    connection: AsyncConnection, *, client_id: str, roles: dict[str, dict[str, str]] | None
) -> dict[str, str]:
    """Person id → name: the incident's commander, then the firm's active managers whose
    ethical wall lets them see the client."""
    found: dict[str, str] = {}
    commander = (roles or {}).get("incident_commander") or {}
    if commander.get("id"):
        found[commander["id"]] = commander.get("name", "")
    managers = await connection.execute(
        select(people.c.id, people.c.name, people.c.clients)
        .where(people.c.role == "manager", people.c.active.is_(True), people.c.client_id == FIRM)
        .order_by(people.c.name, people.c.id)
    )
    for manager in managers:
        if manager.clients is None or client_id in manager.clients or client_id == FIRM:
            found.setdefault(manager.id, manager.name)
    return found


def integrity_handlers(templates: Templates) -> dict[str, Handler]:
    async def on_integrity_failed(connection: AsyncConnection, event: EventEnvelope) -> None:
        failed = event.evidence_integrity_failed
        # The incident as notify last saw it (it follows every incident's state).
        incident = (
            await connection.execute(
                select(
                    update_cadences.c.reference,
                    update_cadences.c.title,
                    update_cadences.c.priority,
                    update_cadences.c.roles,
                ).where(update_cadences.c.incident_id == event.incident_id)
            )
        ).first()
        reference = incident.reference if incident else event.incident_id
        priority = incident.priority if incident else ""
        recipients = await _recipients(
            connection, client_id=event.client_id, roles=incident.roles if incident else None
        )
        for person_id, name in recipients.items():
            message = templates.render(
                PURPOSE,
                person={"id": person_id, "name": name},
                incident={
                    "id": event.incident_id,
                    "reference": reference,
                    "title": incident.title if incident else "",
                    "priority": priority,
                },
                evidence={
                    "id": failed.evidence_id,
                    "filename": failed.filename,
                    "found_by": failed.found_by,
                    "differences": list(failed.differences),
                    "found_at": f"{from_timestamp(event.occurred_at):%Y-%m-%d %H:%M:%S}",
                },
            )
            await queue_message(
                connection,
                incident_id=event.incident_id,
                client_id=event.client_id,
                reference=reference,
                priority=priority,
                person_id=person_id,
                purpose=PURPOSE,
                subject=message.subject,
                text=message.text,
                html=message.html,
                trace_context=current_trace_context(),
                now=from_timestamp(event.occurred_at),
            )

    return {EVIDENCE_INTEGRITY_FAILED: on_integrity_failed}
