"""A client's monitoring acting on its incident (issue 14): intake's alert events, applied as
the integration through the lifecycle's own commands and guards (commands.run_command).

An acknowledged alert acknowledges a triaged incident. A resolved alert, when intake says the
incident resolves with it (its integration asks so and it was the incident's last open alert),
takes the incident on step by step: acknowledge, contain, resolve. Where a guard refuses a
step (a P1 or P2 without a commander, required containment tasks open), the incident stays
where it got to and waits for a person: monitoring that recovered does not make the response's
own work done. An alert triggered again soon after its incident was resolved reopens it; on an
incident that is not resolved it does nothing (intake sends it too where it cannot know whether
the incident is resolved yet: services/intake/alerts.py).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1.events_pb2 import AlertChanged, EventEnvelope
from firebreak.api.triage.v1 import triage_pb2
from firebreak.errors import CommandRefused
from firebreak.events import ALERT_ACKNOWLEDGED, ALERT_RESOLVED, ALERT_RETRIGGERED, PAYLOAD_FIELDS
from firebreak.outbox import Outbox
from services.triage.commands import run_command
from services.triage.service import Rules, get_response

# For each event, the command that takes an incident in a state one step on toward the state
# the event asks for; a state not listed is as far as the event takes it.
NEXT_COMMAND: dict[str, dict[str, str]] = {
    ALERT_ACKNOWLEDGED: {"triaged": "acknowledge"},
    ALERT_RESOLVED: {"triaged": "acknowledge", "acknowledged": "contain", "contained": "resolve"},
    ALERT_RETRIGGERED: {"resolved": "reopen"},
}


def _request(
    event: EventEnvelope, changed: AlertChanged, command: str
) -> triage_pb2.CommandRequest:
    request = triage_pb2.CommandRequest(
        incident_id=event.incident_id, client_id=event.client_id, actor=event.actor
    )
    said = f"alert {changed.dedup_key[:200]} of the client's monitoring"
    if command == "acknowledge":
        request.acknowledge.SetInParent()
    elif command == "contain":
        request.contain.summary = f"Contained: {said} resolved"
    elif command == "resolve":
        request.resolve.summary = f"Resolved: {said} resolved, and no other alert is open"
    else:
        request.reopen.reason = f"{said} triggered again within the flapping window"
    return request


async def apply_alert(
    connection: AsyncConnection, *, outbox: Outbox, rules: Rules, event: EventEnvelope
) -> None:
    changed: AlertChanged = getattr(event, PAYLOAD_FIELDS[event.type])
    if not changed.applies_to_incident:
        return
    steps = NEXT_COMMAND[event.type]
    # Not triaged yet: NotFound, and the event is offered again once it is.
    status = (
        await get_response(connection, client_id=event.client_id, incident_id=event.incident_id)
    ).status
    while (command := steps.get(status)) is not None:
        try:
            row = await run_command(
                connection,
                outbox=outbox,
                rules=rules,
                request=_request(event, changed, command),
                client_id=event.client_id,
            )
        except CommandRefused:
            return  # a guard holds it here: a person takes it on
        status = row.status
