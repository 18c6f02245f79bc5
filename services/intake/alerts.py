"""Alerts deduplicated into incidents (issue 14 §4), in the caller's transaction.

A trigger whose dedup key has an open incident (of the same integration) adds to it: its count,
last time seen and latest event, one row updated, no event on the bus (an acknowledged alert
stays acknowledged, as PagerDuty keeps it). A new dedup key opens an incident through the report
path (`service.report_incident`: incident.reported, reported by the integration). A trigger soon
after that incident was resolved (the integration's flapping window) reopens it instead
(alert.retriggered, which triage applies). Acknowledge and resolve change the alert and tell
triage (alert.acknowledged, alert.resolved), which applies them to the incident where the
integration and the lifecycle allow. A trigger of a key whose incident was merged follows the
merge: it counts on (or reopens) the incident that one was merged into, as a new alert there.

Intake's incident status is a copy, updated from triage's lifecycle events, so a trigger may
find an incident open that triage has just resolved. Two cases, both ending with the firing
alert's incident open and the trigger counted once:
- the alert itself was resolved (its resolve may be what resolves the incident, once triage
  applies it): the trigger that revives it publishes alert.retriggered too, which triage
  applies after the resolve (a no-op on an incident that is not resolved);
- a person resolved the incident: when intake records that (`retrigger_fired_since`), each of
  its alerts that fired after the resolution and is not resolved publishes alert.retriggered.
A request reads each incident FOR KEY SHARE after locking its alerts, and intake's handler locks
the incident's row FOR UPDATE before it looks at the alerts: a trigger either sees the incident
resolved or is seen by that look.

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

from sqlalchemy import Row, bindparam, case, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from firebreak.api.events.v1 import events_pb2
from firebreak.api.intake.v1.intake_pb2 import (
    AlertEvent,
    AlertOutcome,
    Reporter,
    ReportIncidentRequest,
)
from firebreak.database import sqlstate
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
# An incident merged into one that was merged in turn: followed this far.
MAX_MERGE_HOPS = 10


class ConcurrentTrigger(Exception):
    """Another transaction gave the dedup key a new alert first: run the request again."""


class DeadlinePassed(Exception):
    """The caller's deadline passed before the request's transaction committed: rolled back."""


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
    current = (await _current_alerts(connection, sender, {event.dedup_key})).get(event.dedup_key)
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
    time_remaining: Callable[[], float | None] | None = None,
) -> list[AlertOutcome]:
    """Applies the events in order, in one transaction, with `then` after them in it (an
    email's attachments, kept with the incident the mail opened or counted on). A transaction
    that lost the race for a new dedup key runs again, and then finds the winner's alert.

    `time_remaining`: the caller's time left (None: no deadline), checked just before the
    commit; DeadlinePassed, and nothing is taken, once it has run out. A caller that gave up
    would retry what was committed anyway, and count it twice. (A tiny window remains: a
    deadline that passes during the commit itself, or while the answer is on its way.)"""
    for attempt in range(1, SUBMIT_ATTEMPTS + 1):
        try:
            async with outbox.transaction() as connection:
                now = datetime.now(UTC)
                outcomes = await _apply_in_order(connection, outbox, sender, events, now)
                if then is not None:
                    await then(connection, outcomes, now)
                left = time_remaining() if time_remaining is not None else None
                if left is not None and left <= 0:
                    raise DeadlinePassed
            return outcomes
        except (DBAPIError, ConcurrentTrigger) as error:
            if attempt == SUBMIT_ATTEMPTS or not _lost_a_race(error):
                raise
    raise AssertionError("unreachable")


def _lost_a_race(error: Exception) -> bool:
    """Whether running the request again may well succeed: another transaction made the key's
    alert first, or PostgreSQL chose this one to break a deadlock (with intake's handler, which
    locks incidents in the order of its events; see retrigger_fired_since)."""
    return isinstance(error, ConcurrentTrigger | IntegrityError) or sqlstate(error).startswith("40")


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
        if (
            key not in alone
            and event.action == "trigger"
            and alert is not None
            and _counts_quietly(alert)
        ):
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
    """The alert each key's triggers join, by key (none for a key without one), with its
    incident's status. The alerts are locked first, in key order: as every transaction locks
    them, so that two cannot deadlock over them. Their incidents are read after that, FOR KEY
    SHARE (PostgreSQL): a statement that waited for an alert's lock would otherwise see the
    incident as it was when it started, perhaps open while intake's handler has just recorded
    it resolved; and the handler, which locks the incident's row FOR UPDATE when it records a
    resolution, waits for this transaction. (The weakest lock that does: other requests and
    the registry's other updates go on beside it.)"""
    found: dict[str, Row[Any]] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), KEYS_PER_QUERY):
        parameters = {
            "integration_id": sender.row.id,
            "keys": ordered[start : start + KEYS_PER_QUERY],
        }
        await connection.execute(LOCK_ALERTS, parameters)
        rows = await connection.execute(CURRENT_ALERTS, parameters)
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


