"""Alerts deduplicated into incidents (issue 14 §4), in the caller's transaction.

A trigger whose dedup key has an open incident (of the same integration) adds to it: its count,
last time seen and latest event, one row updated, no event on the bus. A new dedup key opens an
incident through the report path (`service.report_incident`: incident.reported, reported by the
integration). A trigger soon after that incident was resolved (the integration's flapping
window) reopens it instead (alert.retriggered, which triage applies). Acknowledge and resolve
change the alert and tell triage (alert.acknowledged, alert.resolved), which applies them to the
incident where the integration and the lifecycle allow.

A request's events are applied in order, in one transaction. A storm is mostly triggers of keys
whose incident is open: those are counted in memory and written together at the end, one
statement for all of them, after one query has read (and locked) every key's alert at the start;
any other event is applied alone, once its key's counts so far are written.

Two triggers of one new dedup key at once: each inserts its alert with the key as `open_key`,
which is unique per integration, so one of them fails and `ConcurrentTrigger`/IntegrityError
makes the caller run the request again, when it finds the winner's alert and adds to it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.api.intake.v1.intake_pb2 import (
    AlertEvent,
    AlertOutcome,
    Reporter,
    ReportIncidentRequest,
)
from firebreak.errors import InvalidArgument
from firebreak.events import (
    ALERT_ACKNOWLEDGED,
    ALERT_RESOLVED,
    ALERT_RETRIGGERED,
    from_timestamp,
    new_event,
)
from firebreak.keyset_pages import aware
from firebreak.outbox import Outbox
from firebreak.telemetry import current_span_id, current_trace_id
from services.intake import service
from services.intake.models import alerts, incidents, integrations

ACTIONS = frozenset({"trigger", "acknowledge", "resolve"})
SEVERITIES = frozenset({"critical", "error", "warning", "info"})
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
MAX_SOURCE = 255
# The latest event kept with an alert; a larger one is kept as a note of its size.
MAX_DETAILS_BYTES = 16 * 1024
MAX_EVENTS = 1000  # per request (an Alertmanager group)
KEYS_PER_QUERY = 500  # bound parameters of one query: SQLite's limit is far above
MAX_DESCRIPTION = 20_000  # as a report's
# A request that lost the race for a new dedup key runs again; it then finds the winner's alert.
SUBMIT_ATTEMPTS = 5
# An incident in one of these takes later triggers of its key; resolved may be reopened.
OPEN_STATUSES = frozenset({"reported", "triaged", "acknowledged", "contained"})


class ConcurrentTrigger(Exception):
    """Another transaction gave the dedup key a new alert first: run the request again."""


@dataclass(frozen=True)
class Sender:
    """The integration an alert request came through, as its row holds it."""

    row: Row[Any]

    def actor(self) -> events_pb2.Actor:
        # The integration acts for its client's systems, as a client's system key does.
        return events_pb2.Actor(id=self.row.id, kind="client_system", name=self.row.name)


def validate(events: list[AlertEvent]) -> None:
    """What intake holds any caller to; the gateway answers its senders in their own words."""
    if not 1 <= len(events) <= MAX_EVENTS:
        raise InvalidArgument("events", f"must be 1 to {MAX_EVENTS}")
    for index, event in enumerate(events):
        if event.action not in ACTIONS:
            raise InvalidArgument(f"events.{index}.action", f"must be one of {sorted(ACTIONS)}")
        if not 1 <= len(event.dedup_key) <= MAX_DEDUP_KEY or "\x00" in event.dedup_key:
            raise InvalidArgument(f"events.{index}.dedup_key", "must be 1 to 255 characters")
        if event.action == "trigger":
            if not event.summary.strip() or len(event.summary) > MAX_SUMMARY:
                raise InvalidArgument(f"events.{index}.summary", "must be 1 to 1024 characters")
            if event.severity not in SEVERITIES:
                raise InvalidArgument(
                    f"events.{index}.severity", f"must be one of {sorted(SEVERITIES)}"
                )
        texts = (event.summary, event.source, event.details_json, event.description)
        if len(event.source) > MAX_SOURCE or any("\x00" in text for text in texts):
            raise InvalidArgument(f"events.{index}", "holds NUL or a source over 255 characters")
        if len(event.description) > MAX_DESCRIPTION:
            raise InvalidArgument(
                f"events.{index}.description", f"must be at most {MAX_DESCRIPTION} characters"
            )


async def apply(
    connection: AsyncConnection,
    *,
    outbox: Outbox,
    sender: Sender,
    event: AlertEvent,
    now: datetime,
    trace_id: str,
    span_id: str,
) -> AlertOutcome:
    current = (
        await connection.execute(
            CURRENT_ALERT, {"integration_id": sender.row.id, "open_key": event.dedup_key}
        )
    ).first()
    if event.action == "trigger":
        result, incident_id = await _trigger(
            connection, outbox, sender, event, current, now, trace_id, span_id
        )
        return AlertOutcome(dedup_key=event.dedup_key, result=result, incident_id=incident_id)
    if current is None or current.status == "resolved":
        # As PagerDuty does: acknowledge or resolve of no open alert is dropped.
        result = "ignored"
    elif event.action == "resolve":
        # Resolved even when a person resolved (or ended) its incident first.
        result = await _resolve(connection, outbox, sender, current, now)
    elif _open(current):
        result = await _acknowledge(connection, outbox, sender, current, now)
    else:
        result = "ignored"  # an acknowledge of an incident that is over
    incident_id = current.incident_id if current is not None else ""
    return AlertOutcome(dedup_key=event.dedup_key, result=result, incident_id=incident_id)


async def apply_all(
    outbox: Outbox,
    sender: Sender,
    events: list[AlertEvent],
    *,
    then: Callable[[AsyncConnection, list[AlertOutcome], datetime], Awaitable[None]] | None = None,
) -> list[AlertOutcome]:
    """Applies the events in order, in one transaction, with `then` after them in it (an
    email's attachments, kept with the incident the mail opened or counted on). A transaction
    that lost the race for a new dedup key runs again, and then finds the winner's alert."""
    for attempt in range(1, SUBMIT_ATTEMPTS + 1):
        try:
            async with outbox.transaction() as connection:
                now = datetime.now(UTC)
                outcomes = await _apply_in_order(connection, outbox, sender, events, now)
                if then is not None:
                    await then(connection, outcomes, now)
            return outcomes
        except (IntegrityError, ConcurrentTrigger):
            if attempt == SUBMIT_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


@dataclass
class _Counted:
    """The triggers of one key counted on its open incident, not yet written."""

    alert: Row[Any]
    added: int
    latest: AlertEvent


async def _apply_in_order(
    connection: AsyncConnection,
    outbox: Outbox,
    sender: Sender,
    events: list[AlertEvent],
    now: datetime,
) -> list[AlertOutcome]:
    current = await _current_alerts(connection, sender, {event.dedup_key for event in events})
    counted: dict[str, _Counted] = {}
    # Keys an event took another path for: what was read of them is out of date, so their later
    # events go that way too.
    alone: set[str] = set()
    outcomes = []
    for event in events:
        key = event.dedup_key
        alert = current.get(key)
        if key not in alone and event.action == "trigger" and alert is not None and _open(alert):
            if key in counted:
                counted[key].added += 1
                counted[key].latest = event
            else:
                counted[key] = _Counted(alert, 1, event)
            outcomes.append(
                AlertOutcome(dedup_key=key, result="added", incident_id=alert.incident_id)
            )
            continue
        if key in counted:
            await _write_counts(connection, [counted.pop(key)], now)
        alone.add(key)
        outcome = await apply(
            connection,
            outbox=outbox,
            sender=sender,
            event=event,
            now=now,
            trace_id=current_trace_id(),
            span_id=current_span_id(),
        )
        outcomes.append(outcome)
    await _write_counts(connection, list(counted.values()), now)
    return outcomes


async def _current_alerts(
    connection: AsyncConnection, sender: Sender, keys: set[str]
) -> dict[str, Row[Any]]:
    """The alert each key's triggers join, by key (none for a key without one), locked in key
    order: as every transaction locks them, so that two cannot deadlock over them."""
    found: dict[str, Row[Any]] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), KEYS_PER_QUERY):
        rows = await connection.execute(
            CURRENT_ALERTS,
            {"integration_id": sender.row.id, "keys": ordered[start : start + KEYS_PER_QUERY]},
        )
        found.update((row.open_key, row) for row in rows)
    return found


