"""The event envelope: building, naming and reading the facts that travel on the bus."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from firebreak.api.events.v1.events_pb2 import Actor, EventEnvelope
from firebreak.settings import bus_names

SCHEMA_VERSION = 1
# Per release (FIREBREAK_STREAM_NAME, FIREBREAK_SUBJECT_PREFIX), read once: every process of a
# release, and every module of a process, must agree on them.
STREAM, SUBJECT_PREFIX = bus_names()

INCIDENT_REPORTED = "incident.reported"
INCIDENT_TRIAGED = "incident.triaged"
NOTIFICATION_SENT = "notification.sent"
EVIDENCE_COLLECTED = "evidence.collected"
# Custody of evidence (issue 10): one event per entry of an item's custody log.
EVIDENCE_ACCESSED = "evidence.accessed"
EVIDENCE_TRANSFERRED = "evidence.transferred"
EVIDENCE_RECEIVED = "evidence.received"
EVIDENCE_SEALED = "evidence.sealed"
EVIDENCE_UNSEALED = "evidence.unsealed"
EVIDENCE_VERIFIED = "evidence.verified"
EVIDENCE_LEGAL_HOLD_SET = "evidence.legal_hold_set"
EVIDENCE_LEGAL_HOLD_RELEASED = "evidence.legal_hold_released"
EVIDENCE_DISPOSED = "evidence.disposed"
EVIDENCE_INTEGRITY_FAILED = "evidence.integrity_failed"
INCIDENT_ACKNOWLEDGED = "incident.acknowledged"
INCIDENT_CONTAINED = "incident.contained"
INCIDENT_RESOLVED = "incident.resolved"
INCIDENT_REOPENED = "incident.reopened"
INCIDENT_DECLINED = "incident.declined"
INCIDENT_MERGED = "incident.merged"
INCIDENT_CLOSED = "incident.closed"
INCIDENT_RECLASSIFIED = "incident.reclassified"
INCIDENT_ROLE_ASSIGNED = "incident.role_assigned"
INCIDENT_RESPONDER_ADDED = "incident.responder_added"
INCIDENT_RESPONDER_REMOVED = "incident.responder_removed"
TASK_ADDED = "task.added"
TASK_UPDATED = "task.updated"
PERSON_REGISTERED = "person.registered"
PERSON_CHANGED = "person.changed"
ESCALATION_STEP_REACHED = "escalation.step_reached"
PAGE_DELIVERED = "page.delivered"
PAGE_FAILED = "page.failed"
ESCALATION_STOPPED = "escalation.stopped"
STATUS_UPDATE_POSTED = "status_update.posted"
STATUS_UPDATE_OVERDUE = "status_update.overdue"
INCIDENT_FLAGGED = "incident.flagged"
DEADLINE_STARTED = "deadline.started"
DEADLINE_REMINDER_SENT = "deadline.reminder_sent"
DEADLINE_MET = "deadline.met"
DEADLINE_MISSED = "deadline.missed"
NOTE_ADDED = "note.added"
ANALYSIS_UPDATED = "analysis.updated"
ACTION_ADDED = "action.added"
ACTION_UPDATED = "action.updated"
ACTION_OVERDUE = "action.overdue"
ACTION_EFFECTIVENESS_CHECK_DUE = "action.effectiveness_check_due"
ACTION_EFFECTIVENESS_CHECKED = "action.effectiveness_checked"
# The post-incident review and closure (issue 11, §3-§4).
DEADLINE_MARKED_NOT_APPLICABLE = "deadline.marked_not_applicable"
PIR_DRAFTED = "pir.drafted"
PIR_EDITED = "pir.edited"
PIR_SIGNED = "pir.signed"
# A client's monitoring (issue 14): intake's alerts, which triage applies to their incidents.
ALERT_ACKNOWLEDGED = "alert.acknowledged"
ALERT_RESOLVED = "alert.resolved"
ALERT_RETRIGGERED = "alert.retriggered"
# A file attached to a report by email, kept by intake; the gateway collects it as evidence,
# the item's source reference naming the attachment (its id after this prefix).
ATTACHMENT_RECEIVED = "attachment.received"
ATTACHMENT_SOURCE = "report-attachment:"
# Who may call the API (issue 16): every gateway replica forgets a revoked key it had cached.
API_KEY_REVOKED = "api_key.revoked"

# Which payload field of the envelope each event type carries.
PAYLOAD_FIELDS = {
    INCIDENT_REPORTED: "incident_reported",
    INCIDENT_TRIAGED: "incident_triaged",
    NOTIFICATION_SENT: "notification_sent",
    EVIDENCE_COLLECTED: "evidence_collected",
    EVIDENCE_ACCESSED: "evidence_accessed",
    EVIDENCE_TRANSFERRED: "evidence_transferred",
    EVIDENCE_RECEIVED: "evidence_received",
    EVIDENCE_SEALED: "evidence_sealed",
    EVIDENCE_UNSEALED: "evidence_unsealed",
    EVIDENCE_VERIFIED: "evidence_verified",
    EVIDENCE_LEGAL_HOLD_SET: "evidence_legal_hold_set",
    EVIDENCE_LEGAL_HOLD_RELEASED: "evidence_legal_hold_released",
    EVIDENCE_DISPOSED: "evidence_disposed",
    EVIDENCE_INTEGRITY_FAILED: "evidence_integrity_failed",
    INCIDENT_ACKNOWLEDGED: "incident_acknowledged",
    INCIDENT_CONTAINED: "incident_contained",
    INCIDENT_RESOLVED: "incident_resolved",
    INCIDENT_REOPENED: "incident_reopened",
    INCIDENT_DECLINED: "incident_declined",
    INCIDENT_MERGED: "incident_merged",
    INCIDENT_CLOSED: "incident_closed",
    INCIDENT_RECLASSIFIED: "incident_reclassified",
    INCIDENT_ROLE_ASSIGNED: "incident_role_assigned",
    INCIDENT_RESPONDER_ADDED: "incident_responder_added",
    INCIDENT_RESPONDER_REMOVED: "incident_responder_removed",
    TASK_ADDED: "task_added",
    TASK_UPDATED: "task_updated",
    PERSON_REGISTERED: "person_registered",
    PERSON_CHANGED: "person_changed",
    ESCALATION_STEP_REACHED: "escalation_step_reached",
    PAGE_DELIVERED: "page_delivered",
    PAGE_FAILED: "page_failed",
    ESCALATION_STOPPED: "escalation_stopped",
    STATUS_UPDATE_POSTED: "status_update_posted",
    STATUS_UPDATE_OVERDUE: "status_update_overdue",
    INCIDENT_FLAGGED: "incident_flagged",
    DEADLINE_STARTED: "deadline_started",
    DEADLINE_REMINDER_SENT: "deadline_reminder_sent",
    DEADLINE_MET: "deadline_met",
    DEADLINE_MISSED: "deadline_missed",
    NOTE_ADDED: "note_added",
    ANALYSIS_UPDATED: "analysis_updated",
    ACTION_ADDED: "action_added",
    ACTION_UPDATED: "action_updated",
    ACTION_OVERDUE: "action_overdue",
    ACTION_EFFECTIVENESS_CHECK_DUE: "action_effectiveness_check_due",
    ACTION_EFFECTIVENESS_CHECKED: "action_effectiveness_checked",
    DEADLINE_MARKED_NOT_APPLICABLE: "deadline_marked_not_applicable",
    PIR_DRAFTED: "pir_drafted",
    PIR_EDITED: "pir_edited",
    PIR_SIGNED: "pir_signed",
    ALERT_ACKNOWLEDGED: "alert_acknowledged",
    ALERT_RESOLVED: "alert_resolved",
    ALERT_RETRIGGERED: "alert_retriggered",
    ATTACHMENT_RECEIVED: "attachment_received",
    API_KEY_REVOKED: "api_key_revoked",
}

# Events about people, not incidents (their incident_id is empty).
PERSON_EVENTS = frozenset({PERSON_REGISTERED, PERSON_CHANGED})
# An alert's changes are triage's to apply: what they do to the incident (acknowledged,
# resolved, reopened, with the integration as actor) is triage's events; review records the
# alert events themselves on the timeline too, as internal entries.
ALERT_EVENTS = frozenset({ALERT_ACKNOWLEDGED, ALERT_RESOLVED, ALERT_RETRIGGERED})
# An attachment is handed from intake to evidence (through the gateway, which alone may call
# evidence): its evidence.collected is what the timeline records.
HANDOVER_EVENTS = frozenset({ATTACHMENT_RECEIVED})
# Events about API keys, not incidents: the gateway's own replicas follow them
# (services/gateway/principal_cache.py).
KEY_EVENTS = frozenset({API_KEY_REVOKED})
INCIDENT_EVENTS = (
    frozenset(PAYLOAD_FIELDS) - PERSON_EVENTS - ALERT_EVENTS - HANDOVER_EVENTS - KEY_EVENTS
)

# The events that carry the incident's whole ResponseState (in their `state` field).
STATE_CHANGES = frozenset(
    {
        INCIDENT_TRIAGED,
        INCIDENT_ACKNOWLEDGED,
        INCIDENT_CONTAINED,
        INCIDENT_RESOLVED,
        INCIDENT_REOPENED,
        INCIDENT_DECLINED,
        INCIDENT_MERGED,
        INCIDENT_CLOSED,
        INCIDENT_RECLASSIFIED,
        INCIDENT_ROLE_ASSIGNED,
        INCIDENT_RESPONDER_ADDED,
        INCIDENT_RESPONDER_REMOVED,
    }
)

# Automatic steps (triage's decision, a notification) are the platform's own doing.
SYSTEM = Actor(id="firebreak", kind="system", name="Firebreak")


def subject_for(event_type: str) -> str:
    return SUBJECT_PREFIX + event_type


def new_event(
    event_type: str,
    *,
    incident_id: str,
    client_id: str,
    producer: str,
    payload: Message,
    occurred_at: datetime | None = None,
    actor: Actor = SYSTEM,
) -> EventEnvelope:
    envelope = EventEnvelope(
        id=str(uuid.uuid4()),
        type=event_type,
        incident_id=incident_id,
        client_id=client_id,
        schema_version=SCHEMA_VERSION,
        producer=producer,
        occurred_at=to_timestamp(occurred_at or datetime.now(UTC)),
        actor=actor,
    )
    getattr(envelope, PAYLOAD_FIELDS[event_type]).CopyFrom(payload)
    return envelope


def to_timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    # SQLite hands back naive datetimes; everything Firebreak stores is UTC.
    stamp.FromDatetime(moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment)
    return stamp


def from_timestamp(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


class MalformedEvent(ValueError):
    """A message on the bus that is not a valid envelope of a known type and schema."""


class NewerSchemaVersion(ValueError):
    """An envelope of a schema version newer than this release reads: not malformed, only
    early (a rolling upgrade); a replica of the next release will read it."""

    def __init__(self, envelope: EventEnvelope, known_version: int) -> None:
        super().__init__(
            f"event {envelope.id[:40]!r} has schema version {envelope.schema_version}; this "
            f"release reads up to {known_version}"
        )
        self.event_id = envelope.id[:40]


def parse_event(data: bytes, *, subject: str, known_version: int = SCHEMA_VERSION) -> EventEnvelope:
    """The envelope in a message, checked against the subject it arrived on; `known_version`:
    the newest schema version the reader knows."""
    envelope = EventEnvelope()
    try:
        envelope.ParseFromString(data)
    except Exception as error:  # protobuf raises DecodeError, sometimes others, on garbage
        raise MalformedEvent(f"not an EventEnvelope: {error}") from error
    # Before any other check: a newer schema may carry types and payloads this one lacks.
    if envelope.schema_version > known_version:
        raise NewerSchemaVersion(envelope, known_version)
    if envelope.schema_version == 0:
        raise MalformedEvent("no schema version")
    if not envelope.id or envelope.type not in PAYLOAD_FIELDS:
        raise MalformedEvent(f"unknown event type {envelope.type!r}")
    if envelope.WhichOneof("payload") != PAYLOAD_FIELDS[envelope.type]:
        raise MalformedEvent(f"{envelope.type} carries no {PAYLOAD_FIELDS[envelope.type]}")
    if subject != subject_for(envelope.type):
        raise MalformedEvent(f"{envelope.type} arrived on {subject}")
    _check_ids(envelope)
    return envelope


def _check_ids(envelope: EventEnvelope) -> None:
    """Refuses ids longer than the columns consumers write them to: PostgreSQL would refuse
    them on every redelivery (SQLite ignores lengths)."""
    # The event id keys every inbox (String(36)), and review derives ids from it as a UUID.
    if len(envelope.id) > 36 or not _is_uuid(envelope.id):
        raise MalformedEvent(f"event id {envelope.id[:40]!r} is not a UUID")
    for field, value, limit in (
        ("incident_id", envelope.incident_id, 36),
        ("client_id", envelope.client_id, 36),
        ("actor.id", envelope.actor.id, 64),
    ):
        if len(value) > limit:
            raise MalformedEvent(f"{field} of event {envelope.id} is longer than {limit}")


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