def _counts_quietly(alert: Row[Any]) -> bool:
    """Whether a trigger only counts on the alert: its incident is open and the alert is not
    resolved (a trigger that revives a resolved alert tells triage, see _trigger)."""
    return _open(alert) and alert.status != "resolved"


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
    survivor = None
    if current is not None:
        if _open(current):
            await _count(connection, current, event, now)
            if current.status == "resolved":
                # Revived while intake still has its incident open: triage may be about to
                # resolve it with this alert's resolve. Told in order, it reopens it then.
                await _publish(outbox, connection, ALERT_RETRIGGERED, sender, current, now, True)
            return "added", current.incident_id
        resolved_at = _resolved_at(current.incident_response, current.alert_resolved_at)
        if current.incident_status == "resolved" and _flapping(sender, resolved_at, now):
            await _count(connection, current, event, now)
            await _publish(outbox, connection, ALERT_RETRIGGERED, sender, current, now, True)
            return "reopened", current.incident_id
        if current.incident_status == "merged":
            survivor = await _survivor(connection, sender, current, now)
        # The incident ended (or was resolved long enough ago): the key gets a new alert, on
        # the incident its own was merged into or on a new one.
        superseded = await connection.execute(
            update(alerts)
            .where(alerts.c.id == current.id, alerts.c.open_key == event.dedup_key)
            .values(open_key=None)
        )
        if superseded.rowcount != 1:
            raise ConcurrentTrigger(event.dedup_key)
    if survivor is not None:
        alert = await _insert_alert(connection, sender, event, survivor.id, now)
        if survivor.status in OPEN_STATUSES:
            return "added", survivor.id
        await _publish(outbox, connection, ALERT_RETRIGGERED, sender, alert, now, True)
        return "reopened", survivor.id
    incident = await service.report_incident(
        connection,
        outbox=outbox,
        request=_report(sender, event),
        trace_id=trace_id,
        span_id=span_id,
    )
    await _insert_alert(connection, sender, event, incident.id, now)
    return "opened", incident.id


async def _insert_alert(
    connection: AsyncConnection, sender: Sender, event: AlertEvent, incident_id: str, now: datetime
) -> Row[Any]:
    """The key's new alert, its first trigger counted, on the incident."""
    return (
        await connection.execute(
            alerts.insert()
            .values(
                id=str(uuid.uuid4()),
                integration_id=sender.row.id,
                client_id=sender.row.client_id,
                incident_id=incident_id,
                dedup_key=event.dedup_key,
                open_key=event.dedup_key,
                status="triggered",
                count=1,
                first_seen=now,
                last_seen=now,
                **_latest(event),
            )
            .returning(*alerts.c)
        )
    ).one()


async def _survivor(
    connection: AsyncConnection, sender: Sender, current: Row[Any], now: datetime
) -> Row[Any] | None:
    """The incident a trigger of the merged incident's alert goes to instead: the one it was
    merged into (or where that one was merged in turn), if that is open or was resolved within
    the flapping window; None for a new incident. Read FOR KEY SHARE, as _current_alerts reads."""
    response = current.incident_response
    for _ in range(MAX_MERGE_HOPS):
        into = events_pb2.ResponseState.FromString(response).merged_into if response else ""
        if not into:
            return None
        row = (
            await connection.execute(
                SURVIVOR, {"incident_id": into, "client_id": current.client_id}
            )
        ).first()
        if row is None:
            return None
        if row.status == "merged":
            response = row.response
            continue
        if row.status in OPEN_STATUSES:
            return row
        if row.status == "resolved" and _flapping(sender, _resolved_at(row.response, None), now):
            return row
        return None
    return None