async def _write_counts(
    connection: AsyncConnection, counted: list[_Counted], now: datetime
) -> None:
    """Each key's counted triggers on its alert: one statement for all keys."""
    if counted:
        await connection.execute(
            COUNT_TRIGGER,
            [_count_parameters(item.alert, item.added, item.latest, now) for item in counted],
        )


def _count_parameters(
    alert: Row[Any], added: int, latest: AlertEvent, now: datetime
) -> dict[str, Any]:
    columns = {f"new_{column}": value for column, value in _latest(latest).items()}
    return {"alert_id": alert.id, "added": added, "now": now, **columns}


def _open(current: Row[Any]) -> bool:
    return current.incident_status in OPEN_STATUSES


async def _trigger(
    connection: AsyncConnection,
    outbox: Outbox,
    sender: Sender,
    event: AlertEvent,
    current: Row[Any] | None,
    now: datetime,
    trace_id: str,
    span_id: str,
) -> tuple[str, str]:
    """What the trigger did, and the incident it opened or counted on."""
    if current is not None:
        if _open(current):
            await _count(connection, current, event, now)
            return "added", current.incident_id
        if current.incident_status == "resolved" and _flapping(sender, current, now):
            await _count(connection, current, event, now)
            await _publish(outbox, connection, ALERT_RETRIGGERED, sender, current, now, True)
            return "reopened", current.incident_id
        # The incident ended (or was resolved long enough ago): the key gets a new alert.
        superseded = await connection.execute(
            update(alerts)
            .where(alerts.c.id == current.id, alerts.c.open_key == event.dedup_key)
            .values(open_key=None)
        )
        if superseded.rowcount != 1:
            raise ConcurrentTrigger(event.dedup_key)
    incident = await service.report_incident(
        connection,
        outbox=outbox,
        request=_report(sender, event),
        trace_id=trace_id,
        span_id=span_id,
    )
    await connection.execute(
        alerts.insert().values(
            id=str(uuid.uuid4()),
            integration_id=sender.row.id,
            client_id=sender.row.client_id,
            incident_id=incident.id,
            dedup_key=event.dedup_key,
            open_key=event.dedup_key,
            status="triggered",
            count=1,
            first_seen=now,
            last_seen=now,
            **_latest(event),
        )
    )
    return "opened", incident.id


def _flapping(sender: Sender, current: Row[Any], now: datetime) -> bool:
    """Whether the incident was resolved within the integration's flapping window."""
    resolved_at = current.alert_resolved_at
    if current.incident_response is not None:
        state = events_pb2.ResponseState.FromString(current.incident_response)
        if state.HasField("resolved_at"):
            resolved_at = from_timestamp(state.resolved_at)
    if resolved_at is None:
        return False
    return now - aware(resolved_at) <= timedelta(seconds=sender.row.flapping_window_seconds)


async def _count(
    connection: AsyncConnection, current: Row[Any], event: AlertEvent, now: datetime
) -> None:
    await connection.execute(COUNT_TRIGGER, _count_parameters(current, 1, event, now))


async def _acknowledge(
    connection: AsyncConnection, outbox: Outbox, sender: Sender, current: Row[Any], now: datetime
) -> str:
    if current.status == "acknowledged":
        return "acknowledged"  # again: nothing changes
    await connection.execute(
        update(alerts)
        .where(alerts.c.id == current.id)
        .values(status="acknowledged", acknowledged_at=now)
    )
    await _publish(outbox, connection, ALERT_ACKNOWLEDGED, sender, current, now, True)
    return "acknowledged"


async def _resolve(
    connection: AsyncConnection, outbox: Outbox, sender: Sender, current: Row[Any], now: datetime
) -> str:
    await connection.execute(
        update(alerts).where(alerts.c.id == current.id).values(status="resolved", resolved_at=now)
    )
    others_open = (
        await connection.execute(
            select(func.count())
            .select_from(alerts)
            .where(alerts.c.incident_id == current.incident_id, alerts.c.status != "resolved")
        )
    ).scalar_one()
    resolves_incident = sender.row.resolve_with_alerts and others_open == 0 and _open(current)
    await _publish(outbox, connection, ALERT_RESOLVED, sender, current, now, resolves_incident)
    return "resolved"