def _resolved_at(response: bytes | None, otherwise: datetime | None) -> datetime | None:
    """When the incident was resolved, by intake's copy of its response (`response`), else
    `otherwise`."""
    if response is not None:
        state = events_pb2.ResponseState.FromString(response)
        if state.HasField("resolved_at"):
            return from_timestamp(state.resolved_at)
    return otherwise


def _flapping(sender: Sender, resolved_at: datetime | None, now: datetime) -> bool:
    """Whether an incident resolved at `resolved_at` was resolved within the integration's
    flapping window."""
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


async def retrigger_fired_since(
    connection: AsyncConnection, *, outbox: Outbox, incident_id: str, resolved_at: datetime
) -> None:
    """Intake has just recorded the incident resolved (its handler holds the incident's row):
    each of its alerts that fired after the resolution, counted while intake still had the
    incident open, and is not resolved, reopens it, as a trigger within the flapping window
    would (alert.retriggered, at the time it fired). A request that counts on an alert reads
    its incident FOR KEY SHARE (_current_alerts), so the handler's lock waited for any such
    request to commit, and this read sees what it counted."""
    fired = [
        alert
        for alert in (await connection.execute(ALERTS_OF_INCIDENT, {"incident_id": incident_id}))
        if alert.status != "resolved" and aware(alert.last_seen) > resolved_at
    ]
    for alert in fired:
        integration = (
            await connection.execute(
                select(integrations).where(integrations.c.id == alert.integration_id)
            )
        ).one()
        await _publish(
            outbox,
            connection,
            ALERT_RETRIGGERED,
            Sender(integration),
            alert,
            aware(alert.last_seen),
            True,
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


_OF_KEYS = (
    alerts.c.integration_id == bindparam("integration_id"),
    alerts.c.open_key.in_(bindparam("keys", expanding=True)),
)
# Every key of a request at once, locked in key order: PostgreSQL locks rows as it returns them.
# Concurrent events of one key wait for each other here (PostgreSQL; SQLite's transaction holds
# the write lock from its start).
LOCK_ALERTS = select(alerts.c.id).where(*_OF_KEYS).order_by(alerts.c.open_key).with_for_update()
CURRENT_ALERTS = (
    select(
        alerts,
        incidents.c.status.label("incident_status"),
        incidents.c.response.label("incident_response"),
        alerts.c.resolved_at.label("alert_resolved_at"),
    )
    .join(incidents, incidents.c.id == alerts.c.incident_id)
    .where(*_OF_KEYS)
    .with_for_update(of=incidents, read=True, key_share=True)
)
SURVIVOR = (
    select(incidents)
    .where(
        incidents.c.id == bindparam("incident_id"),
        incidents.c.client_id == bindparam("client_id"),
    )
    .with_for_update(read=True, key_share=True)
)
COUNT_TRIGGER = (
    update(alerts)
    .where(alerts.c.id == bindparam("alert_id"))
    .values(
        count=alerts.c.count + bindparam("added"),
        last_seen=bindparam("now"),
        # An acknowledged alert stays acknowledged, as PagerDuty keeps it; a resolved one fires.
        status=case((alerts.c.status == "acknowledged", "acknowledged"), else_="triggered"),
        resolved_at=None,
        summary=bindparam("new_summary"),
        severity=bindparam("new_severity"),
        source=bindparam("new_source"),
        details=bindparam("new_details"),
    )
)
# An incident's alerts that later triggers of their keys join (not those a newer alert replaced).
ALERTS_OF_INCIDENT = (
    select(alerts)
    .where(alerts.c.incident_id == bindparam("incident_id"), alerts.c.open_key.is_not(None))
    .order_by(alerts.c.first_seen, alerts.c.id)
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