async def _publish(
    outbox: Outbox,
    connection: AsyncConnection,
    event_type: str,
    sender: Sender,
    current: Row[Any],
    now: datetime,
    applies: bool,
) -> None:
    payload = events_pb2.AlertChanged(
        alert_id=current.id,
        integration_id=sender.row.id,
        dedup_key=current.dedup_key,
        summary=current.summary,
        count=current._mapping["count"],  # Row.count is a tuple method
        applies_to_incident=applies,
    )
    await outbox.add(
        connection,
        new_event(
            event_type,
            incident_id=current.incident_id,
            client_id=current.client_id,
            producer="intake",
            payload=payload,
            occurred_at=now,
            actor=sender.actor(),
        ),
    )


def _latest(event: AlertEvent) -> dict[str, Any]:
    """The columns of the alert's latest event."""
    details = event.details_json or "{}"
    if len(details.encode()) > MAX_DETAILS_BYTES:
        details = json.dumps({"omitted": "larger than 16 KiB", "bytes": len(details.encode())})
    return {
        "summary": event.summary[:MAX_SUMMARY],
        "severity": event.severity or "info",
        "source": event.source[:MAX_SOURCE],
        "details": details,
    }


def _report(sender: Sender, event: AlertEvent) -> ReportIncidentRequest:
    """The report an alert of a new dedup key makes, as a client's system would file it."""
    integration = sender.row
    levels = integration.severity_mapping[event.severity]
    title = " ".join(event.summary.split())
    where = f"; source {event.source}" if event.source else ""
    # The reporter is the integration (the address is no one's: nothing mails a reporter),
    # unless the event names its author (an email's).
    reporter = Reporter(name=integration.name, email=f"integration-{integration.id}@alerts.invalid")
    if event.HasField("reporter"):
        reporter = event.reporter
    request = ReportIncidentRequest(
        client_id=integration.client_id,
        title=title if len(title) <= 200 else title[:199] + "…",
        description=event.description
        or (
            f"{event.summary}\n\nAlert {event.dedup_key} from {integration.name} "
            f"({integration.kind}); severity {event.severity}{where}."
        ),
        type=integration.incident_type,
        impact=levels["impact"],
        urgency=levels["urgency"],
        reporter=reporter,
        affected_assets=[integration.service] if integration.service else [],
        labels=["alert", integration.kind],
        actor=sender.actor(),
    )
    if event.HasField("detected_at"):
        request.detected_at.CopyFrom(event.detected_at)
    service.validate_report(request)
    return request


_ALERT_AND_INCIDENT = (
    select(
        alerts,
        incidents.c.status.label("incident_status"),
        incidents.c.response.label("incident_response"),
        alerts.c.resolved_at.label("alert_resolved_at"),
    )
    .join(incidents, incidents.c.id == alerts.c.incident_id)
    .where(alerts.c.integration_id == bindparam("integration_id"))
    # Concurrent events of one key wait for each other here (PostgreSQL; SQLite's transaction
    # holds the write lock from its start).
    .with_for_update(of=alerts)
)
CURRENT_ALERT = _ALERT_AND_INCIDENT.where(alerts.c.open_key == bindparam("open_key"))
# Every key of a request at once, locked in key order: PostgreSQL locks rows as it returns them.
CURRENT_ALERTS = _ALERT_AND_INCIDENT.where(
    alerts.c.open_key.in_(bindparam("keys", expanding=True))
).order_by(alerts.c.open_key)
COUNT_TRIGGER = (
    update(alerts)
    .where(alerts.c.id == bindparam("alert_id"))
    .values(
        count=alerts.c.count + bindparam("added"),
        last_seen=bindparam("now"),
        status="triggered",
        resolved_at=None,
        summary=bindparam("new_summary"),
        severity=bindparam("new_severity"),
        source=bindparam("new_source"),
        details=bindparam("new_details"),
    )
)
LIST_FOR_INCIDENT = (
    select(alerts, integrations.c.name.label("integration_name"))
    .join(integrations, integrations.c.id == alerts.c.integration_id)
    .where(
        alerts.c.incident_id == bindparam("incident_id"),
        alerts.c.client_id == bindparam("client_id"),
    )
    .order_by(alerts.c.first_seen, alerts.c.id)
    .limit(200)
)
